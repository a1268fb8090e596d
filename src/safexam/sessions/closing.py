"""Ending a session: the student's submit, the auto-submit at the deadline, the sweep
behind it, and the owner's release of results.

Every ending queues the session's grading in the same transaction, so a
finished session always has its grading job; the server's deadline, not the
client's, decides whether a session was submitted or expired.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta

import structlog
from redis.asyncio import Redis
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from safexam.auth.guards import Principal, ensure_owner
from safexam.core.audit import record_audit
from safexam.core.errors import Conflict, NotFound, Unprocessable
from safexam.core.settings import get_settings
from safexam.exams.models import Enrollment, Exam
from safexam.grading.models import Result
from safexam.jobs import enqueue
from safexam.jobs.kinds import GRADE_SESSION
from safexam.jobs.models import Job
from safexam.sessions.models import ExamSession
from safexam.sessions.notify import MonitorDelta, publish_delta
from safexam.sessions.rules import db_now, own_session, results_visible
from safexam.sessions.schemas import ReleaseOut, ReleaseStatusOut, SubmitOut

__all__ = [
    "ended_delta",
    "expire_sessions",
    "finalize_expired_session",
    "release_results",
    "release_status",
    "set_release_policy",
    "submit_session",
    "sweep_expired_sessions",
]

log = structlog.get_logger(__name__)

SWEEP_BATCH = 500
SWEEP_MAX_BATCHES = 100


async def _enqueue_grading(db: AsyncSession, session: ExamSession) -> Job:
    return await enqueue(
        db,
        GRADE_SESSION,
        args={"session_id": str(session.id)},
        exam_id=session.exam_id,
        session_id=session.id,
        requested_by=None,
    )


async def _grading_job_id(db: AsyncSession, session_id: uuid.UUID) -> uuid.UUID | None:
    job_id: uuid.UUID | None = (
        await db.execute(
            select(Job.id)
            .where(Job.session_id == session_id, Job.kind == GRADE_SESSION.name)
            .order_by(Job.created_at, Job.id)
            .limit(1)
        )
    ).scalar_one_or_none()
    return job_id


async def expire_sessions(db: AsyncSession, sessions: Sequence[ExamSession]) -> list[uuid.UUID]:
    """Mark locked, active, past-deadline sessions ``expired`` and queue their grading.

    Every answer saved before the deadline stays as it is; the autosave guard
    already refused anything later.
    """
    job_ids: list[uuid.UUID] = []
    for session in sessions:
        session.status = "expired"
        session.submitted_at = session.deadline_at
        job = await _enqueue_grading(db, session)
        job_ids.append(job.id)
        log.info("session_expired", session_id=str(session.id), job_id=str(job.id))
    await db.flush()
    return job_ids


async def submit_session(
    db: AsyncSession,
    session_id: uuid.UUID,
    principal: Principal,
    *,
    grace_seconds: int,
    redis: Redis | None = None,
) -> SubmitOut:
    """End the student's session and queue its grading; idempotent.

    A second submit (or a submit after the server finalized the session)
    changes nothing and answers with the current status and the same grading
    job. A submit that arrives after the deadline plus grace finds the session
    ``expired``: the server's deadline, not the client's, decides.
    """
    session = await own_session(db, session_id, principal, lock=True)
    if session.status != "active":
        done = SubmitOut(
            status=session.status,
            job_id=await _grading_job_id(db, session.id),
            submitted_at=session.submitted_at,
        )
        await db.rollback()
        return done
    now = await db_now(db)
    if now > session.deadline_at + timedelta(seconds=grace_seconds):
        job_ids = await expire_sessions(db, [session])
        await db.commit()
        await publish_delta(redis, ended_delta(session))
        return SubmitOut(status="expired", job_id=job_ids[0], submitted_at=session.submitted_at)
    session.status = "submitted"
    session.submitted_at = min(now, session.deadline_at)
    job = await _enqueue_grading(db, session)
    await db.commit()
    log.info("session_submitted", session_id=str(session.id), job_id=str(job.id))
    await publish_delta(redis, ended_delta(session))
    return SubmitOut(status="submitted", job_id=job.id, submitted_at=session.submitted_at)


def ended_delta(session: ExamSession) -> MonitorDelta:
    """The monitor's delta for a session that just ended (read before the commit expired it)."""
    return MonitorDelta(
        id=session.exam_id,
        kind="expire" if session.status == "expired" else "submit",
        session=session.id,
        at=session.submitted_at,
        status=session.status,
    )


async def finalize_expired_session(db: AsyncSession, session_id: uuid.UUID) -> uuid.UUID | None:
    """Auto-submit one session whose deadline has passed; the grading job's id.

    The work of the ``autosubmit_session`` job (a delayed message sent at
    start), so it never commits: the job runner commits it together with the
    job's own status. Does nothing and returns None when the session is
    already finished, unknown, or not yet past its deadline, so duplicate or
    early messages are harmless.
    """
    session = (
        await db.execute(
            select(ExamSession)
            .where(
                ExamSession.id == session_id,
                ExamSession.status == "active",
                ExamSession.deadline_at <= func.now(),
            )
            .with_for_update(skip_locked=True)
        )
    ).scalar_one_or_none()
    if session is None:
        return None
    job_ids = await expire_sessions(db, [session])
    return job_ids[0]


async def sweep_expired_sessions(
    db: AsyncSession,
    now: datetime | None = None,
    *,
    grace_seconds: int | None = None,
    redis: Redis | None = None,
) -> int:
    """Auto-submit every active session past its deadline plus grace; commit; how many.

    The periodic safety net behind the delayed messages: a lost message or a
    restarted worker still leaves no session open. Rows locked by someone else
    (a submit in flight, another sweeper) are skipped, not waited for.
    """
    if grace_seconds is None:
        grace_seconds = get_settings().autosubmit_grace_seconds
    if now is None:
        now = await db_now(db)
    cutoff = now - timedelta(seconds=grace_seconds)
    total = 0
    for _ in range(SWEEP_MAX_BATCHES):
        batch = list(
            (
                await db.execute(
                    select(ExamSession)
                    .where(ExamSession.status == "active", ExamSession.deadline_at <= cutoff)
                    .order_by(ExamSession.deadline_at)
                    .limit(SWEEP_BATCH)
                    .with_for_update(skip_locked=True)
                )
            ).scalars()
        )
        if not batch:
            break
        await expire_sessions(db, batch)
        # A commit per batch, on purpose: each batch's row locks are held only
        # while it is written, and a failure later keeps the batches already done.
        await db.commit()
        # The live monitors see these auto-submits too (an extension for everyone
        # leaves its new deadlines to this sweep).
        for session in batch:
            await publish_delta(redis, ended_delta(session))
        total += len(batch)
        if len(batch) < SWEEP_BATCH:
            break
    if total:
        log.info("sessions_swept", count=total)
    return total


async def release_results(db: AsyncSession, exam_id: uuid.UUID, principal: Principal) -> ReleaseOut:
    """Release an exam's results to its students now (any policy); owner only; audited; commit."""
    exam = (
        await db.execute(select(Exam).where(Exam.id == exam_id).with_for_update())
    ).scalar_one_or_none()
    if exam is None:
        raise NotFound("exam not found")
    ensure_owner(exam.owner_id, principal, "exam", organization_id=exam.organization_id)
    if exam.status == "draft":
        raise Conflict("Publish the exam before releasing results", code="exam_not_published")
    now = await db_now(db)
    if exam.released_at is None:
        exam.released_at = now
    released = await db.execute(
        update(Result)
        .where(
            Result.session_id.in_(select(ExamSession.id).where(ExamSession.exam_id == exam.id)),
            Result.released_at.is_(None),
        )
        .values(released_at=now)
    )
    released_at = exam.released_at
    count = int(getattr(released, "rowcount", 0) or 0)
    record_audit(
        db,
        actor_id=principal.id,
        action="exam.release",
        subject_type="exam",
        subject_id=exam.id,
        exam_id=exam.id,
        details={"results_released": count, "release_policy": exam.release_policy},
    )
    await db.commit()
    log.info("results_released", exam_id=str(exam.id), count=count)
    return ReleaseOut(exam_id=exam.id, released_at=released_at, results_released=count)


async def release_status(
    db: AsyncSession, exam_id: uuid.UUID, principal: Principal
) -> ReleaseStatusOut:
    """How many of the exam's students can see their results now, and how many wait."""
    exam = await db.get(Exam, exam_id)
    if exam is None:
        raise NotFound("exam not found")
    ensure_owner(exam.owner_id, principal, "exam", organization_id=exam.organization_id)
    now = await db_now(db)
    rows = (
        await db.execute(
            select(ExamSession, Result)
            .outerjoin(Result, Result.session_id == ExamSession.id)
            .where(ExamSession.exam_id == exam.id)
        )
    ).all()
    # The latest attempt of each student is the one their page shows.
    latest: dict[uuid.UUID, tuple[ExamSession, Result | None]] = {}
    for row_session, row_result in rows:
        kept = latest.get(row_session.user_id)
        if kept is None or row_session.attempt > kept[0].attempt:
            latest[row_session.user_id] = (row_session, row_result)
    graded = visible = grading = active = 0
    for session, result in latest.values():
        if session.status == "active":
            active += 1
        elif session.status != "graded" or result is None:
            grading += 1
        else:
            graded += 1
            if results_visible(
                release_policy=exam.release_policy,
                closes_at=exam.closes_at,
                exam_released_at=exam.released_at,
                result=result,
                now=now,
            ):
                visible += 1
    enrolled = (
        await db.execute(
            select(func.count()).select_from(Enrollment).where(Enrollment.exam_id == exam.id)
        )
    ).scalar_one()
    return ReleaseStatusOut(
        exam_id=exam.id,
        title=exam.title,
        status=exam.status,
        release_policy=exam.release_policy,
        closes_at=exam.closes_at,
        released_at=exam.released_at,
        sessions=len(latest),
        graded=graded,
        visible=visible,
        held=graded - visible,
        grading=grading,
        active=active,
        not_started=max(0, int(enrolled) - len(latest)),
    )


RELEASE_POLICIES = ("immediate", "after_close", "manual")


async def set_release_policy(
    db: AsyncSession, exam_id: uuid.UUID, principal: Principal, policy: str
) -> ReleaseStatusOut:
    """When students see their results from now on; owner only; audited; commits.

    A policy that shows results earlier applies to results already graded;
    results already released stay released whatever the policy becomes.
    """
    if policy not in RELEASE_POLICIES:
        raise Unprocessable("Choose when students see their results", field="release_policy")
    exam = (
        await db.execute(select(Exam).where(Exam.id == exam_id).with_for_update())
    ).scalar_one_or_none()
    if exam is None:
        raise NotFound("exam not found")
    ensure_owner(exam.owner_id, principal, "exam", organization_id=exam.organization_id)
    if exam.release_policy != policy:
        record_audit(
            db,
            actor_id=principal.id,
            action="exam.release_policy",
            subject_type="exam",
            subject_id=exam.id,
            exam_id=exam.id,
            details={"from": exam.release_policy, "to": policy},
        )
        exam.release_policy = policy
    await db.commit()
    log.info("release_policy_set", exam_id=str(exam.id), policy=policy)
    return await release_status(db, exam_id, principal)
