"""Enrollment by email, pre-enrollment linking, and the lookups other domains use."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from safexam.auth.guards import Principal
from safexam.auth.service import create_user
from safexam.core.errors import NotFound
from safexam.exams import service
from tests.factories import new_exam, new_question
from tests.helpers import error_field, make_user, signed_in


async def _exam(client: Any) -> dict[str, Any]:
    question = await new_question(client, points=2)
    return await new_exam(
        client, [{"question_id": question["id"]}, {"draw": {"tag": "t", "count": 3}, "points": 1}]
    )


async def test_enroll_links_known_and_pre_enrolls_unknown(
    make_client: Any, db: AsyncSession
) -> None:
    client, _ = await signed_in(make_client, db, "educator")
    known = await make_user(db, "student", email="known@college.edu")
    created = await _exam(client)
    url = f"/api/v1/exams/{created['id']}/enrollments"
    response = await client.put(
        url,
        json={
            "students": [
                {"email": "Known@College.edu", "extra_minutes": 15},
                {"email": "  NEW@college.edu ", "time_multiplier": 1.5},
            ]
        },
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"enrolled": 2}
    listed = (await client.get(url)).json()
    assert listed["total"] == 2
    by_email = {e["email"]: e for e in listed["items"]}
    assert by_email["known@college.edu"]["linked"] is True
    assert by_email["known@college.edu"]["user_id"] == str(known.id)
    assert by_email["known@college.edu"]["extra_minutes"] == 15
    assert by_email["new@college.edu"]["linked"] is False
    assert by_email["new@college.edu"]["time_multiplier"] == 1.5
    assert (await client.get(f"/api/v1/exams/{created['id']}")).json()["counts"]["enrolled"] == 2

    # The pre-enrolled student signs up later: the enrollment is theirs from then on.
    newcomer = await create_user(db, email="new@college.edu", name="New", role="student")
    linked = {e["email"]: e for e in (await client.get(url)).json()["items"]}
    assert linked["new@college.edu"]["linked"] is True
    assert linked["new@college.edu"]["user_id"] == str(newcomer.id)
    assert linked["new@college.edu"]["name"] == "New"
    enrollment = await service.get_enrollment(db, uuid.UUID(created["id"]), newcomer)
    assert enrollment is not None and enrollment.time_multiplier == 1.5


async def test_upsert_keeps_omitted_accommodations(make_client: Any, db: AsyncSession) -> None:
    client, _ = await signed_in(make_client, db, "educator")
    created = await _exam(client)
    url = f"/api/v1/exams/{created['id']}/enrollments"
    first = {"students": [{"email": "a@college.edu", "extra_minutes": 20, "time_multiplier": 2}]}
    assert (await client.put(url, json=first)).status_code == 200
    again = {"students": [{"email": "A@college.edu", "time_multiplier": 1.25}, {"email": "b@x.io"}]}
    assert (await client.put(url, json=again)).json() == {"enrolled": 2}
    items = {e["email"]: e for e in (await client.get(url)).json()["items"]}
    assert len(items) == 2
    assert items["a@college.edu"]["extra_minutes"] == 20
    assert items["a@college.edu"]["time_multiplier"] == 1.25
    assert items["b@x.io"]["extra_minutes"] == 0 and items["b@x.io"]["time_multiplier"] == 1


@pytest.mark.parametrize(
    ("students", "field"),
    [
        ([{"email": "s@college.edu"}, {"email": "teacher@college.edu"}], "students[1].email"),
        ([{"email": "s@college.edu"}, {"email": "S@college.edu"}], "students[1].email"),
        ([{"email": "s@college.edu", "extra_minutes": -5}], "students[0].extra_minutes"),
        ([{"email": "s@college.edu", "time_multiplier": 0.5}], "students[0].time_multiplier"),
        ([{"email": "not-an-email"}], "students[0].email"),
        ([{"email": "s@college.edu", "seat": 4}], "students[0].seat"),
        ([], "students"),
    ],
)
async def test_invalid_enrollment_is_422_naming_the_entry(
    make_client: Any, db: AsyncSession, students: list[dict[str, Any]], field: str
) -> None:
    client, _ = await signed_in(make_client, db, "educator")
    await make_user(db, "educator", email="teacher@college.edu")
    created = await _exam(client)
    url = f"/api/v1/exams/{created['id']}/enrollments"
    response = await client.put(url, json={"students": students})
    assert response.status_code == 422, response.text
    assert error_field(response) == field, response.text
    assert (await client.get(url)).json()["total"] == 0


async def test_unenroll(make_client: Any, db: AsyncSession) -> None:
    client, _ = await signed_in(make_client, db, "educator")
    created = await _exam(client)
    url = f"/api/v1/exams/{created['id']}/enrollments"
    await client.put(
        url, json={"students": [{"email": "a@college.edu"}, {"email": "b@college.edu"}]}
    )
    assert (await client.delete(f"{url}/A@college.edu")).status_code == 204
    assert [e["email"] for e in (await client.get(url)).json()["items"]] == ["b@college.edu"]
    missing = await client.delete(f"{url}/a@college.edu")
    assert missing.status_code == 404


async def test_service_lookups(make_client: Any, db: AsyncSession) -> None:
    client, educator = await signed_in(make_client, db, "educator")
    other = await make_user(db, "educator")
    created = await _exam(client)
    exam_id = uuid.UUID(created["id"])

    def principal(user: Any) -> Principal:
        return Principal(
            id=user.id,
            email=user.email,
            name=user.name,
            role=user.role,
            organization_id=user.organization_id,
        )

    exam = await service.get_owned_exam(db, exam_id, principal(educator))
    assert exam.title == created["title"]
    with pytest.raises(NotFound):
        await service.get_owned_exam(db, exam_id, principal(other))
    with pytest.raises(NotFound):
        await service.get_owned_exam(db, uuid.uuid4(), principal(educator))

    items = await service.get_exam_items(db, exam_id)
    assert [(i.position, i.draw_tag) for i in items] == [(0, None), (1, "t")]
    assert service.exam_max_score(items) == 2 + 3 * 1 == created["max_score"]
    assert await service.load_exam_max_score(db, exam_id) == 5

    student = await make_user(db, "student")
    assert await service.get_enrollment(db, exam_id, student) is None
    await client.put(
        f"/api/v1/exams/{created['id']}/enrollments",
        json={"students": [{"email": student.email, "extra_minutes": 10}]},
    )
    enrollment = await service.get_enrollment(db, exam_id, principal(student))
    assert enrollment is not None and enrollment.extra_minutes == 10
    assert enrollment.user_id == student.id
