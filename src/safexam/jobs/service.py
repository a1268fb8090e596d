"""The one way to start async work: a job row first, a message second.

``enqueue`` inserts the job in the caller's transaction; the message is sent
only after that transaction commits (see :mod:`safexam.jobs.outbox`), so a
worker never sees a job whose row does not exist yet, and a broker outage
leaves the job ``pending`` for the outbox sweep to send later.

Workers claim a job with a compare-and-set on its status that also bumps
``attempts``; the attempt number is a fencing token: the job's writes and its
final status commit in one transaction only if the job is still running under
the same attempt, so a worker that was presumed dead and comes back cannot
record a second result.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from safexam.core.db import utcnow
from safexam.core.errors import Conflict, NotFound
from safexam.jobs import outbox
from safexam.jobs.kinds import REGRADE, JobKind
from safexam.jobs.models import STALE_AFTER, Job, JobStatus

__all__ = [
    "Claim",
    "claim_job",
    "claim_siblings",
    "enqueue",
    "finish_job",
    "finish_jobs",
    "heartbeat",
    "mark_failed",
    "release_jobs",
    "requeue_job",
    "requeue_jobs_of_kind",
    "set_progress",
]


async def enqueue(
    db: AsyncSession,
    kind: JobKind,
    *,
    args: dict[str, Any] | None = None,
    exam_id: uuid.UUID | None = None,
    session_id: uuid.UUID | None = None,
    requested_by: uuid.UUID | None = None,
    delay_ms: int | None = None,
) -> Job:
    """Record a job of ``kind`` in the caller's transaction; its message leaves after commit.

    ``args`` become the actor's keyword arguments (with ``job_id`` added).
    ``delay_ms`` delays the job (e.g. an auto-submit at the deadline). A
    regrade while another regrade of the exam is active raises 409
    ``regrade_in_progress``.
    """
    job = Job(
        id=uuid.uuid4(),
        kind=kind.name,
        queue=kind.queue,
        actor=kind.actor,
        args=dict(args or {}),
        exam_id=exam_id,
        session_id=session_id,
        requested_by=requested_by,
        status="pending",
        max_attempts=kind.max_attempts,
        run_at=utcnow() + timedelta(milliseconds=delay_ms) if delay_ms else None,
    )
    if kind != REGRADE:
        # No flush: the id is ours already, and the INSERT joins the caller's
        # other writes at commit (thousands of jobs become one batched INSERT).
        db.add(job)
        outbox.register(db, job)
        return job
    # Only a regrade can hit the one-active-regrade index; a savepoint keeps
    # the caller's transaction usable when it does.
    try:
        async with db.begin_nested():
            db.add(job)
            await db.flush()
    except IntegrityError as exc:
        if "uq_jobs_active_regrade" in str(exc.orig):
            raise Conflict(
                "Another regrade of this exam is in progress; wait for it to finish",
                code="regrade_in_progress",
            ) from None
        raise
    outbox.register(db, job)
    return job


@dataclass(frozen=True)
class Claim:
    """A job taken by a worker: ``attempt`` fences its final write."""

    id: uuid.UUID
    kind: str
    attempt: int
    max_attempts: int
    exam_id: uuid.UUID | None
    session_id: uuid.UUID | None
    args: dict[str, Any]
    requested_by: uuid.UUID | None


async def claim_job(
    db: AsyncSession, job_id: uuid.UUID, *, stale_after: timedelta = STALE_AFTER
) -> Claim | None:
    """Take the job if it is waiting (or abandoned); None if it is finished or busy elsewhere.

    Commits, so that operators and the sweep see the job running.
    """
    row = (
        await db.execute(
            text(
                """
                UPDATE jobs SET status = 'running', attempts = attempts + 1,
                       started_at = coalesce(started_at, now()), heartbeat_at = now(),
                       queued_at = coalesce(queued_at, now())
                 WHERE id = :id
                   AND (status IN ('pending', 'queued')
                        OR (status = 'running' AND heartbeat_at < now() - CAST(:stale AS interval)))
                RETURNING id, kind, attempts, max_attempts, exam_id, session_id, args,
                          requested_by
                """
            ),
            {"id": job_id, "stale": stale_after},
        )
    ).one_or_none()
    await db.commit()
    if row is None:
        return None
    return Claim(
        id=row.id,
        kind=row.kind,
        attempt=row.attempts,
        max_attempts=row.max_attempts,
        exam_id=row.exam_id,
        session_id=row.session_id,
        args=dict(row.args or {}),
        requested_by=row.requested_by,
    )


async def claim_siblings(
    db: AsyncSession, claim: Claim, *, limit: int, stale_after: timedelta = STALE_AFTER
) -> list[Claim]:
    """Claim up to ``limit`` other waiting jobs of the same kind and exam (commits).

    Lets a worker do a closing exam's grading in batches: the siblings' own
    messages then find their jobs finished and do nothing.
    """
    if claim.exam_id is None or limit <= 0:
        return []
    rows = (
        await db.execute(
            text(
                """
                UPDATE jobs SET status = 'running', attempts = attempts + 1,
                       started_at = coalesce(started_at, now()), heartbeat_at = now(),
                       queued_at = coalesce(queued_at, now())
                 WHERE id IN (SELECT id FROM jobs
                               WHERE kind = :kind AND exam_id = :exam AND id <> :id
                                 AND status IN ('pending', 'queued')
                                 AND (run_at IS NULL OR run_at <= now())
                                 AND session_id IN (
                                     SELECT id FROM exam_sessions
                                      WHERE exam_id = :exam
                                        AND status IN ('submitted', 'expired', 'graded'))
                               ORDER BY created_at
                               LIMIT :limit
                               FOR UPDATE SKIP LOCKED)
                RETURNING id, kind, attempts, max_attempts, exam_id, session_id, args,
                          requested_by
                """
            ),
            {"kind": claim.kind, "exam": claim.exam_id, "id": claim.id, "limit": limit},
        )
    ).all()
    await db.commit()
    return [
        Claim(
            id=r.id,
            kind=r.kind,
            attempt=r.attempts,
            max_attempts=r.max_attempts,
            exam_id=r.exam_id,
            session_id=r.session_id,
            args=dict(r.args or {}),
            requested_by=r.requested_by,
        )
        for r in rows
    ]


async def finish_jobs(
    db: AsyncSession, claims: Sequence[Claim], results: Sequence[dict[str, Any] | None]
) -> int:
    """:func:`finish_job` for many claims in one statement; how many were still ours."""
    if not claims:
        return 0
    outcome = await db.execute(
        text(
            """
            UPDATE jobs SET status = 'succeeded', result = CAST(v.result AS jsonb), error = NULL,
                   finished_at = now(), heartbeat_at = now()
              FROM unnest(CAST(:ids AS uuid[]), CAST(:attempts AS int[]),
                          CAST(:results AS text[])) AS v(id, attempt, result)
             WHERE jobs.id = v.id AND jobs.status = 'running' AND jobs.attempts = v.attempt
            """
        ),
        {
            "ids": [c.id for c in claims],
            "attempts": [c.attempt for c in claims],
            "results": [json.dumps(r) if r is not None else None for r in results],
        },
    )
    return int(outcome.rowcount)  # type: ignore[attr-defined]


async def release_jobs(db: AsyncSession, claims: Sequence[Claim]) -> None:
    """Give claimed-but-unfinished jobs back (pending: the sweep re-sends them). Commits."""
    if not claims:
        return
    await db.execute(
        text(
            "UPDATE jobs SET status = 'pending', attempts = greatest(attempts - 1, 0)"
            " FROM unnest(CAST(:ids AS uuid[]), CAST(:attempts AS int[])) AS v(id, attempt)"
            " WHERE jobs.id = v.id AND jobs.status = 'running' AND jobs.attempts = v.attempt"
        ),
        {"ids": [c.id for c in claims], "attempts": [c.attempt for c in claims]},
    )
    await db.commit()


async def finish_job(db: AsyncSession, claim: Claim, result: dict[str, Any] | None) -> bool:
    """Mark the job succeeded inside the caller's transaction (with its writes).

    False when the claim was lost (another worker took over): the caller must
    roll back instead of committing.
    """
    outcome = await db.execute(
        update(Job)
        .where(Job.id == claim.id, Job.status == "running", Job.attempts == claim.attempt)
        .values(
            status="succeeded",
            result=result,
            error=None,
            finished_at=utcnow(),
            heartbeat_at=utcnow(),
        )
    )
    return bool(outcome.rowcount)  # type: ignore[attr-defined]


async def mark_failed(
    db: AsyncSession, claim: Claim, error: str, *, retry: bool
) -> JobStatus | None:
    """Record a failed attempt and commit; returns the new status (None if the claim was lost).

    ``retry`` (an infrastructure fault) puts the job back to ``queued`` while
    attempts remain, then ``dead``; otherwise the job is ``failed`` at once.
    """
    status: JobStatus = (
        ("queued" if claim.attempt < claim.max_attempts else "dead") if retry else "failed"
    )
    outcome = await db.execute(
        update(Job)
        .where(Job.id == claim.id, Job.status == "running", Job.attempts == claim.attempt)
        .values(
            status=status,
            error=error[:4000],
            finished_at=None if status == "queued" else utcnow(),
            queued_at=utcnow() if status == "queued" else Job.queued_at,
        )
    )
    await db.commit()
    return status if outcome.rowcount else None  # type: ignore[attr-defined]


async def heartbeat(db: AsyncSession, claim: Claim) -> bool:
    """Tell the sweep this job's worker is alive; False if the claim was lost."""
    outcome = await db.execute(
        update(Job)
        .where(Job.id == claim.id, Job.status == "running", Job.attempts == claim.attempt)
        .values(heartbeat_at=utcnow())
    )
    await db.commit()
    return bool(outcome.rowcount)  # type: ignore[attr-defined]


async def set_progress(
    db: AsyncSession, claim: Claim, *, done: int, total: int, failed: int = 0
) -> None:
    """Record progress (and a heartbeat) in its own short transaction."""
    await db.execute(
        update(Job)
        .where(Job.id == claim.id, Job.attempts == claim.attempt)
        .values(
            progress_done=done,
            progress_total=total,
            progress_failed=failed,
            heartbeat_at=utcnow(),
        )
    )
    await db.commit()


def _reset(job: Job) -> None:
    job.status = "pending"
    job.attempts = 0
    job.error = None
    job.finished_at = None
    job.heartbeat_at = None
    job.progress_done = job.progress_failed = 0


def _refuse_unless_retryable(job: Job) -> None:
    if job.status not in ("failed", "dead"):
        raise Conflict(
            f"Only failed or dead jobs can be retried; this one is {job.status}",
            code="job_not_retryable",
        )


async def requeue_job(db: AsyncSession, job_id: uuid.UUID) -> Job:
    """An operator's retry of a failed or dead job: attempts start again. Commits."""
    job = await db.get(Job, job_id)
    if job is None:
        raise NotFound("job not found")
    # Read first without a lock: a pending or queued job may be locked by an outbox
    # sweep while it sends the job's message, and the answer for it is the same.
    # The lock is taken on failed and dead jobs only, which no sweep or worker holds,
    # and orders two operators retrying the same job.
    _refuse_unless_retryable(job)
    await db.refresh(job, with_for_update=True)
    _refuse_unless_retryable(job)
    _reset(job)
    try:
        await db.flush()
    except IntegrityError:
        await db.rollback()
        raise Conflict(
            "Another regrade of this exam is in progress; wait for it to finish",
            code="regrade_in_progress",
        ) from None
    outbox.register(db, job)
    await db.commit()
    return job


async def requeue_jobs_of_kind(db: AsyncSession, kind: str) -> tuple[list[Job], int]:
    """Every failed or dead job of ``kind`` back to pending, without committing.

    Returns the jobs requeued and how many were left as they were: a regrade
    whose exam has another regrade active stays dead (the one-active-regrade
    index refuses it), each in its own savepoint so the others still go.
    """
    jobs = list(
        (
            await db.scalars(
                select(Job)
                .where(Job.kind == kind, Job.status.in_(("failed", "dead")))
                .order_by(Job.created_at)
                .with_for_update(skip_locked=True)
            )
        ).all()
    )
    requeued: list[Job] = []
    skipped = 0
    for job in jobs:
        try:
            async with db.begin_nested():
                _reset(job)
                await db.flush()
        except IntegrityError:
            skipped += 1
            await db.refresh(job)
            continue
        outbox.register(db, job)
        requeued.append(job)
    return requeued, skipped
