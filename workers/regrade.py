"""The ``regrade`` queue: bulk regrade of an exam after an answer key change."""

from __future__ import annotations

import uuid
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from safexam.core.broker import worker_resources
from safexam.grading.notify import SessionRegraded
from safexam.grading.regrade import RegradeStale, run_regrade
from safexam.jobs.kinds import REGRADE, job_actor
from safexam.jobs.notify import progress_publisher
from safexam.jobs.runner import Done, JobFailed, run_job
from safexam.jobs.service import Claim

log = structlog.get_logger(__name__)


@job_actor(REGRADE)
async def regrade_exam(job_id: str, exam_id: str, **_: Any) -> None:
    """Rescore an exam's graded sessions (or dry-run the diff), in chunks, with progress."""
    resources = worker_resources()
    assert resources.sessionmaker is not None
    maker = resources.sessionmaker
    redis = resources.redis

    async def work(db: AsyncSession, claim: Claim) -> Done:
        try:
            result = await run_regrade(
                db, claim, maker, on_progress=progress_publisher(redis, claim.id)
            )
        except RegradeStale as exc:
            raise JobFailed(str(exc)) from exc
        if claim.args.get("dry_run"):
            return Done(result)
        changed = [uuid.UUID(s["session_id"]) for s in result.get("students", [])]
        return Done(result, [SessionRegraded(id=session) for session in changed])

    await run_job(job_id, work, sessionmaker=maker, redis=redis)
