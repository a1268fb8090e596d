"""The ``judge`` queue: compile and run a code submission (CPU-bound; its own pool).

Size the pool by processes, not threads: ``dramatiq workers --queues judge
--processes <cores> --threads 1``; each judged test occupies a core.

With Judge0 in callback mode a judge job only creates the batch; the API's
callback endpoint records the results, and ``collect_judge0_results`` polls
the batch for whatever has not called back after the configured wait.
"""

from __future__ import annotations

import uuid
from functools import lru_cache
from typing import Any

import dramatiq
import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from safexam.coding.judge0 import CallbackConfig, Judge0Runner
from safexam.coding.models import CodingSubmission
from safexam.coding.runner import CodeRunner, RunnerUnavailable
from safexam.coding.runners import build_runner, callback_config
from safexam.coding.service import COLLECT_ACTOR, collect_judge0_results, publish_submission
from safexam.coding.service import judge_submission as judge
from safexam.core.broker import worker_resources
from safexam.core.events import publish, submission_channel
from safexam.jobs.runner import TransientError, run_job
from safexam.jobs.service import Claim

log = structlog.get_logger(__name__)


@lru_cache(maxsize=1)
def _runner() -> CodeRunner:
    return build_runner(worker_resources().settings)


@lru_cache(maxsize=1)
def _callbacks() -> CallbackConfig | None:
    return callback_config(worker_resources().settings)


@dramatiq.actor(queue_name="judge", actor_name="judge_submission", max_retries=50)
async def judge_submission(job_id: str, submission_id: str, **_: Any) -> None:
    """Judge one run or submission and record its verdict, score and per-test results."""
    resources = worker_resources()
    assert resources.sessionmaker is not None
    structlog.contextvars.bind_contextvars(submission_id=submission_id)
    sessionmaker = resources.sessionmaker

    outcome: dict[str, Any] = {}

    async def work(db: AsyncSession, claim: Claim) -> dict[str, Any]:
        try:
            result = await judge(
                db,
                uuid.UUID(submission_id),
                _runner(),
                sessionmaker=sessionmaker,
                redis=resources.redis,
                final_attempt=claim.attempt >= claim.max_attempts,
                callbacks=_callbacks(),
            )
        except RunnerUnavailable as exc:
            raise TransientError(str(exc)) from exc
        outcome.update(result)
        return result

    done = await run_job(job_id, work, sessionmaker=sessionmaker, redis=resources.redis)
    if done is not None and resources.redis is not None:
        # The job's end, not necessarily the submission's: in Judge0 callback
        # mode the submission is still "running" until the last result arrives.
        await publish(
            resources.redis,
            submission_channel(submission_id),
            {"id": submission_id, "status": str(outcome.get("status", "done")), "job_id": job_id},
        )


@dramatiq.actor(queue_name="judge", actor_name=COLLECT_ACTOR, max_retries=50)
async def collect_judge0_results_actor(job_id: str, submission_id: str, **_: Any) -> None:
    """Callback mode's fallback: poll Judge0 for the tests whose callback did not arrive."""
    resources = worker_resources()
    assert resources.sessionmaker is not None
    structlog.contextvars.bind_contextvars(submission_id=submission_id)
    runner = _runner()
    judge0 = runner if isinstance(runner, Judge0Runner) else None

    async def work(db: AsyncSession, claim: Claim) -> dict[str, Any]:
        try:
            return await collect_judge0_results(
                db,
                uuid.UUID(submission_id),
                judge0,
                final_attempt=claim.attempt >= claim.max_attempts,
            )
        except RunnerUnavailable as exc:
            raise TransientError(str(exc)) from exc

    done = await run_job(job_id, work, sessionmaker=resources.sessionmaker, redis=resources.redis)
    if done is not None and resources.redis is not None:
        async with resources.sessionmaker() as db:
            submission = await db.get(CodingSubmission, uuid.UUID(submission_id))
        if submission is not None:
            await publish_submission(resources.redis, submission)
