"""What the API shows of an exam: its settings, items and counts."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from safexam.exams.lookups import exam_max_score
from safexam.exams.models import Enrollment, Exam, ExamItem, Question
from safexam.exams.schemas import (
    DEFAULT_FLAG_KINDS,
    EVENT_KINDS,
    DrawOut,
    ExamCounts,
    ExamItemOut,
    ExamOut,
    IntegritySettings,
    QuestionBrief,
)
from safexam.sessions.models import ExamSession

__all__ = ["exam_out", "exams_out"]


def _integrity_of(exam: Exam) -> IntegritySettings:
    # Lenient on read: a row written by an older version or by hand must not
    # turn every read of the exam into a 500.
    stored = exam.integrity or {}
    kinds = stored.get("flag_kinds")
    return IntegritySettings(
        require_fullscreen=bool(stored.get("require_fullscreen", False)),
        flag_kinds=(
            [k for k in kinds if k in EVENT_KINDS]
            if isinstance(kinds, list)
            else list(DEFAULT_FLAG_KINDS)
        ),
    )


async def exams_out(db: AsyncSession, exams: Sequence[Exam]) -> list[ExamOut]:
    """The API view of several exams, loading their items and counts in a few queries."""
    if not exams:
        return []
    ids = [e.id for e in exams]
    items_by_exam: dict[uuid.UUID, list[ExamItem]] = defaultdict(list)
    for item in (
        await db.execute(
            select(ExamItem)
            .where(ExamItem.exam_id.in_(ids))
            .order_by(ExamItem.exam_id, ExamItem.position)
        )
    ).scalars():
        items_by_exam[item.exam_id].append(item)
    question_ids = {
        i.question_id for items in items_by_exam.values() for i in items if i.question_id
    }
    questions: dict[uuid.UUID, Question] = {}
    if question_ids:
        for q in (
            await db.execute(select(Question).where(Question.id.in_(question_ids)))
        ).scalars():
            questions[q.id] = q
    # Comprehensions, not dict(result): a Result has keys() and dict() would index it.
    enrolled: dict[uuid.UUID, int] = {
        exam_id: count
        for exam_id, count in (
            await db.execute(
                select(Enrollment.exam_id, func.count())
                .where(Enrollment.exam_id.in_(ids))
                .group_by(Enrollment.exam_id)
            )
        )
    }
    sessions: dict[uuid.UUID, tuple[int, int]] = {
        exam_id: (total, finished)
        for exam_id, total, finished in (
            await db.execute(
                select(
                    ExamSession.exam_id,
                    func.count(),
                    func.count().filter(ExamSession.status != "active"),
                )
                .where(ExamSession.exam_id.in_(ids))
                .group_by(ExamSession.exam_id)
            )
        )
    }
    out: list[ExamOut] = []
    for exam in exams:
        items = items_by_exam.get(exam.id, [])
        item_views: list[ExamItemOut] = []
        for item in items:
            brief = questions.get(item.question_id) if item.question_id else None
            item_views.append(
                ExamItemOut(
                    position=item.position,
                    question_id=item.question_id,
                    draw=(
                        DrawOut(tag=item.draw_tag, count=item.draw_count or 0)
                        if item.draw_tag is not None
                        else None
                    ),
                    points=item.points,
                    question=(
                        QuestionBrief(
                            id=brief.id,
                            kind=brief.kind,
                            prompt=brief.prompt,
                            status=brief.status,
                            tags=list(brief.tags),
                        )
                        if brief is not None
                        else None
                    ),
                )
            )
        total_sessions, finished = sessions.get(exam.id, (0, 0))
        out.append(
            ExamOut(
                id=exam.id,
                owner_id=exam.owner_id,
                title=exam.title,
                description=exam.description,
                opens_at=exam.opens_at,
                closes_at=exam.closes_at,
                duration_minutes=exam.duration_minutes,
                attempts_allowed=exam.attempts_allowed,
                shuffle_questions=exam.shuffle_questions,
                shuffle_choices=exam.shuffle_choices,
                release_policy=exam.release_policy,
                integrity=_integrity_of(exam),
                status=exam.status,
                published_at=exam.published_at,
                released_at=exam.released_at,
                grading_version=exam.grading_version,
                items=item_views,
                max_score=exam_max_score(items),
                counts=ExamCounts(
                    items=len(items),
                    questions_per_student=sum(i.draw_count or 1 for i in items),
                    enrolled=int(enrolled.get(exam.id, 0)),
                    sessions=total_sessions,
                    submitted=finished,
                ),
                created_at=exam.created_at,
                updated_at=exam.updated_at,
            )
        )
    return out


async def exam_out(db: AsyncSession, exam: Exam) -> ExamOut:
    return (await exams_out(db, [exam]))[0]
