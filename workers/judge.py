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

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from safexam.coding.backends import build_runner, callback_config
from safexam.coding.callbacks import collect_judge0_results
from safexam.coding.execution import CodeRunner, RunnerUnavailable
from safexam.coding.judge0 import CallbackConfig, Judge0Runner
from safexam.coding.judging import judge_submission as judge
from safexam.coding.sandbox import SandboxCleanup
from safexam.coding.trials import run_trial
from safexam.core.broker import current_broker, worker_resources
from safexam.jobs.kinds import JUDGE, JUDGE0_COLLECT, TRY_CODING, job_actor
from safexam.jobs.runner import Done, TransientError, run_job
from safexam.jobs.service import Claim

log = structlog.get_logger(__name__)


@lru_cache(maxsize=1)
def _runner() -> CodeRunner:
    return build_runner(worker_resources().settings)


# A judge whose sandboxes' limits cannot hold refuses to start (building the
# runner says why); the worker process ends without atexit, so its sandboxes
# are released at the worker's shutdown.
_broker = current_broker()
if _broker is not None:
    _broker.add_middleware(SandboxCleanup(on_boot=_runner))


@lru_cache(maxsize=1)
def _callbacks() -> CallbackConfig | None:
    return callback_config(worker_resources().settings)


@job_actor(JUDGE)
async def judge_submission(job_id: str, submission_id: str, **_: Any) -> None:
    """Judge one run or submission and record its verdict, score and per-test results."""
    resources = worker_resources()
    assert resources.sessionmaker is not None
    structlog.contextvars.bind_contextvars(submission_id=submission_id)
    sessionmaker = resources.sessionmaker

    async def work(db: AsyncSession, claim: Claim) -> Done:
        try:
            return await judge(
                db,
                uuid.UUID(submission_id),
                _runner(),
                sessionmaker=sessionmaker,
                redis=resources.redis,
                final_attempt=claim.attempt >= claim.max_attempts,
                callbacks=_callbacks(),
                job_id=claim.id,
            )
        except RunnerUnavailable as exc:
            raise TransientError(str(exc)) from exc

    await run_job(job_id, work, sessionmaker=sessionmaker, redis=resources.redis)


@job_actor(JUDGE0_COLLECT)
async def collect_judge0_results_actor(job_id: str, submission_id: str, **_: Any) -> None:
    """Callback mode's fallback: poll Judge0 for the tests whose callback did not arrive."""
    resources = worker_resources()
    assert resources.sessionmaker is not None
    structlog.contextvars.bind_contextvars(submission_id=submission_id)
    runner = _runner()
    judge0 = runner if isinstance(runner, Judge0Runner) else None

    async def work(db: AsyncSession, claim: Claim) -> Done:
        try:
            return await collect_judge0_results(
                db,
                uuid.UUID(submission_id),
                judge0,
                final_attempt=claim.attempt >= claim.max_attempts,
            )
        except RunnerUnavailable as exc:
            raise TransientError(str(exc)) from exc

    await run_job(job_id, work, sessionmaker=resources.sessionmaker, redis=resources.redis)


@job_actor(TRY_CODING)
async def try_coding(job_id: str, question_id: str, language: str, source: str, **_: Any) -> None:
    """An author's reference solution against every test of their question."""
    resources = worker_resources()
    assert resources.sessionmaker is not None
    structlog.contextvars.bind_contextvars(question_id=question_id)

    async def work(db: AsyncSession, claim: Claim) -> Done:
        try:
            result = await run_trial(db, uuid.UUID(question_id), language, source, _runner())
        except RunnerUnavailable as exc:
            raise TransientError(str(exc)) from exc
        return Done(result=result)

    await run_job(job_id, work, sessionmaker=resources.sessionmaker, redis=resources.redis)
