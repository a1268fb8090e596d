"""Small helpers shared by tests: sign-in, CSRF, user factories."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from safexam.auth.models import User
from safexam.auth.service import create_user

PASSWORD = "correct horse battery staple"


@dataclass(frozen=True)
class ServiceUrls:
    database_url: str
    server_url: str
    redis_url: str
    namespace: str
    tmp: Path


async def make_user(
    db: AsyncSession, role: str = "student", email: str | None = None, name: str | None = None
) -> User:
    email = email or f"{role}-{uuid.uuid4().hex[:8]}@college.edu"
    return await create_user(
        db, email=email, name=name or email.split("@")[0], role=role, password=PASSWORD
    )


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
