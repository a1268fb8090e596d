"""The ``maintenance`` queue: auto-submit at the deadline, outbox re-dispatch.

Besides the actors, processes that consume this queue run two periodic
safety nets on their event loop: the outbox sweep (jobs whose message never
left, whose worker vanished, or whose message was lost) and the sweep of
sessions left active past their deadline.
"""

from __future__ import annotations

import uuid
from typing import Any

import dramatiq
import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from safexam.core.broker import WorkerResources, worker_resources
from safexam.core.events import publish, session_channel
from safexam.jobs.outbox import sweep
from safexam.jobs.runner import run_job
from safexam.jobs.service import Claim
from safexam.sessions.service import finalize_expired_session, sweep_expired_sessions

log = structlog.get_logger(__name__)

OUTBOX_SWEEP_SECONDS = 2.0
SESSION_SWEEP_SECONDS = 15.0


@dramatiq.actor(queue_name="maintenance", actor_name="autosubmit_session", max_retries=50)
async def autosubmit_session(job_id: str, session_id: str, **_: Any) -> None:
    """At a session's deadline (plus grace): submit it for the student and queue its grading."""
    resources = worker_resources()
    assert resources.sessionmaker is not None
    structlog.contextvars.bind_contextvars(session_id=session_id)
    expired: dict[str, Any] = {}

    async def work(db: AsyncSession, claim: Claim) -> dict[str, Any]:
        grading_job = await finalize_expired_session(db, uuid.UUID(session_id), commit=False)
        expired["job"] = grading_job
        return {"grading_job_id": str(grading_job) if grading_job else None}

    done = await run_job(job_id, work, sessionmaker=resources.sessionmaker, redis=resources.redis)
    if done is not None and expired.get("job") and resources.redis is not None:
        await publish(
            resources.redis, session_channel(session_id), {"id": session_id, "status": "expired"}
        )


@dramatiq.actor(queue_name="maintenance", actor_name="dispatch_jobs", max_retries=3)
async def dispatch_jobs(**_: Any) -> None:
    """Re-send pending, abandoned and lost jobs now (also runs periodically)."""
    resources = worker_resources()
    assert resources.sessionmaker is not None
    await sweep(resources.sessionmaker)


async def _outbox_sweep(resources: WorkerResources) -> None:
    assert resources.sessionmaker is not None
    await sweep(resources.sessionmaker)


async def _session_sweep(resources: WorkerResources) -> None:
    assert resources.sessionmaker is not None
    async with resources.sessionmaker() as db:
        await sweep_expired_sessions(db, grace_seconds=resources.settings.autosubmit_grace_seconds)


def _register_periodic() -> None:
    try:
        resources = worker_resources()
    except RuntimeError:
        return
    resources.add_periodic("maintenance", OUTBOX_SWEEP_SECONDS, _outbox_sweep)
    resources.add_periodic("maintenance", SESSION_SWEEP_SECONDS, _session_sweep)


_register_periodic()
