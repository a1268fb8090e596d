"""The ``qie`` queue: question generation (I/O-bound: the LLM, or the embedded rules)."""

from __future__ import annotations

from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from safexam.core.broker import worker_resources
from safexam.jobs.kinds import GENERATE_QUESTIONS, job_actor
from safexam.jobs.runner import Done, JobFailed, TransientError, run_job
from safexam.jobs.service import Claim, set_progress
from safexam.qie.generators import GeneratorUnavailable
from safexam.qie.service import request_from_args, run_generation

log = structlog.get_logger(__name__)


@job_actor(GENERATE_QUESTIONS)
async def generate_questions(job_id: str, **_: Any) -> None:
    """Generate draft questions for the educator who asked; the job's result is the summary."""
    resources = worker_resources()
    assert resources.sessionmaker is not None
    maker = resources.sessionmaker

    async def work(db: AsyncSession, claim: Claim) -> Done:
        request, owner_id = request_from_args(claim.args)
        async with maker() as progress_db:
            await set_progress(progress_db, claim, done=0, total=request.count)
        try:
            summary = await run_generation(
                db, request, owner_id, settings=resources.settings, job_id=claim.id
            )
        except GeneratorUnavailable as exc:
            # An outage is retried by the job ledger; a refused key is not.
            raise (TransientError if exc.retryable else JobFailed)(str(exc)) from exc
        async with maker() as progress_db:
            await set_progress(
                progress_db,
                claim,
                done=summary["created"],
                total=request.count,
                failed=max(0, request.count - summary["created"]),
            )
        return Done(summary)

    await run_job(job_id, work, sessionmaker=maker, redis=resources.redis)
