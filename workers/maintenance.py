"""The ``maintenance`` queue: auto-submit at the deadline, and the periodic sweeps.

Besides the actor, processes that consume this queue run periodic tasks on
their event loop: the outbox sweep (jobs whose message never left, whose
worker vanished, or whose message was lost), the sweep of sessions left
active past their deadline, the sweep that queues the code similarity of
exams that have closed, and retention (finished jobs, integrity events and
the answer history past their configured age).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from safexam.core.broker import WorkerResources, worker_resources
from safexam.core.events import LiveEvent
from safexam.integrity.cohort import sweep_closed_exams
from safexam.jobs.kinds import AUTOSUBMIT, job_actor
from safexam.jobs.outbox import sweep
from safexam.jobs.runner import Done, run_job
from safexam.jobs.service import Claim
from safexam.ops.retention import prune
from safexam.sessions.closing import ended_delta, finalize_expired_session, sweep_expired_sessions
from safexam.sessions.models import ExamSession
from safexam.sessions.notify import SessionExpired
from safexam.sessions.rules import db_now

log = structlog.get_logger(__name__)

OUTBOX_SWEEP_SECONDS = 2.0
SESSION_SWEEP_SECONDS = 15.0
SIMILARITY_SWEEP_SECONDS = 60.0
#: Retention runs this often; each run is bounded (safexam.ops.retention).
RETENTION_SWEEP_SECONDS = 600.0


@job_actor(AUTOSUBMIT)
async def autosubmit_session(job_id: str, session_id: str, **_: Any) -> None:
    """At a session's deadline (plus grace): submit it for the student and queue its grading."""
    resources = worker_resources()
    assert resources.sessionmaker is not None
    structlog.contextvars.bind_contextvars(session_id=session_id)

    async def work(db: AsyncSession, claim: Claim) -> Done:
        session = uuid.UUID(session_id)
        grading_job = await finalize_expired_session(db, session)
        result = {"grading_job_id": str(grading_job) if grading_job else None}
        # None: the session was already finished (or not yet due); nothing changed.
        if grading_job is None:
            return Done(result, [])
        # Already in the session's identity map: no query.
        ended = await db.get(ExamSession, session)
        events: list[LiveEvent] = [SessionExpired(id=session)]
        if ended is not None:
            events.append(ended_delta(ended))
        return Done(result, events)

    await run_job(job_id, work, sessionmaker=resources.sessionmaker, redis=resources.redis)


async def _outbox_sweep(resources: WorkerResources) -> None:
    assert resources.sessionmaker is not None
    await sweep(resources.sessionmaker)


async def _session_sweep(resources: WorkerResources) -> None:
    assert resources.sessionmaker is not None
    async with resources.sessionmaker() as db:
        await sweep_expired_sessions(
            db,
            grace_seconds=resources.settings.autosubmit_grace_seconds,
            redis=resources.redis,
        )


async def _retention_sweep(resources: WorkerResources) -> None:
    assert resources.sessionmaker is not None
    settings = resources.settings
    await prune(
        resources.sessionmaker,
        now=datetime.now(UTC),
        job_retention_days=settings.job_retention_days,
        integrity_retention_days=settings.integrity_retention_days,
    )


async def _similarity_sweep(resources: WorkerResources) -> None:
    assert resources.sessionmaker is not None
    async with resources.sessionmaker() as db:
        await sweep_closed_exams(db, await db_now(db))


def _register_periodic() -> None:
    try:
        resources = worker_resources()
    except RuntimeError:
        return
    resources.add_periodic("maintenance", OUTBOX_SWEEP_SECONDS, _outbox_sweep)
    resources.add_periodic("maintenance", SESSION_SWEEP_SECONDS, _session_sweep)
    resources.add_periodic("maintenance", SIMILARITY_SWEEP_SECONDS, _similarity_sweep)
    resources.add_periodic("maintenance", RETENTION_SWEEP_SECONDS, _retention_sweep)


_register_periodic()
