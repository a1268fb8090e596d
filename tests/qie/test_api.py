"""``POST /api/v1/qie/jobs``: who may ask, what is checked, what gets queued."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from safexam.jobs.models import Job
from tests.helpers import csrf, login, make_user, signed_in

TEXT = "A condenser is a vessel in which steam is cooled back into water. " * 3


async def test_educator_gets_202_and_a_queued_job(make_client: Any, db: AsyncSession) -> None:
    client, educator = await signed_in(make_client, db, "educator")
    response = await client.post(
        "/api/v1/qie/jobs",
        json={
            "source_text": TEXT,
            "count": 5,
            "kinds": ["mcq_single", "numeric"],
            "difficulty": "hard",
            "tags": ["steam", "steam"],
        },
    )
    assert response.status_code == 202, response.text
    job_id = response.json()["job_id"]
    job = await db.scalar(select(Job).where(Job.id == job_id))
    assert job is not None
    assert (job.kind, job.queue, job.actor) == ("qie", "qie", "generate_questions")
    assert job.requested_by == educator.id
    assert job.args["owner_id"] == str(educator.id)
    request = job.args["request"]
    assert request["source_text"] == TEXT.strip()
    assert request["count"] == 5 and request["kinds"] == ["mcq_single", "numeric"]
    assert request["difficulty"] == "hard" and request["tags"] == ["steam"]


async def test_students_and_strangers_cannot_ask(client: Any, db: AsyncSession) -> None:
    await csrf(client)
    response = await client.post("/api/v1/qie/jobs", json={"source_text": TEXT})
    assert response.status_code == 401
    student = await make_user(db, "student")
    await login(client, student.email)
    response = await client.post("/api/v1/qie/jobs", json={"source_text": TEXT})
    assert response.status_code == 403
    assert await db.scalar(select(Job.id)) is None


BAD_INPUT: list[tuple[dict[str, Any], str]] = [
    ({"source_text": TEXT, "count": 0}, "count"),
    ({"source_text": TEXT, "count": 51}, "count"),
    ({"source_text": "x" * 50_001}, "source_text"),
    ({"topic": "t" * 201, "kinds": ["numeric"]}, "topic"),
    ({"source_text": "   "}, "source_text"),
    ({"topic": "volcanoes", "kinds": ["short_text"]}, "source_text"),  # needs text
    ({"source_text": TEXT, "kinds": []}, "kinds"),
    ({"source_text": TEXT, "kinds": ["mcq_single", "mcq_single"]}, "kinds"),
    ({"source_text": TEXT, "kinds": ["essay"]}, "kinds"),
    ({"source_text": TEXT, "difficulty": "insane"}, "difficulty"),
    ({"source_text": TEXT, "generator": "llm"}, "generator"),  # not configured here
    ({"source_text": TEXT, "count": "five"}, "count"),
    ({"source_text": TEXT, "colour": "blue"}, "colour"),
    # The bank's tag grammar: a comma would make one tag two.
    ({"source_text": TEXT, "tags": ["a,b"]}, "tags"),
    ({"source_text": TEXT, "tags": ["  "]}, "tags"),
]


async def test_bad_input_is_422_naming_the_field(make_client: Any, db: AsyncSession) -> None:
    client, _ = await signed_in(make_client, db, "educator")
    for payload, field in BAD_INPUT:
        response = await client.post("/api/v1/qie/jobs", json=payload)
        assert response.status_code == 422, (payload, response.text)
        error = response.json()["error"]
        fields = [d.get("field") or "" for d in error["details"] or []]
        assert any(f.split("[")[0] == field for f in fields), (payload, error)
    assert await db.scalar(select(Job.id)) is None


async def test_topic_only_numeric_is_accepted(make_client: Any, db: AsyncSession) -> None:
    client, _ = await signed_in(make_client, db, "educator")
    response = await client.post(
        "/api/v1/qie/jobs", json={"topic": "rates", "kinds": ["numeric"], "count": 3}
    )
    assert response.status_code == 202, response.text


async def test_documented_in_openapi(client: Any) -> None:
    response = await client.get("/schema/openapi.json")
    assert response.status_code == 200
    operation = response.json()["paths"]["/api/v1/qie/jobs"]["post"]
    assert "202" in operation["responses"]
