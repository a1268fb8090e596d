"""Role and ownership guards: 401 signed out, 403 wrong role, 404 for other people's objects."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from tests.helpers import login, make_user

AREAS = {
    "/test/signed-in": {"student", "educator", "admin"},
    "/test/students": {"student"},
    "/test/staff": {"educator", "admin"},
    "/test/admin": {"admin"},
}


@pytest.mark.parametrize("path", sorted(AREAS))
async def test_signed_out_gets_401(guarded: Any, path: str) -> None:
    response = await guarded.get(path)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"


@pytest.mark.parametrize("role", ["student", "educator", "admin"])
async def test_roles(guarded: Any, db: AsyncSession, role: str) -> None:
    user = await make_user(db, role)
    await login(guarded, user.email)
    for path, allowed in AREAS.items():
        response = await guarded.get(path)
        if role in allowed:
            assert response.status_code == 200, (path, response.text)
        else:
            assert response.status_code == 403, (path, response.text)
            assert response.json()["error"]["code"] == "wrong_role"


async def test_owner_gets_their_object(guarded: Any, db: AsyncSession) -> None:
    user = await make_user(db, "educator")
    await login(guarded, user.email)
    response = await guarded.get(f"/test/things/{user.id}")
    assert response.status_code == 200
    assert response.json() == {"owner_id": str(user.id)}


async def test_someone_elses_object_is_indistinguishable_from_a_missing_one(
    guarded: Any, db: AsyncSession
) -> None:
    owner = await make_user(db, "educator")
    intruder = await make_user(db, "educator")
    await login(guarded, intruder.email)
    for method in ("GET", "PUT", "PATCH", "DELETE"):
        theirs = await guarded.request(method, f"/test/things/{owner.id}")
        missing = await guarded.request(method, f"/test/things/{uuid.UUID(int=0)}")
        assert theirs.status_code == 404, (method, theirs.text)
        assert missing.status_code == 404
        assert theirs.json() == missing.json()
        assert theirs.json()["error"]["code"] == "not_found"


async def test_admin_passes_ownership(guarded: Any, db: AsyncSession) -> None:
    owner = await make_user(db, "educator")
    admin = await make_user(db, "admin")
    await login(guarded, admin.email)
    response = await guarded.get(f"/test/things/{owner.id}")
    assert response.status_code == 200


async def test_principal_is_the_signed_in_user(guarded: Any, db: AsyncSession) -> None:
    user = await make_user(db, "student")
    await login(guarded, user.email)
    response = await guarded.get("/test/signed-in")
    assert response.json() == {"id": str(user.id), "role": "student"}
