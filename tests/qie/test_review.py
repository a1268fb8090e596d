"""Reviewing generated drafts: a job's drafts, approve and reject, by the API and the pages.

The drafts are made by the service the ``qie`` worker runs (``run_generation``,
embedded generator, no network) for a job queued through the API; the browser
flow with a real worker is tests/web/test_generate_pages.py.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from safexam.core.settings import Settings
from safexam.exams.models import Question
from safexam.jobs.models import Job
from safexam.qie.service import request_from_args, run_generation
from tests.helpers import error_field, signed_in

PASSAGE = (Path(__file__).parent / "data" / "steam_engine.txt").read_text()


async def _generated(
    client: Any, db: AsyncSession, settings: Settings, count: int = 3
) -> tuple[str, list[str]]:
    """A job queued by ``client``'s educator, run as the worker runs it: (job id, draft ids)."""
    response = await client.post(
        "/api/v1/qie/jobs",
        json={"source_text": PASSAGE, "count": count, "kinds": ["mcq_single", "short_text"]},
    )
    assert response.status_code == 202, response.text
    job_id = response.json()["job_id"]
    job = await db.get(Job, uuid.UUID(job_id))
    assert job is not None
    request, owner = request_from_args(job.args)
    summary = await run_generation(db, request, owner, settings=settings, job_id=job.id)
    # As the job runner finishes it: the summary is the job's result.
    job.status, job.result = "succeeded", summary
    await db.commit()
    return job_id, list(summary["question_ids"])


async def test_the_owner_lists_approves_and_rejects_drafts(
    make_client: Any, db: AsyncSession, settings: Settings
) -> None:
    client, educator = await signed_in(make_client, db, "educator")
    job_id, ids = await _generated(client, db, settings)
    assert len(ids) == 3

    listed = await client.get(f"/api/v1/qie/jobs/{job_id}/drafts")
    assert listed.status_code == 200, listed.text
    body = listed.json()
    assert [item["id"] for item in body["items"]] == ids
    assert {item["status"] for item in body["items"]} == {"draft"}
    assert body["job"]["id"] == job_id and body["job"]["request"]["count"] == 3
    assert body["job"]["request"]["has_source_text"] is True
    jobs = await client.get("/api/v1/qie/jobs")
    assert [job["id"] for job in jobs.json()["items"]] == [job_id]

    approved = await client.post(f"/api/v1/qie/drafts/{ids[0]}/approve")
    assert approved.status_code == 200, approved.text
    assert approved.json()["status"] == "active" and approved.json()["source"] == "qie"
    rejected = await client.post(f"/api/v1/qie/drafts/{ids[1]}/reject")
    assert rejected.status_code == 200, rejected.text
    assert rejected.json()["status"] == "archived"

    # Decided once: a second decision is a conflict, in words.
    again = await client.post(f"/api/v1/qie/drafts/{ids[0]}/reject")
    assert again.status_code == 409
    assert again.json()["error"]["message"] == "this draft was already approved"

    rows = {
        str(q.id): q
        for q in await db.scalars(
            select(Question)
            .where(Question.owner_id == educator.id)
            .execution_options(populate_existing=True)
        )
    }
    first, second, third = (rows[i] for i in ids)
    assert (first.status, second.status, third.status) == ("active", "archived", "draft")
    # The generator's provenance is kept; the decision is added beside it.
    assert first.provenance is not None and first.provenance["job_id"] == job_id
    assert first.provenance["generator"] == "embedded" and first.provenance["passage"]
    assert first.provenance["review"]["decision"] == "approved"
    assert first.provenance["review"]["by"] == str(educator.id)
    assert second.provenance is not None and second.provenance["review"]["decision"] == "rejected"
    # The approved question is in the bank's active list; the rejected one is not listed.
    bank = await client.get("/api/v1/questions", params={"status": "active", "source": "qie"})
    assert [q["id"] for q in bank.json()["items"]] == [ids[0]]
    drafts = await client.get(f"/api/v1/qie/jobs/{job_id}/drafts")
    assert [d["status"] for d in drafts.json()["items"]] == ["active", "archived", "draft"]

    # The same request again: what was rejected is not offered a second time.
    _, again_ids = await _generated(client, db, settings)
    prompts = set(
        await db.scalars(
            select(Question.prompt).where(Question.id.in_([uuid.UUID(i) for i in again_ids]))
        )
    )
    assert again_ids and second.prompt not in prompts and first.prompt not in prompts


async def test_nobody_else_sees_or_decides_the_drafts(
    make_client: Any, db: AsyncSession, settings: Settings
) -> None:
    owner, _ = await signed_in(make_client, db, "educator")
    job_id, ids = await _generated(owner, db, settings, count=1)
    other, _ = await signed_in(make_client, db, "educator")
    student, _ = await signed_in(make_client, db, "student")

    for path, method in [
        (f"/api/v1/qie/jobs/{job_id}/drafts", "GET"),
        (f"/api/v1/qie/drafts/{ids[0]}/approve", "POST"),
        (f"/api/v1/qie/drafts/{ids[0]}/reject", "POST"),
        (f"/educator/generate/{job_id}", "GET"),
        (f"/educator/generate/{job_id}/drafts", "GET"),
        (f"/educator/generate/drafts/{ids[0]}/approve", "POST"),
    ]:
        response = await other.request(method, path)
        assert response.status_code == 404, (path, response.text)
        response = await student.request(method, path)
        assert response.status_code == 403, (path, response.text)
    assert (await other.get("/api/v1/qie/jobs")).json()["items"] == []
    assert (await student.get("/educator/generate")).status_code == 403
    # A hand-written question is not a draft to review, even for its owner.
    manual = await owner.post(
        "/api/v1/questions",
        json={"kind": "numeric", "prompt": "1 + 1?", "body": {"answer": 2}},
    )
    response = await owner.post(f"/api/v1/qie/drafts/{manual.json()['id']}/approve")
    assert response.status_code == 404
    # Nothing changed.
    status = await db.scalar(
        select(Question.status)
        .where(Question.id == uuid.UUID(ids[0]))
        .execution_options(populate_existing=True)
    )
    assert status == "draft"


async def test_bad_requests_name_their_field_on_the_page(
    make_client: Any, db: AsyncSession
) -> None:
    client, _ = await signed_in(make_client, db, "educator")
    token = client.headers["X-CSRF-Token"]
    cases = [
        (
            {"source_text": PASSAGE, "count": "0", "kinds": "mcq_single"},
            "count",
            "Ask for between 1 and 50 questions.",
        ),
        (
            {"source_text": "", "topic": "", "count": "5", "kinds": "mcq_single"},
            "source_text",
            "Paste a passage or give a topic.",
        ),
        ({"source_text": PASSAGE, "count": "5"}, "kinds", "Choose at least one kind of question."),
        (
            {"source_text": PASSAGE, "count": "", "kinds": "short_text"},
            "count",
            "Say how many questions to make.",
        ),
    ]
    for form, field, message in cases:
        response = await client.post("/educator/generate", data={"_csrf_token": token, **form})
        assert response.status_code == 422, response.text
        html = response.text
        assert f'id="{field}-error">{message}</p>' in html, (field, html)
        assert "One field needs attention" in html
        # What was typed is kept.
        if form.get("source_text"):
            assert "condenser" in html.lower() or PASSAGE[:40] in html
    # The API names the same fields.
    for body, field in [
        ({"source_text": PASSAGE, "count": 0}, "count"),
        ({"count": 3}, "source_text"),
    ]:
        response = await client.post("/api/v1/qie/jobs", json=body)
        assert response.status_code == 422 and error_field(response) == field
    assert await db.scalar(select(Job.id)) is None
