"""The exam lookups other domains use: ownership, items, maximum score, enrollment.

Item points are per question: a draw of ``count`` questions at ``points``
contributes ``count * points`` to the maximum score.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from safexam.auth.guards import Principal, ensure_owner
from safexam.auth.service import normalize_email
from safexam.core.errors import NotFound
from safexam.exams.models import Enrollment, Exam, ExamItem

__all__ = [
    "exam_max_score",
    "get_enrollment",
    "get_exam_items",
    "get_owned_exam",
    "load_exam_max_score",
]


class _Person(Protocol):
    @property
    def id(self) -> uuid.UUID: ...

    @property
    def email(self) -> str: ...


async def get_owned_exam(
    db: AsyncSession, exam_id: uuid.UUID, principal: Principal, *, for_update: bool = False
) -> Exam:
    """The exam if ``principal`` owns it or is an admin; :class:`NotFound` (404) otherwise.

    ``for_update=True`` locks the row until the transaction ends.
    """
    stmt = select(Exam).where(Exam.id == exam_id)
    if for_update:
        stmt = stmt.with_for_update()
    exam = (await db.execute(stmt)).scalar_one_or_none()
    if exam is None:
        raise NotFound("exam not found")
    ensure_owner(exam.owner_id, principal, "exam", organization_id=exam.organization_id)
    return exam


async def get_exam_items(db: AsyncSession, exam_id: uuid.UUID) -> list[ExamItem]:
    """The exam's items in position order.

    Each item is either a fixed question (``question_id``) or a draw
    (``draw_tag``, ``draw_count``); ``points`` is per question, drawn ones too.
    """
    rows = await db.execute(
        select(ExamItem).where(ExamItem.exam_id == exam_id).order_by(ExamItem.position)
    )
    return list(rows.scalars().all())


def exam_max_score(items: Sequence[ExamItem]) -> float:
    """The most a student can score: fixed items' points plus ``count * points`` per draw."""
    return float(sum(item.points * (item.draw_count or 1) for item in items))


async def load_exam_max_score(db: AsyncSession, exam_id: uuid.UUID) -> float:
    """:func:`exam_max_score` of the exam's items, read from the database."""
    return exam_max_score(await get_exam_items(db, exam_id))


async def get_enrollment(db: AsyncSession, exam_id: uuid.UUID, user: _Person) -> Enrollment | None:
    """The user's enrollment in the exam, or None.

    Matches the linked user id, or the email of a pre-enrollment not linked yet
    (``user`` is a :class:`~safexam.auth.models.User` or a ``Principal``).
    """
    linked = await db.execute(
        select(Enrollment).where(Enrollment.exam_id == exam_id, Enrollment.user_id == user.id)
    )
    # first(), not one(): an account whose email changed may hold two rows.
    found = linked.scalars().first()
    if found is not None:
        return found
    by_email = await db.execute(
        select(Enrollment).where(
            Enrollment.exam_id == exam_id,
            Enrollment.email == normalize_email(user.email),
            Enrollment.user_id.is_(None),
        )
    )
    return by_email.scalar_one_or_none()
