"""Exams: validation, CRUD, ownership, publishing and what a published exam may change."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from safexam.sessions.models import ExamSession
from tests.factories import exam, iso, new_exam, new_question
from tests.helpers import error_field, signed_in


async def test_exam_round_trip(make_client: Any, db: AsyncSession) -> None:
    client, educator = await signed_in(make_client, db, "educator")
    fixed = await new_question(client, points=3)
    for i in range(3):
        await new_question(client, prompt=f"draw {i}", tags=["arith"])
    response = await client.post(
        "/api/v1/exams",
        json=exam(
            [
                {"question_id": fixed["id"], "points": 2},
                {"draw": {"tag": "Arith", "count": 2}, "points": 1.5},
                {"question_id": (await new_question(client, tags=[], points=4))["id"]},
            ]
        ),
    )
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["status"] == "draft" and created["published_at"] is None
    assert created["owner_id"] == str(educator.id)
    assert created["attempts_allowed"] == 1 and created["release_policy"] == "immediate"
    assert created["integrity"]["require_fullscreen"] is True
    assert "focus_lost" in created["integrity"]["flag_kinds"]
    assert [i["position"] for i in created["items"]] == [0, 1, 2]
    assert created["items"][0]["question_id"] == fixed["id"]
    assert created["items"][0]["question"]["kind"] == "mcq_single"
    assert created["items"][1]["draw"] == {"tag": "arith", "count": 2}
    assert created["items"][2]["points"] == 4  # defaults to the question's points
    assert created["max_score"] == 2 + 2 * 1.5 + 4
    assert created["counts"] == {
        "items": 3,
        "questions_per_student": 4,
        "enrolled": 0,
        "sessions": 0,
        "submitted": 0,
    }

    url = f"/api/v1/exams/{created['id']}"
    fetched = await client.get(url)
    assert fetched.status_code == 200 and fetched.json() == created

    patched = await client.patch(
        url,
        json={
            "title": "Final",
            "attempts_allowed": 2,
            "items": [{"draw": {"tag": "arith", "count": 3}, "points": 1}],
        },
    )
    assert patched.status_code == 200, patched.text
    body = patched.json()
    assert body["title"] == "Final" and body["attempts_allowed"] == 2
    assert body["description"] == created["description"]
    assert len(body["items"]) == 1 and body["max_score"] == 3

    listed = await client.get("/api/v1/exams")
    assert listed.status_code == 200
    assert [e["id"] for e in listed.json()["items"]] == [created["id"]]

    assert (await client.delete(url)).status_code == 204
    assert (await client.get(url)).status_code == 404


async def test_exam_list_filters_and_pages(make_client: Any, db: AsyncSession) -> None:
    client, _ = await signed_in(make_client, db, "educator")
    question = await new_question(client)
    ids = [
        (await new_exam(client, [{"question_id": question["id"]}], title=f"Quiz {i}"))["id"]
        for i in range(5)
    ]
    assert (await client.post(f"/api/v1/exams/{ids[0]}/publish")).status_code == 200
    first = (await client.get("/api/v1/exams?limit=2")).json()
    rest = (await client.get("/api/v1/exams?limit=2&offset=2")).json()
    last = (await client.get("/api/v1/exams?limit=2&offset=4")).json()
    assert first["total"] == rest["total"] == last["total"] == 5
    seen = [e["id"] for page in (first, rest, last) for e in page["items"]]
    assert sorted(seen) == sorted(ids)
    published = (await client.get("/api/v1/exams?status=published")).json()
    assert [e["id"] for e in published["items"]] == [ids[0]]
    assert (await client.get("/api/v1/exams?q=quiz%203")).json()["total"] == 1


def _later(hours: float) -> str:
    return iso(datetime.now(UTC) + timedelta(hours=hours))


_SAME = _later(1)
INVALID_EXAMS = [
    ("window backwards", {"opens_at": _later(3), "closes_at": _later(1)}, "closes_at"),
    ("window empty", {"opens_at": _SAME, "closes_at": _SAME}, "closes_at"),
    ("duration zero", {"duration_minutes": 0}, "duration_minutes"),
    ("attempts zero", {"attempts_allowed": 0}, "attempts_allowed"),
    ("naive time", {"opens_at": "2026-11-25T10:00:00"}, "opens_at"),
    ("release policy", {"release_policy": "never"}, "release_policy"),
    ("unknown field", {"proctor": "me"}, "proctor"),
    ("blank title", {"title": ""}, "title"),
    ("unknown flag kind", {"integrity": {"flag_kinds": ["sneeze"]}}, "integrity.flag_kinds[0]"),
    ("unknown integrity field", {"integrity": {"webcam": True}}, "integrity.webcam"),
    (
        "draw count zero",
        {"items": [{"draw": {"tag": "a", "count": 0}, "points": 1}]},
        "items[0].draw.count",
    ),
    ("draw without points", {"items": [{"draw": {"tag": "a", "count": 1}}]}, "items[0].points"),
    ("item with neither", {"items": [{"points": 1}]}, "items[0]"),
    (
        "negative item points",
        {"items": [{"draw": {"tag": "a", "count": 1}, "points": -1}]},
        "items[0].points",
    ),
    (
        "unknown question",
        {"items": [{"question_id": "00000000-0000-4000-8000-000000000000", "points": 1}]},
        "items[0].question_id",
    ),
]


@pytest.mark.parametrize(
    ("changes", "field"), [pytest.param(c, f, id=n) for n, c, f in INVALID_EXAMS]
)
async def test_invalid_exam_is_422_naming_the_field(
    make_client: Any, db: AsyncSession, changes: dict[str, Any], field: str
) -> None:
    client, _ = await signed_in(make_client, db, "educator")
    payload = exam([{"draw": {"tag": "a", "count": 1}, "points": 1}])
    payload.update(changes)
    response = await client.post("/api/v1/exams", json=payload)
    assert response.status_code == 422, response.text
    assert error_field(response) == field, response.text
    assert (await client.get("/api/v1/exams")).json()["total"] == 0


async def test_items_must_be_my_questions_once_each(make_client: Any, db: AsyncSession) -> None:
    alice, _ = await signed_in(make_client, db, "educator")
    bob, _ = await signed_in(make_client, db, "educator")
    mine = await new_question(alice)
    theirs = await new_question(bob)
    foreign = await alice.post("/api/v1/exams", json=exam([{"question_id": theirs["id"]}]))
    assert foreign.status_code == 422 and error_field(foreign) == "items[0].question_id"
    both = await alice.post(
        "/api/v1/exams",
        json=exam([{"question_id": mine["id"], "draw": {"tag": "x", "count": 1}, "points": 1}]),
    )
    assert both.status_code == 422 and error_field(both) == "items[0]"
    twice = await alice.post(
        "/api/v1/exams", json=exam([{"question_id": mine["id"]}, {"question_id": mine["id"]}])
    )
    assert twice.status_code == 422 and error_field(twice) == "items[1].question_id"


async def test_patch_window_is_checked_against_stored_values(
    make_client: Any, db: AsyncSession
) -> None:
    client, _ = await signed_in(make_client, db, "educator")
    question = await new_question(client)
    created = await new_exam(client, [{"question_id": question["id"]}])
    response = await client.patch(
        f"/api/v1/exams/{created['id']}", json={"closes_at": created["opens_at"]}
    )
    assert response.status_code == 422 and error_field(response) == "closes_at"


async def test_other_educators_exam_is_404(make_client: Any, db: AsyncSession) -> None:
    alice, _ = await signed_in(make_client, db, "educator")
    bob, _ = await signed_in(make_client, db, "educator")
    admin, _ = await signed_in(make_client, db, "admin")
    question = await new_question(alice)
    created = await new_exam(alice, [{"question_id": question["id"]}])
    url = f"/api/v1/exams/{created['id']}"
    for response in (
        await bob.get(url),
        await bob.patch(url, json={"title": "taken"}),
        await bob.delete(url),
        await bob.post(f"{url}/publish"),
        await bob.get(f"{url}/enrollments"),
        await bob.put(f"{url}/enrollments", json={"students": [{"email": "s@college.edu"}]}),
        await bob.delete(f"{url}/enrollments/s@college.edu"),
    ):
        assert response.status_code == 404, response.text
        assert response.json()["error"]["code"] == "not_found"
    assert (await bob.get("/api/v1/exams")).json()["total"] == 0
    assert (await alice.get(url)).json()["title"] == created["title"]
    assert (await admin.get(url)).status_code == 200


async def test_students_cannot_use_authoring_routes(make_client: Any, db: AsyncSession) -> None:
    educator, _ = await signed_in(make_client, db, "educator")
    question = await new_question(educator)
    created = await new_exam(educator, [{"question_id": question["id"]}], title="Secret draft")
    student, _ = await signed_in(make_client, db, "student")
    url = f"/api/v1/exams/{created['id']}"
    for response in (
        await student.post("/api/v1/exams", json=exam([{"question_id": question["id"]}])),
        await student.get(url),
        await student.patch(url, json={"title": "x"}),
        await student.delete(url),
        await student.post(f"{url}/publish"),
        await student.get(f"{url}/enrollments"),
        await student.put(f"{url}/enrollments", json={"students": [{"email": "a@b.c"}]}),
    ):
        assert response.status_code == 403, response.text
        assert response.json()["error"]["code"] == "wrong_role"
    # The list route is shared: a student gets their own exams, never someone's draft.
    mine = await student.get("/api/v1/exams")
    assert mine.status_code == 200
    assert "Secret draft" not in mine.text and created["id"] not in mine.text


async def test_publish_rules(make_client: Any, db: AsyncSession) -> None:
    client, _ = await signed_in(make_client, db, "educator")
    draft_question = await new_question(client, status="draft")
    pool = [await new_question(client, prompt=f"p{i}", tags=["pool"]) for i in range(2)]

    empty = await new_exam(client, [])
    response = await client.post(f"/api/v1/exams/{empty['id']}/publish")
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "not_publishable"
    assert error_field(response) == "items"

    past = await new_exam(
        client,
        [{"question_id": pool[0]["id"]}],
        opens_at=iso(datetime.now(UTC) - timedelta(hours=3)),
        closes_at=iso(datetime.now(UTC) - timedelta(hours=1)),
    )
    response = await client.post(f"/api/v1/exams/{past['id']}/publish")
    assert response.status_code == 422 and error_field(response) == "closes_at"

    inactive = await new_exam(client, [{"question_id": draft_question["id"]}])
    response = await client.post(f"/api/v1/exams/{inactive['id']}/publish")
    assert response.status_code == 422 and error_field(response) == "items[0].question_id"

    # The fixed pool[0] cannot also be drawn, so "pool" has one question for a draw of 2.
    short = await new_exam(
        client,
        [{"question_id": pool[0]["id"]}, {"draw": {"tag": "pool", "count": 2}, "points": 1}],
    )
    response = await client.post(f"/api/v1/exams/{short['id']}/publish")
    assert response.status_code == 422 and error_field(response) == "items[1].draw.count"
    assert (await client.get(f"/api/v1/exams/{short['id']}")).json()["status"] == "draft"

    ok = await new_exam(client, [{"draw": {"tag": "pool", "count": 2}, "points": 1}])
    response = await client.post(f"/api/v1/exams/{ok['id']}/publish")
    assert response.status_code == 200, response.text
    published = response.json()
    assert published["status"] == "published" and published["published_at"] is not None
    again = await client.post(f"/api/v1/exams/{ok['id']}/publish")
    assert again.status_code == 200 and again.json()["published_at"] == published["published_at"]


async def test_published_exam_keeps_its_content(make_client: Any, db: AsyncSession) -> None:
    client, _ = await signed_in(make_client, db, "educator")
    q1 = await new_question(client, prompt="one")
    q2 = await new_question(client, prompt="two")
    q3 = await new_question(client, prompt="three")
    items = [{"question_id": q1["id"], "points": 1}, {"question_id": q2["id"], "points": 2}]
    created = await new_exam(client, items)
    url = f"/api/v1/exams/{created['id']}"
    assert (await client.post(f"{url}/publish")).status_code == 200

    refused = [
        {"items": [*items, {"question_id": q3["id"], "points": 1}]},  # added
        {"items": items[:1]},  # removed
        {"items": list(reversed(items))},  # reordered
        {"items": [items[0], {"question_id": q3["id"], "points": 2}]},  # swapped
        {"items": [items[0], {"question_id": q2["id"], "points": 5}]},  # re-weighted
        {"duration_minutes": 90},
        {"opens_at": iso(datetime.now(UTC) + timedelta(minutes=5))},
        {"attempts_allowed": 3},
        {"shuffle_questions": False},
        {"closes_at": iso(datetime.now(UTC) + timedelta(minutes=30))},  # shortened
    ]
    for change in refused:
        response = await client.patch(url, json=change)
        assert response.status_code == 409, (change, response.text)
        assert response.json()["error"]["code"] == "exam_published"
    unchanged = (await client.get(url)).json()
    assert unchanged["items"] == created["items"] and unchanged["closes_at"] == created["closes_at"]

    later = iso(datetime.now(UTC) + timedelta(hours=5))
    allowed = await client.patch(
        url,
        json={
            "title": "Renamed",
            "description": "Bring a pencil",
            "closes_at": later,
            "release_policy": "manual",
            "integrity": {"require_fullscreen": False, "flag_kinds": ["paste"]},
            "items": items,  # resending the same items is not a change
            "duration_minutes": created["duration_minutes"],
        },
    )
    assert allowed.status_code == 200, allowed.text
    body = allowed.json()
    assert body["title"] == "Renamed" and body["description"] == "Bring a pencil"
    assert body["release_policy"] == "manual"
    assert body["integrity"] == {"require_fullscreen": False, "flag_kinds": ["paste"]}
    assert datetime.fromisoformat(body["closes_at"]) == datetime.fromisoformat(later)
    assert body["status"] == "published" and body["items"] == created["items"]


async def test_delete_rules(make_client: Any, db: AsyncSession) -> None:
    client, _ = await signed_in(make_client, db, "educator")
    _, student_user = await signed_in(make_client, db, "student")
    question = await new_question(client)
    quiet = await new_exam(client, [{"question_id": question["id"]}])
    assert (await client.post(f"/api/v1/exams/{quiet['id']}/publish")).status_code == 200
    assert (await client.delete(f"/api/v1/exams/{quiet['id']}")).status_code == 204

    busy = await new_exam(client, [{"question_id": question["id"]}])
    assert (await client.post(f"/api/v1/exams/{busy['id']}/publish")).status_code == 200
    now = datetime.now(UTC)
    db.add(
        ExamSession(
            exam_id=busy["id"],
            user_id=student_user.id,
            attempt=1,
            status="active",
            started_at=now,
            deadline_at=now + timedelta(minutes=60),
            seed=1,
            paper=[{"question_id": question["id"], "points": 1}],
        )
    )
    await db.commit()
    response = await client.delete(f"/api/v1/exams/{busy['id']}")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "exam_has_sessions"
    counts = (await client.get(f"/api/v1/exams/{busy['id']}")).json()["counts"]
    assert counts["sessions"] == 1 and counts["submitted"] == 0
