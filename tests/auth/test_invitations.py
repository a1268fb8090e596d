"""Invitations: single-use, expiring, hashed at rest, inside the inviting organization."""

from __future__ import annotations

import hashlib
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from safexam.orgs.models import Invitation
from tests.factories import make_organization, make_user
from tests.helpers import csrf, login

PAGE = {"Accept": "text/html"}


async def test_an_invited_educator_joins_once(make_client: Any, db: AsyncSession) -> None:
    riverside = await make_organization(db, "riverside")
    admin = await make_client()
    await login(admin, (await make_user(db, "admin", organization=riverside)).email)
    made = await admin.post("/api/v1/users/invitations", json={"email": "Eve@Riverside.edu"})
    assert made.status_code == 201, made.text
    body = made.json()
    assert body["email"] == "eve@riverside.edu" and body["role"] == "educator"
    path = urlsplit(body["url"]).path
    token = path.removeprefix("/join/")
    stored = (await db.execute(select(Invitation))).scalar_one()
    # Only the hash is kept.
    assert stored.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert token not in stored.token_hash

    newcomer = await make_client()
    await csrf(newcomer)
    page = await newcomer.get(path, headers=PAGE)
    assert page.status_code == 200 and "Join Organization riverside" in page.text
    form = {"name": "Eve", "password": "password123", "password_again": "password123"}
    joined = await newcomer.post(path, data=form, headers=PAGE, follow_redirects=False)
    assert joined.status_code == 303, joined.text
    me = (await newcomer.get("/api/v1/auth/me")).json()
    assert me["role"] == "educator" and me["organization_id"] == str(riverside.id)

    again = await make_client()
    await csrf(again)
    reused = await again.post(path, data=form, headers=PAGE)
    assert reused.status_code == 410 and "used already" in reused.text
    await db.execute(update(Invitation).values(used_at=None, expires_at=Invitation.created_at))
    await db.commit()
    expired = await again.get(path, headers=PAGE)
    assert expired.status_code == 410 and "expired" in expired.text
    taken = await admin.post("/api/v1/users/invitations", json={"email": "eve@riverside.edu"})
    assert taken.status_code == 409
