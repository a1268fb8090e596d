"""What a live view of a session shows, and to whom."""

from __future__ import annotations

import uuid

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from safexam.auth.guards import Principal
from safexam.core.errors import NotFound
from safexam.exams.models import Exam
from safexam.grading.models import Result
from safexam.grading.notify import SessionState
from safexam.grading.schemas import SessionResultOut
from safexam.sessions.models import ExamSession
from safexam.sessions.monitor import exam_announcements
from safexam.sessions.rules import results_visible

__all__ = ["session_state"]


async def session_state(
    db: AsyncSession, session_id: uuid.UUID, principal: Principal
) -> SessionState:
    """Status and (when the viewer may see it) the result of a session; 404 for strangers.

    The student sees the score only once the exam's release policy allows;
    the exam's educator and admins always do.
    """
    row = (
        await db.execute(
            select(ExamSession, Exam)
            .join(Exam, Exam.id == ExamSession.exam_id)
            .where(ExamSession.id == session_id)
        )
    ).one_or_none()
    if row is None:
        raise NotFound("session not found")
    session, exam = row.ExamSession, row.Exam
    staff = exam.organization_id == principal.organization_id and (
        principal.is_admin or exam.owner_id == principal.id
    )
    if not staff and session.user_id != principal.id:
        raise NotFound("session not found")
    result = await db.get(Result, session_id, populate_existing=True)
    visible = result is not None and (
        staff
        or results_visible(
            release_policy=exam.release_policy,
            closes_at=exam.closes_at,
            exam_released_at=exam.released_at,
            result=result,
            now=(await db.execute(select(func.now()))).scalar_one(),
        )
    )
    return SessionState(
        id=session.id,
        status=session.status,
        submitted_at=session.submitted_at.isoformat() if session.submitted_at else None,
        graded_at=session.graded_at.isoformat() if session.graded_at else None,
        result=(
            SessionResultOut(
                score=result.score, max_score=result.max_score, pending_count=result.pending_count
            )
            if visible and result is not None
            else None
        ),
        deadline_at=session.deadline_at.isoformat(),
        exam_id=exam.id,
        announcements=await exam_announcements(db, exam.id),
    )
