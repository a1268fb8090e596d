"""The ``grading`` queue: score finished sessions.

When many sessions of one exam wait (the exam just closed), the worker that
takes one job also claims up to :data:`BATCH` waiting siblings of the same
exam and grades them together in one transaction; their own messages then
find nothing left to do.
"""

from __future__ import annotations

import uuid
from typing import Any

import dramatiq
import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from safexam.core.broker import RetryLater, worker_resources
from safexam.core.events import exam_channel, job_channel, publish, session_channel
from safexam.grading.service import SessionNotGradable, grade_sessions
from safexam.jobs.runner import JobFailed, run_job
from safexam.jobs.service import Claim, claim_siblings, finish_jobs, release_jobs

log = structlog.get_logger(__name__)

#: Sessions graded together at most (the claimed job plus its siblings).
BATCH = 40


@dramatiq.actor(queue_name="grading", actor_name="grade_session", max_retries=50)
async def grade_session(job_id: str, session_id: str, **_: Any) -> None:
    """Grade one session (and waiting sessions of the same exam): scores, result, ``graded``."""
    resources = worker_resources()
    maker, redis = resources.sessionmaker, resources.redis
    if maker is None:
        raise RetryLater("worker resources not ready")
    structlog.contextvars.bind_contextvars(session_id=session_id)
    batch: list[Claim] = []
    exam: dict[str, str] = {}

    async def work(db: AsyncSession, claim: Claim) -> dict[str, Any]:
        async with maker() as claim_db:
            batch.extend(await claim_siblings(claim_db, claim, limit=BATCH - 1))
        try:
            ids = [uuid.UUID(session_id)] + [uuid.UUID(str(s.args["session_id"])) for s in batch]
            try:
                outcomes = await grade_sessions(db, ids)
            except SessionNotGradable as exc:
                if batch:
                    raise RetryLater("a batched session is not gradable; retry alone") from exc
                raise JobFailed(str(exc)) from exc
            if await finish_jobs(db, batch, [o.as_result() for o in outcomes[1:]]) != len(batch):
                raise RetryLater("a batched job was taken over by another worker")
        except Exception:
            async with maker() as release_db:
                await release_jobs(release_db, batch)
            batch.clear()
            raise
        exam["id"] = str(outcomes[0].exam_id)
        return outcomes[0].as_result()

    done = await run_job(job_id, work, sessionmaker=maker, redis=redis)
    if done is None or redis is None:
        return
    finished = [(job_id, session_id)] + [(str(c.id), str(c.args["session_id"])) for c in batch]
    for finished_job, finished_session in finished:
        change = {"id": finished_session, "status": "graded", "job_id": finished_job}
        await publish(redis, session_channel(finished_session), change)
        if finished_job != job_id:
            await publish(
                redis, job_channel(finished_job), {"id": finished_job, "status": "succeeded"}
            )
    await publish(redis, exam_channel(exam["id"]), {"id": exam["id"], "graded": len(finished)})
