"""The question bank: strict bodies, filters, ownership, edits and deletion."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from tests.factories import coding, mcq, new_exam, new_question
from tests.helpers import error_field, signed_in


async def test_create_and_read_mcq(make_client: Any, db: AsyncSession) -> None:
    client, educator = await signed_in(make_client, db, "educator")
    response = await client.post("/api/v1/questions", json=mcq(tags=[" Arith ", "arith", "x"]))
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["kind"] == "mcq_single"
    assert created["owner_id"] == str(educator.id)
    assert created["source"] == "manual" and created["status"] == "active"
    assert created["tags"] == ["arith", "x"]
    assert created["body"]["answer"] == ["b"]
    fetched = await client.get(f"/api/v1/questions/{created['id']}")
    assert fetched.status_code == 200
    assert fetched.json() == created


async def test_create_coding_fills_defaults(make_client: Any, db: AsyncSession) -> None:
    client, _ = await signed_in(make_client, db, "educator")
    payload = coding()
    del payload["body"]["limits"]
    response = await client.post("/api/v1/questions", json=payload)
    assert response.status_code == 201, response.text
    body = response.json()["body"]
    assert body["limits"] == {
        "cpu_time_s": 2.0,
        "wall_time_s": 5.0,
        "memory_mb": 256,
        "output_kb": 64,
    }
    assert [t["hidden"] for t in body["tests"]] == [False, True]


def _mutated(base: dict[str, Any], path: list[Any], value: Any) -> dict[str, Any]:
    payload = copy.deepcopy(base)
    target: Any = payload
    for key in path[:-1]:
        target = target[key]
    if value is _DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return payload


_DELETE = object()

INVALID = [
    ("answer not among choices", mcq(), ["body", "answer"], ["c"], "body.answer"),
    (
        "duplicate choice ids",
        mcq(),
        ["body", "choices"],
        [{"id": "a", "text": "3"}, {"id": "a", "text": "4"}],
        "body.choices",
    ),
    ("coding without tests", coding(), ["body", "tests"], [], "body.tests"),
    (
        "test without expected output",
        coding(),
        ["body", "tests", 0, "expected_output"],
        _DELETE,
        "body.tests[0].expected_output",
    ),
    ("negative points", mcq(), ["points"], -1, "points"),
    ("negative test points", coding(), ["body", "tests", 1, "points"], -2, "body.tests[1].points"),
    ("unknown field", mcq(), ["difficulty"], "hard", "difficulty"),
    ("unknown body field", mcq(), ["body", "explanation"], "because", "body.explanation"),
    ("unknown kind", mcq(), ["kind"], "essay", "kind"),
    ("archived at creation", mcq(), ["status"], "archived", "status"),
    ("empty prompt", mcq(), ["prompt"], "", "prompt"),
    ("body not an object", mcq(), ["body"], "b", "body"),
    (
        "template without placeholder",
        coding(),
        ["body", "template", "python"],
        "x",
        "body.template",
    ),
]


@pytest.mark.parametrize(
    ("payload", "field"),
    [pytest.param(_mutated(b, p, v), f, id=name) for name, b, p, v, f in INVALID],
)
async def test_invalid_question_is_422_naming_the_field(
    make_client: Any, db: AsyncSession, payload: dict[str, Any], field: str
) -> None:
    client, _ = await signed_in(make_client, db, "educator")
    response = await client.post("/api/v1/questions", json=payload)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "validation_error"
    assert error_field(response) == field, response.text
    listed = await client.get("/api/v1/questions")
    assert listed.json()["total"] == 0


async def test_filters_and_pagination(make_client: Any, db: AsyncSession) -> None:
    client, _ = await signed_in(make_client, db, "educator")
    made = []
    for index in range(7):
        made.append(
            await new_question(
                client,
                prompt=f"Sum question {index}",
                tags=["arith"] if index % 2 == 0 else ["logic"],
                status="active" if index < 5 else "draft",
            )
        )
    await new_question(client, **{**coding(), "tags": ["code"], "prompt": "Add two numbers"})

    async def page(query: str) -> dict[str, Any]:
        response = await client.get(f"/api/v1/questions?{query}")
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result

    everything = await page("")
    assert everything["total"] == 8 and len(everything["items"]) == 8
    assert (await page("status=draft"))["total"] == 2
    assert (await page("tag=arith"))["total"] == 4
    assert (await page("tag=ARITH&status=active"))["total"] == 3
    assert (await page("kind=coding"))["total"] == 1
    assert (await page("source=qie"))["total"] == 0
    assert (await page("source=manual"))["total"] == 8
    found = await page("q=question%203")
    assert [i["prompt"] for i in found["items"]] == ["Sum question 3"]
    assert (await page("q=logic"))["total"] == 3  # tags are searched too

    first = await page("limit=3&offset=0")
    second = await page("limit=3&offset=3")
    third = await page("limit=3&offset=6")
    assert first["total"] == second["total"] == third["total"] == 8
    ids = [i["id"] for p in (first, second, third) for i in p["items"]]
    assert len(ids) == 8 and len(set(ids)) == 8
    assert len(third["items"]) == 2

    bad = await client.get("/api/v1/questions?limit=0")
    assert bad.status_code in (400, 422)
    bad_status = await client.get("/api/v1/questions?status=deleted")
    assert bad_status.status_code in (400, 422)


async def test_patch_changes_only_given_fields(make_client: Any, db: AsyncSession) -> None:
    client, _ = await signed_in(make_client, db, "educator")
    question = await new_question(client)
    new_body = {
        "choices": [{"id": "a", "text": "3"}, {"id": "b", "text": "4"}, {"id": "c", "text": "5"}],
        "answer": ["a"],
    }
    response = await client.patch(f"/api/v1/questions/{question['id']}", json={"body": new_body})
    assert response.status_code == 200, response.text
    updated = response.json()
    assert updated["body"]["answer"] == ["a"] and len(updated["body"]["choices"]) == 3
    assert updated["prompt"] == question["prompt"] and updated["points"] == question["points"]
    assert updated["tags"] == question["tags"]

    renamed = await client.patch(
        f"/api/v1/questions/{question['id']}", json={"prompt": "2+2?", "points": 3, "tags": ["x"]}
    )
    assert renamed.status_code == 200
    assert renamed.json()["body"] == updated["body"]
    assert renamed.json()["points"] == 3 and renamed.json()["tags"] == ["x"]


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"kind": "mcq_multi"}, "kind"),
        (
            {
                "body": {
                    "choices": [{"id": "a", "text": "1"}, {"id": "b", "text": "2"}],
                    "answer": ["z"],
                }
            },
            "body.answer",
        ),
        ({"body": {"answer": 4, "tolerance": 0}}, "body.answer"),
        ({"points": -0.5}, "points"),
        ({"status": "gone"}, "status"),
        ({"owner_id": "00000000-0000-0000-0000-000000000000"}, "owner_id"),
    ],
)
async def test_patch_is_validated(
    make_client: Any, db: AsyncSession, patch: dict[str, Any], field: str
) -> None:
    client, _ = await signed_in(make_client, db, "educator")
    question = await new_question(client)
    response = await client.patch(f"/api/v1/questions/{question['id']}", json=patch)
    assert response.status_code == 422, response.text
    assert error_field(response) == field, response.text
    unchanged = await client.get(f"/api/v1/questions/{question['id']}")
    assert unchanged.json() == question


async def test_same_kind_in_patch_is_accepted(make_client: Any, db: AsyncSession) -> None:
    client, _ = await signed_in(make_client, db, "educator")
    question = await new_question(client)
    response = await client.patch(
        f"/api/v1/questions/{question['id']}", json={"kind": "mcq_single", "prompt": "Again?"}
    )
    assert response.status_code == 200 and response.json()["prompt"] == "Again?"


async def test_other_educators_questions_are_404(make_client: Any, db: AsyncSession) -> None:
    alice, _ = await signed_in(make_client, db, "educator")
    bob, _ = await signed_in(make_client, db, "educator")
    question = await new_question(alice)
    url = f"/api/v1/questions/{question['id']}"
    assert (await bob.get(url)).status_code == 404
    assert (await bob.patch(url, json={"prompt": "mine now"})).status_code == 404
    assert (await bob.delete(url)).status_code == 404
    assert (await bob.get("/api/v1/questions")).json()["total"] == 0
    # Alice's question is untouched.
    assert (await alice.get(url)).json()["prompt"] == question["prompt"]


async def test_admin_sees_every_question(make_client: Any, db: AsyncSession) -> None:
    alice, _ = await signed_in(make_client, db, "educator")
    admin, _ = await signed_in(make_client, db, "admin")
    question = await new_question(alice)
    assert (await admin.get(f"/api/v1/questions/{question['id']}")).status_code == 200
    assert (await admin.get("/api/v1/questions")).json()["total"] == 1


async def test_students_and_strangers_are_kept_out(
    make_client: Any, db: AsyncSession, client: Any
) -> None:
    educator, _ = await signed_in(make_client, db, "educator")
    question = await new_question(educator)
    student, _ = await signed_in(make_client, db, "student")
    url = f"/api/v1/questions/{question['id']}"
    for response in (
        await student.get("/api/v1/questions"),
        await student.post("/api/v1/questions", json=mcq()),
        await student.get(url),
        await student.patch(url, json={"prompt": "x"}),
        await student.delete(url),
    ):
        assert response.status_code == 403, response.text
        assert response.json()["error"]["code"] == "wrong_role"
    anonymous = await client.get("/api/v1/questions")
    assert anonymous.status_code == 401


async def test_delete_unused_question(make_client: Any, db: AsyncSession) -> None:
    client, _ = await signed_in(make_client, db, "educator")
    question = await new_question(client)
    response = await client.delete(f"/api/v1/questions/{question['id']}")
    assert response.status_code == 204
    assert (await client.get(f"/api/v1/questions/{question['id']}")).status_code == 404


async def test_delete_question_of_a_draft_exam_archives_it(
    make_client: Any, db: AsyncSession
) -> None:
    client, _ = await signed_in(make_client, db, "educator")
    question = await new_question(client)
    await new_exam(client, [{"question_id": question["id"], "points": 2}])
    response = await client.delete(f"/api/v1/questions/{question['id']}")
    assert response.status_code == 204
    archived = await client.get(f"/api/v1/questions/{question['id']}")
    assert archived.status_code == 200 and archived.json()["status"] == "archived"
    assert (await client.get("/api/v1/questions")).json()["total"] == 0
    assert (await client.get("/api/v1/questions?status=archived")).json()["total"] == 1


async def test_published_exam_question_cannot_be_deleted_or_retired(
    make_client: Any, db: AsyncSession
) -> None:
    client, _ = await signed_in(make_client, db, "educator")
    question = await new_question(client)
    exam = await new_exam(client, [{"question_id": question["id"], "points": 2}])
    assert (await client.post(f"/api/v1/exams/{exam['id']}/publish")).status_code == 200
    url = f"/api/v1/questions/{question['id']}"
    refused = await client.delete(url)
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "question_in_published_exam"
    for status in ("draft", "archived"):
        retired = await client.patch(url, json={"status": status})
        assert retired.status_code == 409
        assert retired.json()["error"]["code"] == "question_in_published_exam"
    kind = await client.patch(url, json={"kind": "mcq_multi"})
    assert kind.status_code == 422 and error_field(kind) == "kind"
    still = await client.get(url)
    assert still.json()["status"] == "active" and still.json()["kind"] == "mcq_single"


async def test_answer_key_of_a_published_exam_may_change(
    make_client: Any, db: AsyncSession
) -> None:
    client, _ = await signed_in(make_client, db, "educator")
    question = await new_question(client)
    exam = await new_exam(client, [{"question_id": question["id"], "points": 2}])
    assert (await client.post(f"/api/v1/exams/{exam['id']}/publish")).status_code == 200
    fixed = {
        "choices": [{"id": "a", "text": "3"}, {"id": "b", "text": "4"}],
        "answer": ["a"],
    }
    response = await client.patch(f"/api/v1/questions/{question['id']}", json={"body": fixed})
    assert response.status_code == 200, response.text
    assert response.json()["body"]["answer"] == ["a"]


async def test_draw_pool_of_a_published_exam_is_protected(
    make_client: Any, db: AsyncSession
) -> None:
    client, _ = await signed_in(make_client, db, "educator")
    pool = [await new_question(client, prompt=f"Q{i}", tags=["pool"]) for i in range(2)]
    extra = await new_question(client, prompt="Q-extra", tags=["pool"], status="draft")
    exam = await new_exam(client, [{"draw": {"tag": "pool", "count": 2}, "points": 1}])
    assert (await client.post(f"/api/v1/exams/{exam['id']}/publish")).status_code == 200
    untag = await client.patch(f"/api/v1/questions/{pool[0]['id']}", json={"tags": ["other"]})
    assert untag.status_code == 409
    assert untag.json()["error"]["code"] == "draw_pool_too_small"
    assert (await client.delete(f"/api/v1/questions/{pool[1]['id']}")).status_code == 409
    # With a third active question in the pool, one of them may go.
    activated = await client.patch(f"/api/v1/questions/{extra['id']}", json={"status": "active"})
    assert activated.status_code == 200
    assert (await client.delete(f"/api/v1/questions/{pool[1]['id']}")).status_code == 204


@pytest.mark.parametrize("tag", ["a,b", "x,", ",", "   "])
async def test_a_tag_is_one_word_or_phrase_without_commas(
    make_client: Any, db: AsyncSession, tag: str
) -> None:
    client, _ = await signed_in(make_client, db, "educator")
    response = await client.post("/api/v1/questions", json=mcq(tags=[tag]))
    assert response.status_code == 422, response.text
    assert (error_field(response) or "").startswith("tags"), response.text
