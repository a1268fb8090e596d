"""The ``judge`` queue: compile and run a code submission (CPU-bound; its own pool).

Size the pool by processes, not threads: ``dramatiq workers --queues judge
--processes <cores> --threads 1``; each judged test occupies a core.
"""

from __future__ import annotations

import uuid
from functools import lru_cache
from typing import Any

import dramatiq
import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from safexam.coding.runner import CodeRunner, RunnerUnavailable
from safexam.coding.runners import build_runner
from safexam.coding.service import judge_submission as judge
from safexam.core.broker import worker_resources
from safexam.core.events import publish, submission_channel
from safexam.jobs.runner import TransientError, run_job
from safexam.jobs.service import Claim

log = structlog.get_logger(__name__)


@lru_cache(maxsize=1)
def _runner() -> CodeRunner:
    return build_runner(worker_resources().settings)


@dramatiq.actor(queue_name="judge", actor_name="judge_submission", max_retries=50)
async def judge_submission(job_id: str, submission_id: str, **_: Any) -> None:
    """Judge one run or submission and record its verdict, score and per-test results."""
    resources = worker_resources()
    assert resources.sessionmaker is not None
    structlog.contextvars.bind_contextvars(submission_id=submission_id)
    sessionmaker = resources.sessionmaker

    async def work(db: AsyncSession, claim: Claim) -> dict[str, Any]:
        try:
            return await judge(
                db,
                uuid.UUID(submission_id),
                _runner(),
                sessionmaker=sessionmaker,
                redis=resources.redis,
                final_attempt=claim.attempt >= claim.max_attempts,
            )
        except RunnerUnavailable as exc:
            raise TransientError(str(exc)) from exc

    done = await run_job(job_id, work, sessionmaker=sessionmaker, redis=resources.redis)
    if done is not None and resources.redis is not None:
        await publish(
            resources.redis,
            submission_channel(submission_id),
            {"id": submission_id, "status": "finished", "job_id": job_id},
        )
