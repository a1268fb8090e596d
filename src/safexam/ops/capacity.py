"""Exam-day figures for scaling and alerts: the judge pool's pre-warm, open exams, overdue sessions.

Read from PostgreSQL when ``/metrics`` is scraped, so every API replica
publishes the same figures and Prometheus (or KEDA through it) can take any.
"""

from __future__ import annotations

import math
from datetime import datetime

import msgspec
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

__all__ = ["ExamDay", "exam_day", "judge_prewarm_replicas"]


async def judge_prewarm_replicas(
    db: AsyncSession, *, now: datetime, minutes: int, students_per_judge: int
) -> int:
    """Judge replicas wanted for exams with code that open within ``minutes`` of ``now``.

    Both sides of the opening count: pods asked for ``minutes`` ahead are up
    when the first Run arrives, and are kept as many minutes after it, when
    the queue is not long yet but students start at once. An exam counts if
    it may hold code: a coding question, or a draw from the bank (whose
    questions are only known per student). Zero when no such exam is near.
    """
    row = (
        await db.execute(
            text(
                """
                SELECT count(*) AS students
                  FROM enrollments en
                  JOIN exams e ON e.id = en.exam_id
                 WHERE e.status = 'published'
                   AND e.opens_at
                       BETWEEN CAST(:now AS timestamptz) - make_interval(mins => :minutes)
                           AND CAST(:now AS timestamptz) + make_interval(mins => :minutes)
                   AND e.closes_at > CAST(:now AS timestamptz)
                   AND EXISTS (SELECT 1
                                 FROM exam_items i
                                 LEFT JOIN questions q ON q.id = i.question_id
                                WHERE i.exam_id = e.id
                                  AND (q.kind = 'coding' OR i.question_id IS NULL))
                """
            ),
            {"now": now, "minutes": minutes},
        )
    ).one()
    return math.ceil(int(row.students) / students_per_judge)


class ExamDay(msgspec.Struct, frozen=True):
    open_exams: int
    # Sessions still active past their deadline and the auto-submit grace.
    overdue_sessions: int
    # How far past (deadline + grace) the oldest of them is, in seconds.
    autosubmit_lag_seconds: float


async def exam_day(db: AsyncSession, *, now: datetime, grace_seconds: int) -> ExamDay:
    """Exams open at ``now``, and how late auto-submit is on sessions past their deadline."""
    exams = (
        await db.execute(
            text(
                "SELECT count(*) FROM exams"
                " WHERE status = 'published'"
                " AND opens_at <= CAST(:now AS timestamptz)"
                " AND closes_at > CAST(:now AS timestamptz)"
            ),
            {"now": now},
        )
    ).scalar_one()
    overdue = (
        await db.execute(
            text(
                """
                SELECT count(*) AS n,
                       coalesce(max(extract(epoch FROM CAST(:now AS timestamptz) - deadline_at)), 0)
                         - :grace AS lag
                  FROM exam_sessions
                 WHERE status = 'active'
                   AND deadline_at < CAST(:now AS timestamptz) - make_interval(secs => :grace)
                """
            ),
            {"now": now, "grace": grace_seconds},
        )
    ).one()
    lag = max(0.0, float(overdue.lag)) if overdue.n else 0.0
    return ExamDay(int(exams), int(overdue.n), round(lag, 3))
