"""What every part of taking an exam agrees on: the clock, whose session it is, and
when a student may see their result.

Time is the database's: every rule about windows and deadlines compares with
PostgreSQL's ``now()`` so API replicas with drifting clocks agree.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from safexam.auth.guards import Principal
from safexam.core.errors import NotFound
from safexam.grading.models import Result
from safexam.sessions.models import ExamSession, SessionStatus

__all__ = ["db_now", "own_session", "remaining_seconds", "results_visible", "time_allowed"]


async def db_now(db: AsyncSession) -> datetime:
    now: datetime = (await db.execute(select(func.now()))).scalar_one()
    return now


def remaining_seconds(status: SessionStatus, deadline_at: datetime, now: datetime) -> int:
    if status != "active":
        return 0
    return max(0, int((deadline_at - now).total_seconds()))


def results_visible(
    *,
    release_policy: str,
    closes_at: datetime,
    exam_released_at: datetime | None,
    result: Result | None,
    now: datetime,
) -> bool:
    """Whether a student may see their score and review, per the exam's release policy.

    Nothing is visible before a result exists. Then: ``immediate`` at once,
    ``after_close`` once the window has closed, ``manual`` once the owner
    released (which stamps ``exams.released_at`` and ``results.released_at``).
    """
    if result is None:
        return False
    if result.released_at is not None or exam_released_at is not None:
        return True
    if release_policy == "immediate":
        return True
    if release_policy == "after_close":
        return now >= closes_at
    return False


async def own_session(
    db: AsyncSession, session_id: uuid.UUID, principal: Principal, *, lock: bool = False
) -> ExamSession:
    """The student's own session; 404 for anyone else's (``lock``: FOR UPDATE)."""
    stmt = select(ExamSession).where(
        ExamSession.id == session_id, ExamSession.user_id == principal.id
    )
    if lock:
        stmt = stmt.with_for_update()
    session = (await db.execute(stmt)).scalar_one_or_none()
    if session is None:
        # Another student's session is "not found", never "forbidden": ids cannot be probed.
        raise NotFound("session not found")
    return session


def time_allowed(duration_minutes: int, time_multiplier: float, extra_minutes: int) -> timedelta:
    """A student's time for one attempt: the exam's duration with their accommodations
    (a multiplier, then extra minutes); the exam's closing time may still cut it short."""
    return timedelta(minutes=duration_minutes * float(time_multiplier) + extra_minutes)
