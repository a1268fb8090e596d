"""An organization's admins change its settings; new exams start from them; nothing
crosses organizations."""

from __future__ import annotations

import html
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from tests.factories import make_organization, make_user
from tests.helpers import error_field, login, one, rows
from tests.web.test_pages import PAGE, form_token

DEFAULTS = {
    "duration_minutes": 45,
    "attempts_allowed": 2,
    "shuffle_questions": True,
    "shuffle_choices": False,
    "release_policy": "after_close",
    "require_fullscreen": True,
}


async def test_admin_changes_settings_audited_and_errors_name_the_field(
    db: AsyncSession, make_client: Any
) -> None:
    college = await make_organization(db)
    other = await make_organization(db, domains=["taken.edu"])
    admin = await make_user(db, "admin", name="Ada Admin", organization=college)
    client = await make_client()
    await login(client, admin.email)

    shown = (await client.get("/api/v1/organization")).json()
    assert shown["slug"] == college.slug and shown["time_zone"] == "Europe/Paris"
    assert shown["exam_defaults"]["duration_minutes"] == 60

    for body, field in (
        ({"time_zone": "Mars/Olympus"}, "time_zone"),
        ({"allowed_domains": "college.edu, not a domain"}, "allowed_domains"),
        ({"name": ""}, "name"),
        ({"name": "   "}, "name"),
        ({"exam_defaults": {**DEFAULTS, "duration_minutes": 0}}, "exam_defaults.duration_minutes"),
        (
            {"exam_defaults": {**DEFAULTS, "attempts_allowed": 101}},
            "exam_defaults.attempts_allowed",
        ),
        (
            {"exam_defaults": {**DEFAULTS, "release_policy": "never"}},
            "exam_defaults.release_policy",
        ),
    ):
        refused = await client.patch("/api/v1/organization", json=body)
        assert refused.status_code == 422, (body, refused.text)
        assert error_field(refused) == field, (body, refused.text)

    taken = await client.patch(
        "/api/v1/organization", json={"allowed_domains": ["college.edu", "Taken.edu"]}
    )
    assert taken.status_code == 409 and taken.json()["error"]["code"] == "domain_taken"
    message = taken.json()["error"]["message"]
    assert "taken.edu already belongs to another organization" in message
    assert other.name not in message and other.slug not in message
    assert await rows(db, "SELECT 1 FROM audit_events WHERE action = 'organization.settings'") == []

    changed = await client.patch(
        "/api/v1/organization",
        json={
            "name": "Riverside College",
            "allowed_domains": "@River.edu\nriver.edu, lab.river.edu",
            "time_zone": "America/Chicago",
            "exam_defaults": DEFAULTS,
        },
    )
    assert changed.status_code == 200, changed.text
    out = changed.json()
    assert out["allowed_domains"] == ["river.edu", "lab.river.edu"]
    assert out["time_zone"] == "America/Chicago" and out["exam_defaults"] == DEFAULTS
    stored = await one(
        db,
        "SELECT name, time_zone, exam_defaults FROM organizations WHERE id = :id",
        id=college.id,
    )
    assert tuple(stored) == ("Riverside College", "America/Chicago", DEFAULTS)
    trail = await rows(
        db,
        "SELECT actor_id, subject_id, details FROM audit_events"
        " WHERE action = 'organization.settings'",
    )
    assert len(trail) == 1 and trail[0].actor_id == admin.id and trail[0].subject_id == college.id
    assert trail[0].details["time_zone"] == "America/Chicago"
    # The admin's audit page lists it.
    audit_page = await client.get("/operator/audit", headers=PAGE)
    assert "organization.settings" in audit_page.text and "Ada Admin" in audit_page.text

    # Educators and students of the same organization are refused.
    for role in ("educator", "student"):
        await login(client, (await make_user(db, role, organization=college)).email)
        assert (await client.get("/api/v1/organization")).status_code == 403
        assert (
            await client.patch("/api/v1/organization", json={"name": "Hijacked"})
        ).status_code == 403
        assert (await client.get("/operator/organization", headers=PAGE)).status_code == 403
    assert (await one(db, "SELECT name FROM organizations WHERE id = :id", id=college.id))[
        0
    ] == "Riverside College"


async def test_an_admin_of_b_changes_only_b(db: AsyncSession, make_client: Any) -> None:
    a = await make_organization(db, domains=["a-college.edu"])
    b = await make_organization(db)
    client = await make_client()
    await login(client, (await make_user(db, "admin", organization=b)).email)
    assert (await client.get("/api/v1/organization")).json()["slug"] == b.slug
    changed = await client.patch(
        "/api/v1/organization", json={"name": "B renamed", "time_zone": "Asia/Tokyo"}
    )
    assert changed.status_code == 200 and changed.json()["slug"] == b.slug
    names = dict(
        (r.slug, (r.name, r.time_zone, list(r.allowed_domains)))
        for r in await rows(
            db,
            "SELECT slug, name, time_zone, allowed_domains FROM organizations WHERE id IN (:a, :b)",
            a=a.id,
            b=b.id,
        )
    )
    assert names[a.slug] == (a.name, "Europe/Paris", ["a-college.edu"])
    assert names[b.slug] == ("B renamed", "Asia/Tokyo", [])
    # B's admin may not take A's domain either.
    refused = await client.patch("/api/v1/organization", json={"allowed_domains": "a-college.edu"})
    assert refused.status_code == 409

    # B's educators' New exam form starts from B's settings; A's are untouched.
    await client.patch(
        "/api/v1/organization", json={"exam_defaults": {**DEFAULTS, "duration_minutes": 95}}
    )
    await login(client, (await make_user(db, "educator", organization=b)).email)
    form = (await client.get("/educator/exams/new", headers=PAGE)).text
    assert 'name="duration_minutes" type="number" value="95"' in form
    assert 'name="attempts_allowed" type="number" value="2"' in form
    assert 'id="shuffle_questions" name="shuffle_questions" type="checkbox" checked' in form
    assert 'name="tz" value="Asia/Tokyo"' in form
    await login(client, (await make_user(db, "educator", organization=a)).email)
    form = (await client.get("/educator/exams/new", headers=PAGE)).text
    assert 'name="duration_minutes" type="number" value="60"' in form
    assert 'name="tz" value="Europe/Paris"' in form


async def test_the_page_refuses_another_organizations_domain_in_words(
    db: AsyncSession, make_client: Any
) -> None:
    college = await make_organization(db)
    await make_organization(db, domains=["taken.edu"])
    client = await make_client()
    await login(client, (await make_user(db, "admin", organization=college)).email)
    token = await form_token(client, "/operator/organization")
    form = {
        "_csrf_token": token,
        "name": "Riverside",
        "allowed_domains": "river.edu\ntaken.edu",
        "time_zone": "Europe/Paris",
        "duration_minutes": "30",
        "attempts_allowed": "1",
        "release_policy": "manual",
    }
    refused = await client.post(
        "/operator/organization", data=form, headers=PAGE, follow_redirects=False
    )
    assert refused.status_code == 409
    text = html.unescape(refused.text)
    assert "already belongs to another organization" in text
    assert 'aria-invalid="true"' in text and "river.edu\ntaken.edu" in text

    bad = await client.post(
        "/operator/organization",
        data={**form, "allowed_domains": "", "duration_minutes": "0", "time_zone": "Nowhere"},
        headers=PAGE,
        follow_redirects=False,
    )
    assert bad.status_code == 422
    assert "Enter the time allowed in whole minutes" in html.unescape(bad.text)

    saved = await client.post(
        "/operator/organization",
        data={**form, "allowed_domains": "river.edu", "shuffle_choices": "on"},
        headers=PAGE,
        follow_redirects=False,
    )
    assert saved.status_code == 303
    row = await one(
        db, "SELECT allowed_domains, exam_defaults FROM organizations WHERE id = :id", id=college.id
    )
    assert list(row.allowed_domains) == ["river.edu"]
    assert row.exam_defaults["duration_minutes"] == 30 and row.exam_defaults["shuffle_choices"]
