"""Every state-changing request needs a valid X-CSRF-Token header, sign-in included."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from tests.auth.conftest import browser
from tests.helpers import PASSWORD, csrf, login, make_user


def assert_csrf_rejected(response: Any) -> None:
    assert response.status_code == 403, response.text
    error = response.json()["error"]
    assert error["code"] == "csrf_failed"
    assert "X-CSRF-Token" in error["message"]


async def test_login_without_token_is_rejected(client: Any, db: AsyncSession) -> None:
    user = await make_user(db)
    await client.get("/api/v1/auth/csrf")  # the cookie alone is not enough
    response = await client.post(
        "/api/v1/auth/login", json={"email": user.email, "password": PASSWORD}
    )
    assert_csrf_rejected(response)
    assert (await client.get("/api/v1/auth/me")).status_code == 401


async def test_login_with_wrong_token_is_rejected(client: Any, db: AsyncSession) -> None:
    user = await make_user(db)
    token = await csrf(client)
    client.headers["X-CSRF-Token"] = token[:-4] + ("aaaa" if not token.endswith("aaaa") else "bbbb")
    response = await client.post(
        "/api/v1/auth/login", json={"email": user.email, "password": PASSWORD}
    )
    assert_csrf_rejected(response)


async def test_token_from_another_browser_is_rejected(client: Any, db: AsyncSession) -> None:
    user = await make_user(db)
    async with browser(client) as attacker:
        stolen = (await attacker.get("/api/v1/auth/csrf")).json()["csrf_token"]
    await client.get("/api/v1/auth/csrf")
    response = await client.post(
        "/api/v1/auth/login",
        json={"email": user.email, "password": PASSWORD},
        headers={"X-CSRF-Token": stolen},
    )
    assert_csrf_rejected(response)


async def test_token_without_cookie_is_rejected(client: Any, db: AsyncSession) -> None:
    user = await make_user(db)
    token = await csrf(client)
    client.cookies.clear()
    response = await client.post(
        "/api/v1/auth/login",
        json={"email": user.email, "password": PASSWORD},
        headers={"X-CSRF-Token": token},
    )
    assert_csrf_rejected(response)


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
async def test_every_unsafe_method_needs_the_token(
    guarded: Any, db: AsyncSession, method: str
) -> None:
    user = await make_user(db)
    await login(guarded, user.email)
    token = guarded.headers.pop("X-CSRF-Token")
    path = "/test/things" if method == "POST" else f"/test/things/{user.id}"
    missing = await guarded.request(method, path)
    assert_csrf_rejected(missing)
    wrong = await guarded.request(method, path, headers={"X-CSRF-Token": "x" + token})
    assert_csrf_rejected(wrong)
    # The same request with the token goes through, so the 403s were about CSRF alone.
    ok = await guarded.request(method, path, headers={"X-CSRF-Token": token})
    assert ok.status_code in (200, 201), ok.text
    assert ok.json()["owner_id"] == str(user.id)


async def test_safe_methods_need_no_token(guarded: Any, db: AsyncSession) -> None:
    user = await make_user(db)
    await login(guarded, user.email)
    del guarded.headers["X-CSRF-Token"]
    assert (await guarded.get(f"/test/things/{user.id}")).status_code == 200
    assert (await guarded.get("/api/v1/auth/me")).status_code == 200


async def test_valid_token_passes(client: Any, db: AsyncSession) -> None:
    user = await make_user(db)
    await login(client, user.email)
    assert (await client.post("/api/v1/auth/logout")).status_code == 204
