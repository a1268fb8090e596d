"""Submit -> graded through real Dramatiq workers, with the SSE stream watching."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from safexam.core.settings import Settings
from safexam.grading.models import Result
from safexam.jobs import enqueue
from safexam.jobs.kinds import AUTOSUBMIT, GRADE_SESSION
from safexam.jobs.models import Job
from safexam.sessions.models import ExamSession, Response
from tests.factories import (
    enroll,
    exam_with_questions,
    make_session,
    mcq_single,
    numeric,
    paper_for,
)
from tests.helpers import ServiceUrls, login, make_user
from tests.live import live_server, sse_events
from tests.workers_helper import running_worker


async def submit(db: AsyncSession, session_id: uuid.UUID) -> Job:
    """What the session service's submit does: status change and grading job, one commit."""
    session = await db.get(ExamSession, session_id, with_for_update=True)
    assert session is not None
    session.status = "submitted"
    job = await enqueue(
        db,
        GRADE_SESSION,
        args={"session_id": str(session_id)},
        exam_id=session.exam_id,
        session_id=session_id,
    )
    await db.commit()
    return job


async def wait_for(predicate: Any, timeout: float = 20.0, interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = await predicate()
        if value:
            return value
        await asyncio.sleep(interval)
    raise AssertionError("condition not met in time")


async def test_submit_graded_end_to_end_with_sse(
    db: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
    services: ServiceUrls,
) -> None:
    educator = await make_user(db, "educator")
    student = await make_user(db, "student")
    exam, (q1, q2) = await exam_with_questions(
        db, educator, [(mcq_single("b"), 2), (numeric(3.5, 0.1), 3)]
    )
    session = await make_session(
        db,
        exam,
        student,
        paper_for([q1, q2], [2, 3]),
        {q1.id: {"choice": "b"}, q2.id: {"value": 3.45}},
        status="active",
    )
    with running_worker(services, ("grading",)) as worker:
        async with (
            live_server(settings) as base,
            httpx.AsyncClient(base_url=base, timeout=30) as browser,
        ):
            await login(browser, student.email)
            first: asyncio.Future[None] = asyncio.get_running_loop().create_future()

            def until(event: dict[str, Any]) -> bool:
                if not first.done():
                    first.set_result(None)
                return (event.get("data") or {}).get("status") == "graded"

            reader = asyncio.create_task(
                sse_events(browser, f"/api/v1/sessions/{session.id}/events", until=until)
            )
            await asyncio.wait_for(first, timeout=10)
            job = await submit(db, session.id)
            try:
                events = await reader
            except Exception:
                print(worker.log()[-5000:])
                raise
        events = [e for e in events if "event" in e]
        assert events[0]["event"] == "session"
        assert events[0]["data"]["status"] == "active"
        assert events[0]["data"]["result"] is None
        graded = events[-1]["data"]
        assert graded["status"] == "graded"
        assert graded["result"] == {"score": 5.0, "max_score": 5.0, "pending_count": 0}
        assert "job_id" in worker.log()  # structlog bound the job id on the worker's lines

    async with sessionmaker() as check:
        stored = await check.get(Job, job.id)
        assert stored is not None and stored.status == "succeeded" and stored.attempts == 1
        result = await check.get(Result, session.id)
        assert result is not None and result.score == 5.0 and result.released_at is not None
        scores = dict(
            (
                await check.execute(
                    select(Response.question_id, Response.score).where(
                        Response.session_id == session.id
                    )
                )
            ).all()
        )
        assert scores == {q1.id: 2.0, q2.id: 3.0}


async def test_session_api_submit_and_autosubmit_are_graded_by_workers(
    db: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
    client: Any,
    services: ServiceUrls,
) -> None:
    """The real session endpoints (start, autosave, submit) and the deadline auto-submit."""
    from datetime import timedelta

    from safexam.core.db import utcnow

    educator = await make_user(db, "educator")
    student = await make_user(db, "student")
    late = await make_user(db, "student")
    exam, (q1, q2) = await exam_with_questions(
        db, educator, [(mcq_single("b"), 2), (numeric(3.5, 0.1), 3)]
    )
    await enroll(db, exam, student)
    # A session whose deadline has passed, left active: the auto-submit job finalizes it.
    expired = await make_session(
        db, exam, late, paper_for([q1, q2], [2, 3]), {q1.id: {"choice": "b"}}, status="active"
    )
    expired.started_at = utcnow() - timedelta(minutes=70)
    # Past its deadline but within the grace the periodic session sweep allows,
    # so it is the auto-submit job (not the sweep) that finalizes it.
    expired.deadline_at = utcnow() - timedelta(seconds=5)
    autosubmit = await enqueue(
        db,
        AUTOSUBMIT,
        args={"session_id": str(expired.id)},
        exam_id=exam.id,
        session_id=expired.id,
    )
    await db.commit()

    await login(client, student.email)
    started = await client.post(f"/api/v1/exams/{exam.id}/sessions")
    assert started.status_code == 201, started.text
    session_id = started.json()["id"]
    for qid, answer in ((q1.id, {"choice": "b"}), (q2.id, {"value": 3.0})):
        saved = await client.put(
            f"/api/v1/sessions/{session_id}/responses/{qid}",
            json={"answer": answer, "client_seq": 1},
        )
        assert saved.status_code == 200, saved.text
    with running_worker(services, ("grading", "maintenance")):
        submitted = await client.post(f"/api/v1/sessions/{session_id}/submit")
        assert submitted.status_code == 202, submitted.text
        job_id = uuid.UUID(submitted.json()["job_id"])

        # The outbox sweep of the maintenance worker sends the auto-submit job
        # (it was committed here, with no broker in this process).
        async def both_graded() -> bool:
            async with sessionmaker() as check:
                rows = (
                    await check.execute(
                        select(Result.session_id, Result.score).where(
                            Result.session_id.in_([uuid.UUID(session_id), expired.id])
                        )
                    )
                ).all()
                return len(rows) == 2

        await wait_for(both_graded, timeout=30)
    async with sessionmaker() as check:
        mine = await check.get(Result, uuid.UUID(session_id))
        theirs = await check.get(Result, expired.id)
        assert mine is not None and mine.score == 2.0  # 3.0 is outside 3.5 +- 0.1
        assert theirs is not None and theirs.score == 2.0
        finalized = await check.get(ExamSession, expired.id)
        assert finalized is not None and finalized.status == "graded"
        grade_job = await check.get(Job, job_id)
        assert grade_job is not None and grade_job.status == "succeeded"
        auto = await check.get(Job, autosubmit.id)
        assert auto is not None and auto.status == "succeeded"
        assert auto.result is not None and auto.result["grading_job_id"] is not None
    view = await client.get(f"/api/v1/jobs/{job_id}")
    assert view.status_code == 200 and view.json()["status"] == "succeeded"
