"""Small helpers shared by tests: sign-in, CSRF, fresh queries, error fields.

Builders of test data (users among them) live in ``tests.factories``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from safexam.auth.models import User
from tests.factories import PASSWORD, make_user


@dataclass(frozen=True)
class ServiceUrls:
    database_url: str
    server_url: str
    redis_url: str
    namespace: str
    tmp: Path


async def csrf(client: Any) -> str:
    response = await client.get("/api/v1/auth/csrf")
    assert response.status_code == 200, response.text
    token = response.json()["csrf_token"]
    client.headers["X-CSRF-Token"] = token
    return str(token)


async def login(client: Any, email: str, password: str = PASSWORD) -> dict[str, Any]:
    """Sign in and leave the CSRF header set for later state-changing calls."""
    await csrf(client)
    response = await client.post("/api/v1/auth/login", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    # The session id rotates at sign-in; fetch a token bound to the new cookie jar state.
    await csrf(client)
    body: dict[str, Any] = response.json()
    return body


async def signed_in(
    make_client: Any, db: AsyncSession, role: str = "student", email: str | None = None
) -> tuple[Any, User]:
    client = await make_client()
    user = await make_user(db, role, email=email)
    await login(client, user.email)
    return client, user


async def one(db: AsyncSession, sql: str, **params: Any) -> Any:
    """One row of a fresh query (never a cached ORM object)."""
    return (await db.execute(text(sql), params)).first()


async def rows(db: AsyncSession, sql: str, **params: Any) -> list[Any]:
    return list((await db.execute(text(sql), params)).all())


def error_field(response: Any) -> str | None:
    """The field named by a 422 (first detail)."""
    details = response.json()["error"]["details"] or []
    return details[0].get("field") if details else None
