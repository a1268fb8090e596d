"""The ``grading`` queue: score finished sessions.

When many sessions of one exam wait (the exam just closed), the worker that
takes one job also claims up to :data:`BATCH` waiting siblings of the same
exam and grades them together in one transaction; their own messages then
find nothing left to do.
"""

from __future__ import annotations

import uuid
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from safexam.core.broker import RetryLater, worker_resources
from safexam.core.events import LiveEvent
from safexam.grading.notify import SessionGraded
from safexam.grading.service import SessionNotGradable, grade_sessions
from safexam.jobs.kinds import GRADE_SESSION, job_actor
from safexam.jobs.notify import JobChanged
from safexam.jobs.runner import Done, JobFailed, run_job
from safexam.jobs.service import Claim, claim_siblings, finish_jobs, release_jobs

log = structlog.get_logger(__name__)

#: Sessions graded together at most (the claimed job plus its siblings).
BATCH = 40


@job_actor(GRADE_SESSION)
async def grade_session(job_id: str, session_id: str, **_: Any) -> None:
    """Grade one session (and waiting sessions of the same exam): scores, result, ``graded``."""
    resources = worker_resources()
    maker, redis = resources.sessionmaker, resources.redis
    if maker is None:
        raise RetryLater("worker resources not ready")
    structlog.contextvars.bind_contextvars(session_id=session_id)

    async def work(db: AsyncSession, claim: Claim) -> Done:
        async with maker() as claim_db:
            batch = await claim_siblings(claim_db, claim, limit=BATCH - 1)
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
            raise
        # The claimed job's own "succeeded" comes from the runner; the siblings'
        # were finished here, in the same transaction.
        events: list[LiveEvent] = [SessionGraded(id=ids[0], job_id=claim.id)]
        for sibling, sibling_session in zip(batch, ids[1:], strict=True):
            events.append(SessionGraded(id=sibling_session, job_id=sibling.id))
            events.append(JobChanged(id=sibling.id, status="succeeded"))
        return Done(outcomes[0].as_result(), events)

    await run_job(job_id, work, sessionmaker=maker, redis=redis)
