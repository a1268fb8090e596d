"""What a student is told about their exams before starting one: the exam list's
entries with the student's own time, the number of questions and the rules.

The list itself (with each exam's state) is :func:`list_student_exams`; this
adds what only the enrollment and the exam's settings know: the extra time or
multiplier granted to this student, whether full screen is required, and
when results are shown.
"""

from __future__ import annotations

import uuid
from typing import Any

import msgspec
from sqlalchemy import case, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from safexam.auth.guards import Principal
from safexam.core.errors import NotFound
from safexam.exams.models import Enrollment, Exam, ExamItem
from safexam.exams.schemas import ReleasePolicy
from safexam.sessions.rules import time_allowed
from safexam.sessions.schemas import StudentExam
from safexam.sessions.start import list_student_exams

__all__ = ["StudentExamDetail", "exam_detail", "my_exam_details"]


class StudentExamDetail(msgspec.Struct, kw_only=True):
    """One of my exams as its lobby presents it."""

    exam: StudentExam
    # Accommodations: the time allowed is duration x multiplier + extra minutes,
    # cut short by the end of the exam's window.
    extra_minutes: int
    time_multiplier: float
    seconds_allowed: int
    question_count: int
    release_policy: ReleasePolicy
    require_fullscreen: bool


async def my_exam_details(
    db: AsyncSession, principal: Principal, *, exam_id: uuid.UUID | None = None
) -> list[StudentExamDetail]:
    """Every exam of :func:`list_student_exams` (or only ``exam_id``), in its order,
    with its lobby details."""
    listing = await list_student_exams(db, principal, exam_id=exam_id)
    if not listing.items:
        return []
    ids = [item.id for item in listing.items]
    # A student enrolled both by account and by email (before their first
    # sign-in) has two rows; the one linked to the account wins, as at start.
    enrollments: dict[uuid.UUID, Any] = {}
    for found in (
        await db.execute(
            select(
                Exam.id,
                Exam.release_policy,
                Exam.integrity,
                Enrollment.extra_minutes,
                Enrollment.time_multiplier,
            )
            .join(Enrollment, Enrollment.exam_id == Exam.id)
            .where(
                Exam.id.in_(ids),
                or_(Enrollment.user_id == principal.id, Enrollment.email == principal.email),
                Exam.organization_id == principal.organization_id,
            )
            .order_by(Enrollment.user_id.is_(None))
        )
    ).all():
        enrollments.setdefault(found.id, found)
    counts: dict[uuid.UUID, int] = {
        exam_id: int(count or 0)
        for exam_id, count in (
            await db.execute(
                select(
                    ExamItem.exam_id,
                    func.sum(
                        case((ExamItem.question_id.is_not(None), 1), else_=ExamItem.draw_count)
                    ),
                )
                .where(ExamItem.exam_id.in_(ids))
                .group_by(ExamItem.exam_id)
            )
        ).all()
    }
    details: list[StudentExamDetail] = []
    for item in listing.items:
        row = enrollments.get(item.id)
        if row is None:  # unenrolled between the two reads
            continue
        integrity = row.integrity or {}
        multiplier = float(row.time_multiplier)
        window = int((item.closes_at - item.opens_at).total_seconds())
        allowed = time_allowed(item.duration_minutes, multiplier, row.extra_minutes)
        details.append(
            StudentExamDetail(
                exam=item,
                extra_minutes=row.extra_minutes,
                time_multiplier=multiplier,
                seconds_allowed=min(int(allowed.total_seconds()), window),
                question_count=counts.get(item.id, 0),
                release_policy=row.release_policy,
                require_fullscreen=bool(integrity.get("require_fullscreen", False)),
            )
        )
    return details


async def exam_detail(
    db: AsyncSession, exam_id: uuid.UUID, principal: Principal
) -> StudentExamDetail:
    """One of my exams; 404 for an exam I am not enrolled in (or not published)."""
    for detail in await my_exam_details(db, principal, exam_id=exam_id):
        return detail
    raise NotFound("exam not found")
