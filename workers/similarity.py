"""The ``similarity`` job, in the regrade pool: one coding question compared across a cohort."""

from __future__ import annotations

import uuid
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from safexam.core.broker import worker_resources
from safexam.integrity.cohort import run_similarity
from safexam.jobs.kinds import SIMILARITY, job_actor
from safexam.jobs.runner import Done, run_job
from safexam.jobs.service import Claim

log = structlog.get_logger(__name__)


@job_actor(SIMILARITY)
async def compare_programs(job_id: str, exam_id: str, question_id: str, **_: Any) -> None:
    """Compare a coding question's final programs across the exam; store pairs and clusters."""
    resources = worker_resources()
    assert resources.sessionmaker is not None
    structlog.contextvars.bind_contextvars(exam_id=exam_id)

    async def work(db: AsyncSession, claim: Claim) -> Done:
        result = await run_similarity(db, uuid.UUID(exam_id), uuid.UUID(question_id))
        return Done(result)

    await run_job(job_id, work, sessionmaker=resources.sessionmaker, redis=resources.redis)
