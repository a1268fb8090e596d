from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from tests.helpers import login, make_user


async def test_login_me_logout(client: Any, db: AsyncSession) -> None:
    user = await make_user(db, "educator")
    body = await login(client, user.email)
    assert body["email"] == user.email and body["role"] == "educator"
    me = await client.get("/api/v1/auth/me")
    assert me.status_code == 200 and me.json()["id"] == str(user.id)
    out = await client.post("/api/v1/auth/logout")
    assert out.status_code == 204
    again = await client.get("/api/v1/auth/me")
    assert again.status_code == 401
    assert again.json()["error"]["code"] == "not_authenticated"
