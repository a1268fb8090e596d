"""The one way to start async work: a job row first, a message second.

``enqueue`` inserts the job in the caller's transaction; the message is sent
only after that transaction commits (see ``safexam.jobs.outbox``), so a
worker never sees a job whose row does not exist yet, and a broker outage
leaves the job ``pending`` for the dispatcher to send later.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from safexam.jobs.models import Job

__all__ = ["enqueue"]


async def enqueue(
    db: AsyncSession,
    *,
    kind: str,
    queue: str,
    actor: str,
    args: dict[str, Any] | None = None,
    exam_id: uuid.UUID | None = None,
    session_id: uuid.UUID | None = None,
    requested_by: uuid.UUID | None = None,
    delay_ms: int | None = None,
    max_attempts: int = 5,
) -> Job:
    """Record a job in the caller's transaction; its message leaves after commit."""
    job = Job(
        kind=kind,
        queue=queue,
        actor=actor,
        args=dict(args or {}),
        exam_id=exam_id,
        session_id=session_id,
        requested_by=requested_by,
        status="pending",
        max_attempts=max_attempts,
    )
    if delay_ms is not None:
        job.args["_delay_ms"] = delay_ms
    db.add(job)
    await db.flush()
    return job
