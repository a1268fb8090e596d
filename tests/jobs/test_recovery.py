"""Recovery with real workers: a SIGKILLed worker, a broker outage, a job that keeps failing."""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import replace
from datetime import timedelta
from typing import Any

import msgspec
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from safexam.core.broker import create_broker, use_broker
from safexam.core.settings import Settings
from safexam.grading.models import Result
from safexam.jobs import outbox
from safexam.jobs.kinds import GRADE_SESSION
from safexam.jobs.models import Job
from safexam.sessions.models import ExamSession, Response
from tests.factories import exam_with_questions, make_session, mcq_single, numeric, paper_for
from tests.fault_servers import RedisServer
from tests.grading.test_pipeline import submit
from tests.helpers import ServiceUrls, login, make_user
from tests.workers_helper import running_worker


async def job_status(maker: async_sessionmaker[AsyncSession], job_id: uuid.UUID) -> Job:
    async with maker() as db:
        job = await db.get(Job, job_id)
        assert job is not None
        return job


async def wait_status(
    maker: async_sessionmaker[AsyncSession],
    job_ids: list[uuid.UUID],
    statuses: tuple[str, ...],
    timeout: float = 30.0,
) -> list[Job]:
    deadline = time.monotonic() + timeout
    while True:
        jobs = [await job_status(maker, j) for j in job_ids]
        if all(j.status in statuses for j in jobs):
            return jobs
        if time.monotonic() > deadline:
            raise AssertionError(f"jobs not {statuses}: {[(j.id, j.status) for j in jobs]}")
        await asyncio.sleep(0.05)


async def finished_sessions(db: AsyncSession, count: int) -> list[tuple[ExamSession, float]]:
    """``count`` submitted-ready sessions of one exam with their expected score."""
    educator = await make_user(db, "educator")
    exam, qs = await exam_with_questions(db, educator, [(mcq_single("b"), 2), (numeric(7, 0), 3)])
    made = []
    for i in range(count):
        student = await make_user(db, "student")
        right = i % 2 == 0
        session = await make_session(
            db,
            exam,
            student,
            paper_for(qs, [2, 3]),
            {qs[0].id: {"choice": "b" if right else "c"}, qs[1].id: {"value": 7}},
            status="active",
        )
        made.append((session, 5.0 if right else 3.0))
    return made


async def test_worker_killed_mid_job_finishes_exactly_once(
    db: AsyncSession,
    engine: AsyncEngine,
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
    services: ServiceUrls,
) -> None:
    broker = create_broker(settings)
    use_broker(broker)
    [(session, expected)] = await finished_sessions(db, 1)
    # Block writes to results: the worker's grading stops half done (responses
    # written, not committed) waiting for this lock.
    async with engine.connect() as blocker:
        await blocker.execute(text("LOCK TABLE results IN EXCLUSIVE MODE"))
        with running_worker(services, ("grading",)) as doomed:
            job = await submit(db, session.id)
            await outbox.drain()
            running = await wait_status(sessionmaker, [job.id], ("running",))
            assert running[0].attempts == 1
            doomed.kill()  # SIGKILL: no shutdown hooks, no ack, no status update
        await blocker.rollback()

    stuck = await job_status(sessionmaker, job.id)
    assert stuck.status == "running"  # the ledger still believes a worker has it
    with running_worker(services, ("grading",)):
        # The sweep sees the heartbeat go stale and re-sends; the new worker takes over.
        report = await outbox.sweep(sessionmaker, broker, stale_after=timedelta(seconds=0))
        assert report.abandoned == [job.id]
        [done] = await wait_status(sessionmaker, [job.id], ("succeeded",))
    assert done.attempts == 2
    async with sessionmaker() as check:
        results = (
            (await check.execute(select(Result).where(Result.session_id == session.id)))
            .scalars()
            .all()
        )
        assert len(results) == 1 and results[0].score == expected
        responses = (
            await check.execute(
                select(func.count()).select_from(Response).where(Response.session_id == session.id)
            )
        ).scalar_one()
        assert responses == 2  # one row per question, no duplicates
    broker.close()


async def test_broker_outage_every_submit_accepted_then_all_graded(
    db: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
    services: ServiceUrls,
) -> None:
    server = RedisServer(appendonly=False)
    server.start()
    try:
        outage = msgspec.structs.replace(settings, broker_url=server.url)
        broker = create_broker(outage)
        use_broker(broker)
        sessions = await finished_sessions(db, 6)
        with running_worker(
            services, ("grading", "maintenance"), SAFEXAM_BROKER_URL=server.url
        ) as worker:
            server.stop()
            job_ids = []
            for session, _ in sessions:
                started = time.monotonic()
                job = await submit(db, session.id)  # the student's submit commits...
                await outbox.drain()
                assert time.monotonic() - started < 1.0  # ...and never waits on the broker
                job_ids.append(job.id)
            pending = await wait_status(sessionmaker, job_ids, ("pending",), timeout=2)
            assert all(j.attempts == 0 for j in pending)
            await asyncio.sleep(1)
            server.start()  # the broker comes back (empty: nothing was ever sent)
            # The maintenance worker's periodic sweep sends what the API could not.
            try:
                await wait_status(sessionmaker, job_ids, ("succeeded",), timeout=40)
            except AssertionError:
                print(worker.log()[-4000:])
                raise
        async with sessionmaker() as check:
            for session, expected in sessions:
                result = await check.get(Result, session.id)
                assert result is not None and result.score == expected
        broker.close()
    finally:
        server.close()


async def test_job_that_keeps_failing_ends_dead_then_retry_works(
    db: AsyncSession,
    engine: AsyncEngine,
    sessionmaker: async_sessionmaker[AsyncSession],
    client: Any,
    services: ServiceUrls,
) -> None:
    admin = await make_user(db, "operator")
    [(session, expected)] = await finished_sessions(db, 1)
    session_row = await db.get(ExamSession, session.id, with_for_update=True)
    assert session_row is not None
    session_row.status = "submitted"
    from safexam.jobs import enqueue

    # The grading kind with fewer attempts, so that the job dies soon.
    job = await enqueue(
        db,
        replace(GRADE_SESSION, max_attempts=2),
        args={"session_id": str(session.id)},
        session_id=session.id,
    )
    await db.commit()
    await login(client, admin.email)
    async with engine.connect() as blocker:
        # An infrastructure fault that does not go away: results stay locked, every
        # attempt times out waiting for the lock.
        await blocker.execute(text("LOCK TABLE results IN EXCLUSIVE MODE"))
        with running_worker(services, ("grading", "maintenance")):
            await outbox.sweep(sessionmaker, pending_after=timedelta(0))
            [dead] = await wait_status(sessionmaker, [job.id], ("dead",), timeout=40)
            assert dead.attempts == 2
            assert dead.error is not None and "lock" in dead.error.lower()

            ops = await client.get("/api/v1/ops/queues")
            assert ops.status_code == 200, ops.text
            body = ops.json()
            shown = {j["id"]: j for j in body["failed_jobs"]}
            assert shown[str(job.id)]["status"] == "dead"
            assert shown[str(job.id)]["error"] == dead.error
            assert {"kind": "grade_session", "status": "dead", "count": 1} in body["jobs"]
            assert {q["name"] for q in body["queues"]} >= {"grading", "maintenance", "regrade"}
            assert any("grading" in w["queues"] for w in body["workers"])

            await blocker.rollback()
            retried = await client.post(f"/api/v1/jobs/{job.id}/retry")
            assert retried.status_code == 202, retried.text
            assert retried.json()["status"] == "pending"
            [done] = await wait_status(sessionmaker, [job.id], ("succeeded",), timeout=20)
            assert done.attempts == 1 and done.error is None
    async with sessionmaker() as check:
        result = await check.get(Result, session.id)
        assert result is not None and result.score == expected
    again = await client.post(f"/api/v1/jobs/{job.id}/retry")
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "job_not_retryable"
