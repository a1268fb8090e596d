"""Students imported from a CSV into the admin's organization, with a report of refused rows."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from safexam.auth.models import User
from tests.factories import make_organization, make_user
from tests.helpers import login


async def test_two_hundred_students_and_the_rows_refused(
    make_client: Any, db: AsyncSession
) -> None:
    ours = await make_organization(db, "ours")
    theirs = await make_organization(db, "theirs")
    admin = await make_user(db, "admin", organization=ours)
    other = await make_user(db, "student", email="taken@other.edu", organization=theirs)
    await make_user(db, "educator", email="teacher@ours.edu", organization=ours)
    client = await make_client()
    await login(client, admin.email)

    rows = ["email,name,extra_minutes"]
    rows += [f"s{i:03}@ours.edu,Student {i:03},{15 if i % 10 == 0 else ''}" for i in range(200)]
    rows += [
        "not-an-email,Nobody,",  # line 202
        "s001@ours.edu,Again,",  # 203: duplicate
        f"{other.email},Taken,",  # 204: another organization's
        "teacher@ours.edu,Teacher,",  # 205: staff
        "s900@ours.edu,,",  # 206: no name
        "s901@ours.edu,Late,forever",  # 207: bad extra time
    ]
    report = await client.post("/api/v1/users/import", json={"text": "\n".join(rows)})
    assert report.status_code == 200, report.text
    body = report.json()
    assert body["created"] == 200 and body["updated"] == 0
    assert [(r["line"], r["code"]) for r in body["refused"]] == [
        (202, "bad_email"),
        (203, "duplicate"),
        (204, "other_organization"),
        (205, "not_a_student"),
        (206, "no_name"),
        (207, "bad_extra_minutes"),
    ]
    assert "already on line 3" in body["refused"][1]["reason"]
    made = (
        await db.scalars(select(User).where(User.email.like("s%@ours.edu")).order_by(User.email))
    ).all()
    assert len(made) == 200
    assert {u.organization_id for u in made} == {ours.id} and {u.role for u in made} == {"student"}
    assert made[10].extra_minutes == 15 and made[11].extra_minutes == 0
    still = await db.get(User, other.id, populate_existing=True)
    assert still is not None and still.organization_id == theirs.id and still.name != "Taken"

    # Imported again with a change: updated, not duplicated.
    again = await client.post("/api/v1/users/import", json={"text": "s010@ours.edu,Renamed,30\n"})
    assert again.json() == {"created": 0, "updated": 1, "refused": []}

    # An enrolment that says nothing of extra time gives the student's own.
    exam = await client.post(
        "/api/v1/exams",
        json={
            "title": "Quiz",
            "opens_at": "2026-01-01T09:00:00Z",
            "closes_at": "2199-01-01T09:00:00Z",
            "duration_minutes": 30,
            "items": [],
        },
    )
    exam_id = exam.json()["id"]
    enrolled = await client.put(
        f"/api/v1/exams/{exam_id}/enrollments",
        json={"students": [{"email": "s010@ours.edu"}, {"email": "s011@ours.edu"}]},
    )
    assert enrolled.status_code == 200, enrolled.text
    listed = (await client.get(f"/api/v1/exams/{exam_id}/enrollments")).json()["items"]
    assert {e["email"]: e["extra_minutes"] for e in listed} == {
        "s010@ours.edu": 30,
        "s011@ours.edu": 0,
    }
