"""The ``grading`` queue: score a finished session."""

from __future__ import annotations

import uuid
from typing import Any

import dramatiq
import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from safexam.core.broker import worker_resources
from safexam.core.events import exam_channel, publish, session_channel
from safexam.grading.service import SessionNotGradable
from safexam.grading.service import grade_session as grade
from safexam.jobs.runner import JobFailed, run_job
from safexam.jobs.service import Claim

log = structlog.get_logger(__name__)


@dramatiq.actor(queue_name="grading", actor_name="grade_session", max_retries=50)
async def grade_session(job_id: str, session_id: str, **_: Any) -> None:
    """Grade one session: response scores, the result row, status ``graded``."""
    resources = worker_resources()
    assert resources.sessionmaker is not None
    structlog.contextvars.bind_contextvars(session_id=session_id)
    outcome: dict[str, Any] = {}

    async def work(db: AsyncSession, claim: Claim) -> dict[str, Any]:
        try:
            graded = await grade(db, uuid.UUID(session_id))
        except SessionNotGradable as exc:
            raise JobFailed(str(exc)) from exc
        outcome["exam_id"] = str(graded.exam_id)
        return graded.as_result()

    done = await run_job(job_id, work, sessionmaker=resources.sessionmaker, redis=resources.redis)
    if done is not None and resources.redis is not None:
        change = {"id": session_id, "status": "graded", "job_id": job_id}
        await publish(resources.redis, session_channel(session_id), change)
        await publish(resources.redis, exam_channel(outcome["exam_id"]), change)
