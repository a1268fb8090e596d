"""Who may see a job, and what they see."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from safexam.auth.guards import Principal
from safexam.auth.models import User
from safexam.core.errors import NotFound
from safexam.exams.models import Exam
from safexam.jobs.models import Job
from safexam.jobs.schemas import JobOut, Progress
from safexam.sessions.models import ExamSession

__all__ = ["exam_job", "job_out", "visible_job"]


async def visible_job(
    db: AsyncSession, job_id: uuid.UUID, principal: Principal
) -> tuple[Job, bool]:
    """The job and whether the viewer is staff for it (owner educator or admin); else 404.

    The requester, the educator who owns the job's exam, the student whose
    session it grades, and admins may see it; anyone else gets 404.
    """
    job = await db.get(Job, job_id, populate_existing=True)
    if job is None:
        raise NotFound("job not found")
    if job.exam_id is not None:
        exam = (
            await db.execute(
                select(Exam.owner_id, Exam.organization_id).where(Exam.id == job.exam_id)
            )
        ).one_or_none()
        if (
            exam is not None
            and exam.organization_id == principal.organization_id
            and (principal.is_admin or exam.owner_id == principal.id)
        ):
            return job, True
    elif principal.is_admin and job.requested_by is not None:
        # A job of no exam (question generation, a trial) is its requester's organization's.
        organization_id = await db.scalar(
            select(User.organization_id).where(User.id == job.requested_by)
        )
        if organization_id == principal.organization_id:
            return job, True
    if job.requested_by == principal.id:
        return job, principal.role != "student"
    if job.session_id is not None:
        student = (
            await db.execute(select(ExamSession.user_id).where(ExamSession.id == job.session_id))
        ).scalar_one_or_none()
        if student == principal.id:
            return job, False
    raise NotFound("job not found")


def job_out(job: Job, *, staff: bool) -> JobOut:
    """The job as its viewer may see it: a student never sees a result (scores are released
    through the session, by the exam's release policy)."""
    return JobOut(
        id=job.id,
        kind=job.kind,
        status=job.status,
        progress=Progress(
            done=job.progress_done, total=job.progress_total, failed=job.progress_failed
        ),
        error=job.error,
        result=job.result if staff else None,
        attempts=job.attempts,
        max_attempts=job.max_attempts,
        exam_id=job.exam_id,
        session_id=job.session_id,
        created_at=job.created_at,
        queued_at=job.queued_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
    )


async def exam_job(
    db: AsyncSession, job_id: uuid.UUID, exam_id: uuid.UUID, kind: str, principal: Principal
) -> JobOut:
    """A job of ``kind`` on ``exam_id`` as its viewer sees it; 404 for any other job."""
    job, staff = await visible_job(db, job_id, principal)
    if job.exam_id != exam_id or job.kind != kind:
        raise NotFound("job not found")
    return job_out(job, staff=staff)
