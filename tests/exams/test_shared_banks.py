"""Shared question banks: what the owner, a colleague of the organization (read-only
or editable bank), another organization and a student may each do, and what an
exam keeps when a bank stops being shared."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from tests.factories import exam, make_organization, make_user, new_exam, new_question
from tests.helpers import error_field, login, rows, signed_in


async def _bank(client: Any, name: str = "Algebra", sharing: str = "private") -> dict[str, Any]:
    made = await client.post("/api/v1/banks", json={"name": name, "sharing": sharing})
    assert made.status_code == 201, made.text
    body: dict[str, Any] = made.json()
    return body


async def _shared_question(
    client: Any, sharing: str, **over: Any
) -> tuple[dict[str, Any], dict[str, Any]]:
    """A new question of ``client``'s, filed in a new bank shared as ``sharing``."""
    bank = await _bank(client, f"Bank {sharing}", sharing)
    question = await new_question(client, **over)
    moved = await client.put(
        f"/api/v1/questions/{question['id']}/bank", json={"bank_id": bank["id"]}
    )
    assert moved.status_code == 200, moved.text
    assert moved.json()["bank_id"] == bank["id"]
    return bank, question


async def _listed_ids(client: Any, url: str) -> set[str]:
    response = await client.get(url)
    assert response.status_code == 200, response.text
    return {item["id"] for item in response.json()["items"]}


async def test_a_private_bank_is_its_owners_alone(make_client: Any, db: AsyncSession) -> None:
    alice, _ = await signed_in(make_client, db, "educator")
    bob, _ = await signed_in(make_client, db, "educator")
    bank, question = await _shared_question(alice, "private")
    assert bank["id"] in await _listed_ids(alice, "/api/v1/banks")
    assert question["id"] in await _listed_ids(alice, f"/api/v1/questions?bank_id={bank['id']}")
    assert bank["id"] not in await _listed_ids(bob, "/api/v1/banks")
    assert question["id"] not in await _listed_ids(bob, "/api/v1/questions")
    assert (await bob.get(f"/api/v1/questions/{question['id']}")).status_code == 404
    assert (
        await bob.patch(f"/api/v1/banks/{bank['id']}", json={"sharing": "org_edit"})
    ).status_code == 404
    made = await bob.post("/api/v1/exams", json=exam([{"question_id": question["id"]}]))
    assert made.status_code == 422 and error_field(made) == "items[0].question_id"


async def test_a_read_only_bank_is_found_and_used_but_not_changed(
    make_client: Any, db: AsyncSession
) -> None:
    alice, _ = await signed_in(make_client, db, "educator")
    bob, _ = await signed_in(make_client, db, "educator")
    bank, question = await _shared_question(alice, "org_read", prompt="Shared sum", tags=["pooled"])
    url = f"/api/v1/questions/{question['id']}"

    listed = (await bob.get("/api/v1/banks")).json()["items"]
    assert [(b["id"], b["access"], b["questions"]) for b in listed] == [(bank["id"], "read", 1)]
    assert question["id"] in await _listed_ids(bob, "/api/v1/questions?q=shared")
    assert question["id"] in await _listed_ids(bob, f"/api/v1/questions?bank_id={bank['id']}")
    assert (await bob.get(url)).status_code == 200
    assert (await bob.get(f"{url}/student-view")).status_code == 200

    refused = await bob.patch(url, json={"prompt": "Mine now"})
    assert refused.status_code == 403, refused.text
    assert refused.json()["error"]["code"] == "question_read_only"
    assert (await bob.delete(url)).status_code == 403
    assert (await bob.put(f"{url}/bank", json={"bank_id": None})).status_code == 403
    assert (
        await bob.patch(f"/api/v1/banks/{bank['id']}", json={"sharing": "org_edit"})
    ).status_code == 403
    assert (await alice.get(url)).json()["prompt"] == "Shared sum"

    # Bob's exams may hold it as a fixed item, and draw it by its tag.
    fixed = await new_exam(bob, [{"question_id": question["id"]}])
    assert fixed["items"][0]["question_id"] == question["id"]
    drawn = await new_exam(bob, [{"draw": {"tag": "pooled", "count": 1}, "points": 1}])
    assert (await bob.post(f"/api/v1/exams/{drawn['id']}/publish")).status_code == 200
    student, pupil = await signed_in(make_client, db, "student")
    enrolled = await bob.put(
        f"/api/v1/exams/{drawn['id']}/enrollments", json={"students": [{"email": pupil.email}]}
    )
    assert enrolled.status_code == 200, enrolled.text
    started = await student.post(f"/api/v1/exams/{drawn['id']}/sessions")
    assert started.status_code == 201, started.text
    assert [q["id"] for q in started.json()["questions"]] == [question["id"]]


async def test_an_editable_bank_lets_colleagues_edit_and_records_who(
    make_client: Any, db: AsyncSession
) -> None:
    alice, _ = await signed_in(make_client, db, "educator")
    bob, bob_user = await signed_in(make_client, db, "educator")
    bank, question = await _shared_question(alice, "org_read")
    url = f"/api/v1/questions/{question['id']}"
    assert (await bob.patch(url, json={"prompt": "Early"})).status_code == 403

    switched = await alice.patch(f"/api/v1/banks/{bank['id']}", json={"sharing": "org_edit"})
    assert switched.status_code == 200 and switched.json()["sharing"] == "org_edit"
    edited = await bob.patch(url, json={"prompt": "Reworded by a colleague", "points": 3})
    assert edited.status_code == 200, edited.text
    assert (await alice.get(url)).json()["prompt"] == "Reworded by a colleague"
    trail = await rows(
        db,
        "SELECT actor_id, at, details FROM audit_events"
        " WHERE action = 'question.edit' AND subject_id = :q",
        q=question["id"],
    )
    assert [(r.actor_id, sorted(r.details["fields"])) for r in trail] == [
        (bob_user.id, ["points", "prompt"])
    ]
    assert trail[0].at is not None
    # Editing is not owning: deleting it or moving it stays the owner's.
    assert (await bob.delete(url)).status_code == 403
    assert (await bob.put(f"{url}/bank", json={"bank_id": None})).status_code == 403


async def test_the_organizations_admin_manages_an_educators_bank(
    make_client: Any, db: AsyncSession
) -> None:
    alice, _ = await signed_in(make_client, db, "educator")
    admin, _ = await signed_in(make_client, db, "admin")
    bank, question = await _shared_question(alice, "private")
    assert bank["id"] in await _listed_ids(admin, "/api/v1/banks")
    changed = await admin.patch(f"/api/v1/banks/{bank['id']}", json={"sharing": "org_read"})
    assert changed.status_code == 200 and changed.json()["access"] == "owner"
    assert (
        await admin.patch(f"/api/v1/questions/{question['id']}", json={"points": 2})
    ).status_code == 200


async def test_another_organization_sees_no_shared_bank(make_client: Any, db: AsyncSession) -> None:
    alice, _ = await signed_in(make_client, db, "educator")
    bank, question = await _shared_question(alice, "org_edit")
    other = await make_organization(db)
    for role in ("educator", "admin"):
        stranger = await make_client()
        await login(stranger, (await make_user(db, role, organization=other)).email)
        assert await _listed_ids(stranger, "/api/v1/banks") == set()
        assert question["id"] not in await _listed_ids(stranger, "/api/v1/questions")
        url = f"/api/v1/questions/{question['id']}"
        assert (await stranger.get(url)).status_code == 404
        assert (await stranger.patch(url, json={"prompt": "x"})).status_code == 404
        assert (await stranger.put(f"{url}/bank", json={"bank_id": None})).status_code == 404
        patched = await stranger.patch(f"/api/v1/banks/{bank['id']}", json={"sharing": "private"})
        assert patched.status_code == 404
        made = await stranger.post("/api/v1/exams", json=exam([{"question_id": question["id"]}]))
        assert made.status_code == 422
        # A stranger's own question cannot be filed into the bank either.
        own = await new_question(stranger)
        moved = await stranger.put(
            f"/api/v1/questions/{own['id']}/bank", json={"bank_id": bank["id"]}
        )
        assert moved.status_code == 422 and error_field(moved) == "bank_id"
    assert (await alice.get(f"/api/v1/questions/{question['id']}")).json()["prompt"] == question[
        "prompt"
    ]


async def test_students_have_no_banks(make_client: Any, db: AsyncSession) -> None:
    student, _ = await signed_in(make_client, db, "student")
    assert (await student.get("/api/v1/banks")).status_code == 403
    assert (await student.post("/api/v1/banks", json={"name": "Mine"})).status_code == 403


async def test_bank_names_are_checked(make_client: Any, db: AsyncSession) -> None:
    alice, _ = await signed_in(make_client, db, "educator")
    await _bank(alice, "Algebra")
    taken = await alice.post("/api/v1/banks", json={"name": " Algebra "})
    assert taken.status_code == 409 and taken.json()["error"]["code"] == "bank_name_taken"
    blank = await alice.post("/api/v1/banks", json={"name": "   "})
    assert blank.status_code == 422 and error_field(blank) == "name"
    odd = await alice.post("/api/v1/banks", json={"name": "X", "sharing": "public"})
    assert odd.status_code == 422


async def test_an_exam_keeps_its_shared_questions_when_the_bank_goes_private(
    make_client: Any, db: AsyncSession
) -> None:
    alice, _ = await signed_in(make_client, db, "educator")
    bob, _ = await signed_in(make_client, db, "educator")
    bank, question = await _shared_question(alice, "org_read")
    items = [{"question_id": question["id"], "points": 2}]
    published = await new_exam(bob, items)
    assert (await bob.post(f"/api/v1/exams/{published['id']}/publish")).status_code == 200
    draft = await new_exam(bob, items, title="Resit")

    private = await alice.patch(f"/api/v1/banks/{bank['id']}", json={"sharing": "private"})
    assert private.status_code == 200, private.text

    # The published exam still hands the question to a student who starts now.
    student, pupil = await signed_in(make_client, db, "student")
    await bob.put(
        f"/api/v1/exams/{published['id']}/enrollments", json={"students": [{"email": pupil.email}]}
    )
    started = await student.post(f"/api/v1/exams/{published['id']}/sessions")
    assert started.status_code == 201, started.text
    assert [q["id"] for q in started.json()["questions"]] == [question["id"]]
    # A draft that holds it keeps it through an edit of its items; a new exam may not take it.
    kept = await bob.patch(f"/api/v1/exams/{draft['id']}", json={"items": items})
    assert kept.status_code == 200, kept.text
    refused = await bob.post("/api/v1/exams", json=exam(items))
    assert refused.status_code == 422
    assert (await bob.get(f"/api/v1/questions/{question['id']}")).status_code == 404


async def test_a_bank_stays_shared_while_a_published_draw_needs_it(
    make_client: Any, db: AsyncSession
) -> None:
    alice, _ = await signed_in(make_client, db, "educator")
    bob, _ = await signed_in(make_client, db, "educator")
    bank, question = await _shared_question(alice, "org_read", tags=["only-shared"])
    drawn = await new_exam(bob, [{"draw": {"tag": "only-shared", "count": 1}, "points": 1}])
    assert (await bob.post(f"/api/v1/exams/{drawn['id']}/publish")).status_code == 200
    refused = await alice.patch(f"/api/v1/banks/{bank['id']}", json={"sharing": "private"})
    assert refused.status_code == 409, refused.text
    assert refused.json()["error"]["code"] == "draw_pool_too_small"
    taken_out = await alice.put(f"/api/v1/questions/{question['id']}/bank", json={"bank_id": None})
    assert taken_out.status_code == 409
    retired = await alice.patch(f"/api/v1/questions/{question['id']}", json={"status": "draft"})
    assert retired.status_code == 409
    # Making it editable keeps it shared: allowed.
    editable = await alice.patch(f"/api/v1/banks/{bank['id']}", json={"sharing": "org_edit"})
    assert editable.status_code == 200
