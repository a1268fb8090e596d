"""Admins manage accounts; a disabled account or a changed role ends its sign-ins at once."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from safexam.auth.admin import UserChangeIn, change_user
from safexam.auth.guards import Principal
from safexam.core.errors import Conflict
from tests.helpers import PASSWORD, csrf, login, make_user, rows, signed_in


async def test_create_list_and_search(db: AsyncSession, make_client: Any) -> None:
    admin_client, _ = await signed_in(make_client, db, "admin")
    body = {"email": "Grace@College.edu", "name": "Grace Hopper", "role": "educator"}
    created = await admin_client.post("/api/v1/users", json={**body, "password": PASSWORD})
    assert created.status_code == 201, created.text
    out = created.json()
    assert out["email"] == "grace@college.edu" and out["role"] == "educator"
    assert out["active"] is True and out["has_password"] is True
    taken = await admin_client.post("/api/v1/users", json=body)
    assert taken.status_code == 409 and taken.json()["error"]["code"] == "email_taken"
    short = await admin_client.post("/api/v1/users", json={**body, "password": "short"})
    assert short.status_code == 400 or short.status_code == 422
    google = await admin_client.post(
        "/api/v1/users", json={"email": "alan@college.edu", "name": "Alan", "role": "student"}
    )
    assert google.json()["has_password"] is False
    trail = await rows(db, "SELECT subject_id FROM audit_events WHERE action = 'user.create'")
    assert len(trail) == 2

    found = (await admin_client.get("/api/v1/users", params={"q": "grace"})).json()
    assert [u["name"] for u in found["items"]] == ["Grace Hopper"] and found["total"] == 1
    students = (await admin_client.get("/api/v1/users", params={"role": "student"})).json()
    assert {u["role"] for u in students["items"]} == {"student"}
    for _ in range(3):
        await make_user(db, "student")
    page = (await admin_client.get("/api/v1/users", params={"role": "student", "page": 2})).json()
    assert page["page"] == 2 and page["per_page"] == 25 and page["items"] == []

    await login(admin_client, (await make_user(db, "educator")).email)
    assert (await admin_client.get("/api/v1/users")).status_code == 403


async def test_disable_and_role_change_end_sign_ins_at_once(
    db: AsyncSession, make_client: Any
) -> None:
    admin_client, admin = await signed_in(make_client, db, "admin")
    student_client, student = await signed_in(make_client, db, "student")
    phone, _ = student_client, None
    educator_client, educator = await signed_in(make_client, db, "educator")
    assert (await student_client.get("/api/v1/auth/me")).status_code == 200
    assert (await educator_client.get("/api/v1/questions")).status_code == 200

    disabled = await admin_client.patch(f"/api/v1/users/{student.id}", json={"active": False})
    assert disabled.status_code == 200, disabled.text
    assert disabled.json()["active"] is False
    assert (await phone.get("/api/v1/auth/me")).status_code == 401
    await csrf(phone)
    refused = await phone.post(
        "/api/v1/auth/login", json={"email": student.email, "password": PASSWORD}
    )
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "account_disabled"

    changed = await admin_client.patch(f"/api/v1/users/{educator.id}", json={"role": "student"})
    assert changed.status_code == 200 and changed.json()["role"] == "student"
    assert (await educator_client.get("/api/v1/questions")).status_code == 401
    await login(educator_client, educator.email)
    assert (await educator_client.get("/api/v1/questions")).status_code == 403

    enabled = await admin_client.patch(f"/api/v1/users/{student.id}", json={"active": True})
    assert enabled.json()["active"] is True
    await login(phone, student.email)

    trail = await rows(
        db,
        "SELECT actor_id, action, details FROM audit_events WHERE action LIKE 'user.%' ORDER BY at",
    )
    assert [(r.actor_id, r.action) for r in trail] == [
        (admin.id, "user.disable"),
        (admin.id, "user.role"),
        (admin.id, "user.enable"),
    ]
    assert trail[1].details == {"from": "educator", "to": "student"}

    missing = await admin_client.patch(f"/api/v1/users/{uuid.uuid4()}", json={"active": False})
    assert missing.status_code == 404


async def test_no_admin_locks_out_themselves_or_the_last_admin(
    db: AsyncSession, make_client: Any, redis: Any, app: Any
) -> None:
    admin_client, admin = await signed_in(make_client, db, "admin")
    for change in ({"active": False}, {"role": "educator"}):
        own = await admin_client.patch(f"/api/v1/users/{admin.id}", json=change)
        assert own.status_code == 409, own.text
        assert own.json()["error"]["code"] == "own_account"
        assert "your own" in own.json()["error"]["message"]
    # Another admin (whose account is gone since) demotes the only admin left.
    ghost = Principal(
        id=uuid.uuid4(),
        email="ghost@college.edu",
        name="Ghost",
        role="admin",
        organization_id=admin.organization_id,
    )
    store = app.stores.get("sessions")
    try:
        await change_user(
            db, redis, store, "unused", admin.id, UserChangeIn(role="educator"), ghost
        )
    except Conflict as exc:
        assert exc.code == "last_admin"
        assert "last active admin" in exc.message
    else:
        raise AssertionError("the last admin was demoted")
    await db.rollback()
    assert (await admin_client.get("/api/v1/users")).status_code == 200
