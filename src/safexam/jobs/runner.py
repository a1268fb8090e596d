"""Run one job inside a worker: claim, work, commit with the status, or record the failure.

Actors stay thin: they decode their message and call :func:`run_job` with a
``work`` coroutine that performs the domain writes on the given session and
returns :class:`Done`: the result to record on the job row and the live
events to publish. The runner

- claims the job (a redelivered message for a finished or busy job does nothing),
- binds ``job_id`` (and ``session_id``/``exam_id``) for every log line,
- keeps a heartbeat while the work runs, so the sweep can tell a live worker
  from a dead one,
- commits the work and the ``succeeded`` status in one transaction, fenced by
  the attempt number, then publishes the job's new status and the work's events,
- on an infrastructure fault (database, broker, sandbox or LLM unavailable)
  records the error and raises :class:`~safexam.core.broker.RetryLater` so
  Dramatiq re-delivers after a backoff, until ``max_attempts`` makes the job
  ``dead``; any other error fails the job at once (retrying a wrong answer or
  a bug does not help).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import structlog
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from safexam.core.broker import RetryLater
from safexam.core.errors import unavailable_dependency
from safexam.core.events import LiveEvent, notify
from safexam.jobs.models import stale_after
from safexam.jobs.notify import JobChanged
from safexam.jobs.service import Claim, claim_job, finish_job, heartbeat, mark_failed

__all__ = ["Done", "JobFailed", "TransientError", "Work", "is_transient", "run_job"]

log = structlog.get_logger(__name__)


class TransientError(Exception):
    """An outside service is unavailable; the job is worth retrying later."""


class JobFailed(Exception):
    """The job cannot succeed as asked (bad input, missing data); no retry."""


# SQLSTATE classes and codes that mean "try again later", not "your data is wrong".
_TRANSIENT_SQLSTATES = ("08", "53", "57P", "40001", "40P01", "55P03", "57014")


@dataclass(frozen=True)
class Done:
    """What a job's work hands back: its result and what to tell live listeners.

    ``result`` is recorded on the job row in the work's own transaction;
    ``events`` are published once that transaction has committed (never if
    it rolls back), after the job's own ``succeeded``.
    """

    result: dict[str, Any] | None = None
    events: Sequence[LiveEvent] = ()


Work = Callable[[AsyncSession, Claim], Awaitable[Done]]


def _sqlstate(exc: BaseException) -> str | None:
    orig = getattr(exc, "orig", None)
    for candidate in (orig, getattr(orig, "__cause__", None), exc):
        code = getattr(candidate, "sqlstate", None) or getattr(candidate, "pgcode", None)
        if isinstance(code, str):
            return code
    return None


def is_transient(exc: BaseException) -> bool:
    """Whether ``exc`` is an infrastructure fault worth a retry."""
    if isinstance(exc, TransientError | RetryLater):
        return True
    # What the API answers 503 for (chained causes, raw driver errors included)
    # is worth a retry here too: one definition of "a dependency is down".
    if unavailable_dependency(exc) is not None:
        return True
    if isinstance(
        exc,
        OperationalError
        | InterfaceError
        | PoolTimeoutError
        | RedisConnectionError
        | RedisTimeoutError
        | ConnectionError
        | TimeoutError
        | OSError,
    ):
        return True
    if isinstance(exc, DBAPIError):
        if exc.connection_invalidated:
            return True
        code = _sqlstate(exc)
        return code is not None and code.startswith(_TRANSIENT_SQLSTATES)
    return False


def describe(exc: BaseException) -> str:
    if isinstance(exc, DBAPIError) and exc.orig is not None:
        return f"{type(exc.orig).__name__}: {exc.orig}".strip()
    return f"{type(exc).__name__}: {exc}".strip()


async def _keep_alive(
    maker: async_sessionmaker[AsyncSession], claim: Claim, interval: float
) -> None:
    while True:
        await asyncio.sleep(interval)
        try:
            async with maker() as db:
                if not await heartbeat(db, claim):
                    log.warning("job_claim_lost")
                    return
        except Exception as exc:
            log.warning("job_heartbeat_failed", error=describe(exc))


async def run_job(
    job_id: str | uuid.UUID,
    work: Work,
    *,
    sessionmaker: async_sessionmaker[AsyncSession],
    redis: Redis | None = None,
) -> Claim | None:
    """Run ``work`` for the job if it can be claimed; returns the claim when it succeeded."""
    job_uuid = uuid.UUID(str(job_id))
    stale = stale_after()
    structlog.contextvars.bind_contextvars(job_id=str(job_uuid))
    try:
        try:
            async with sessionmaker() as db:
                claim = await claim_job(db, job_uuid, stale_after=stale)
        except Exception as exc:
            if is_transient(exc):
                log.warning("job_claim_failed", error=describe(exc))
                raise RetryLater(describe(exc)) from exc
            raise
        if claim is None:
            log.info("job_skipped", reason="finished or running elsewhere")
            return None
        structlog.contextvars.bind_contextvars(
            job_kind=claim.kind,
            attempt=claim.attempt,
            **({"session_id": str(claim.session_id)} if claim.session_id else {}),
            **({"exam_id": str(claim.exam_id)} if claim.exam_id else {}),
        )
        # With job_done, says which worker (host, process) ran each attempt.
        log.info("job_started")
        await notify(redis, JobChanged(id=job_uuid, status="running"))
        started = time.perf_counter()
        beat = asyncio.create_task(_keep_alive(sessionmaker, claim, stale.total_seconds() / 3))
        try:
            async with sessionmaker() as db:
                try:
                    done = await work(db, claim)
                    if await finish_job(db, claim, done.result):
                        await db.commit()
                    else:
                        await db.rollback()
                        log.warning("job_claim_lost", outcome="rolled back")
                        return None
                except Exception:
                    await db.rollback()
                    raise
        except Exception as exc:
            transient = is_transient(exc)
            error = describe(exc)
            if not transient and not isinstance(exc, JobFailed):
                log.exception("job_error")
            try:
                async with sessionmaker() as db:
                    new_status = await mark_failed(db, claim, error, retry=transient)
            except Exception as mark_exc:
                log.warning("job_mark_failed_failed", error=describe(mark_exc))
                raise RetryLater(error) from exc
            status = new_status or "lost"
            log.warning("job_attempt_failed", status=status, error=error)
            await notify(redis, JobChanged(id=job_uuid, status=status, error=error))
            if status == "queued":
                raise RetryLater(error) from exc
            return None
        finally:
            beat.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await beat
        log.info(
            "job_done",
            status="succeeded",
            duration_ms=round((time.perf_counter() - started) * 1000, 1),
        )
        await notify(redis, JobChanged(id=job_uuid, status="succeeded"), *done.events)
        return claim
    finally:
        structlog.contextvars.clear_contextvars()
