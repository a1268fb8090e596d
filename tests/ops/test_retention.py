"""Retention: old finished jobs, integrity events and answer histories go, in bounded batches,
on a schedule."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from safexam.integrity.models import ActivityLog
from safexam.jobs.models import Job
from safexam.ops.retention import prune
from safexam.sessions.models import ResponseHistory
from tests.factories import make_exam, make_question, make_session
from tests.helpers import ServiceUrls, make_user
from tests.workers_helper import running_worker

NOW = datetime.now(UTC)


def _job(status: str, age_days: float) -> Job:
    at = NOW - timedelta(days=age_days)
    finished = at if status in ("succeeded", "failed", "dead") else None
    return Job(
        kind="grade_session",
        queue="grading",
        actor="grade_session",
        status=status,
        created_at=at,
        started_at=at,
        finished_at=finished,
    )


async def _count(maker: async_sessionmaker[AsyncSession], model: type) -> int:
    async with maker() as db:
        return int((await db.execute(select(func.count()).select_from(model))).scalar_one())


async def _events(db: AsyncSession) -> None:
    educator = await make_user(db, "educator")
    student = await make_user(db, "student")
    question = await make_question(db, educator)
    exam = await make_exam(db, educator, [question])
    session = await make_session(db, exam, student, [], {})
    for seq, age in enumerate((400, 400, 400, 10), start=1):
        db.add(
            ActivityLog(
                session_id=session.id,
                kind="focus_lost",
                server_at=NOW - timedelta(days=age),
                details={"ip": "203.0.113.7"},
            )
        )
        db.add(
            ResponseHistory(
                session_id=session.id,
                question_id=question.id,
                client_seq=seq,
                answer={"choice": "a"},
                saved_at=NOW - timedelta(days=age),
            )
        )
    await db.commit()


async def test_prune_deletes_only_what_is_old_and_finished_in_bounded_batches(
    db: AsyncSession, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    old = [_job("succeeded", 40), _job("failed", 40), _job("dead", 40)]
    kept = [_job("succeeded", 5), _job("running", 40), _job("queued", 40)]
    db.add_all(old + kept)
    await _events(db)

    # One batch of two per table: a bounded run leaves the rest for the next.
    first = await prune(
        sessionmaker,
        now=NOW,
        job_retention_days=30,
        integrity_retention_days=365,
        batch_size=2,
        max_batches=1,
    )
    assert (first.jobs, first.integrity_events, first.answer_history) == (2, 2, 2)
    second = await prune(
        sessionmaker, now=NOW, job_retention_days=30, integrity_retention_days=365, batch_size=2
    )
    assert (second.jobs, second.integrity_events, second.answer_history) == (1, 1, 1)
    async with sessionmaker() as check:
        left = {j.id for j in (await check.execute(select(Job))).scalars()}
        assert left == {j.id for j in kept}
        ages = [e.server_at for e in (await check.execute(select(ActivityLog))).scalars()]
        assert len(ages) == 1 and ages[0] > NOW - timedelta(days=11)
        history = (await check.execute(select(ResponseHistory))).scalars().all()
        recent = NOW - timedelta(days=11)
        assert [(h.client_seq, h.saved_at > recent) for h in history] == [(4, True)]
    # 0 days keeps everything.
    nothing = await prune(sessionmaker, now=NOW, job_retention_days=0, integrity_retention_days=0)
    assert (nothing.jobs, nothing.integrity_events, nothing.answer_history) == (0, 0, 0)
    assert await _count(sessionmaker, Job) == 3


async def test_the_maintenance_pool_prunes_on_its_own(
    db: AsyncSession, sessionmaker: async_sessionmaker[AsyncSession], services: ServiceUrls
) -> None:
    db.add_all([_job("succeeded", 3), _job("succeeded", 0)])
    await db.commit()
    with running_worker(services, ("maintenance",), SAFEXAM_JOB_RETENTION_DAYS="2") as worker:
        deadline = time.monotonic() + 30
        while await _count(sessionmaker, Job) != 1:
            assert time.monotonic() < deadline, worker.log()[-3000:]
            await asyncio.sleep(0.1)
