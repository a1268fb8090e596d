"""Authoring exams: create, list, edit, delete and publish.

An exam is a draft until :func:`publish_exam` checks it and freezes its
content: from then on its items, window opening, duration, attempts and
shuffling stay as they are; title, description, a later ``closes_at``, the
release policy and the integrity settings may still change.

Draws take active questions carrying the tag from the exam owner's own and
from the banks shared with their organization, never a question that is
already a fixed item of the exam.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import msgspec
import structlog
from sqlalchemy import delete, func, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from safexam.auth.guards import Principal
from safexam.core.db import utcnow
from safexam.core.errors import Conflict, Unprocessable
from safexam.exams.banks import usable_questions
from safexam.exams.lookups import get_exam_items
from safexam.exams.models import Exam, ExamItem, Question
from safexam.exams.questions_service import normalize_tags
from safexam.exams.schemas import ExamCreate, ExamItemIn, ExamUpdate
from safexam.sessions.models import ExamSession

__all__ = [
    "FIRST_YEAR",
    "LAST_YEAR",
    "create_exam",
    "delete_exam",
    "list_exams",
    "publish_exam",
    "update_exam",
]

log = structlog.get_logger(__name__)

# Fields a published exam keeps as they were (closes_at may only move later).
_FROZEN_WHEN_PUBLISHED = (
    "opens_at",
    "duration_minutes",
    "attempts_allowed",
    "shuffle_questions",
    "shuffle_choices",
)


async def _build_items(
    db: AsyncSession,
    owner_id: uuid.UUID,
    organization_id: uuid.UUID,
    items: Sequence[ExamItemIn],
    exam_id: uuid.UUID | None = None,
) -> list[ExamItem]:
    """Validated, unsaved item rows; 422 naming ``items[i]...`` for the first bad one.

    A fixed question is the owner's or one of a bank shared with the
    organization, or one the exam already holds: an exam keeps a shared
    question after its bank stops being shared.
    """
    wanted = {i.question_id for i in items if i.question_id is not None}
    found: dict[uuid.UUID, Question] = {}
    if wanted:
        held = (
            select(ExamItem.question_id).where(ExamItem.exam_id == exam_id)
            if exam_id is not None
            else None
        )
        allowed = usable_questions(owner_id, organization_id)
        if held is not None:
            allowed = allowed | (
                (Question.organization_id == organization_id) & Question.id.in_(held)
            )
        for q in (
            await db.execute(select(Question).where(Question.id.in_(wanted), allowed))
        ).scalars():
            found[q.id] = q
    rows: list[ExamItem] = []
    used: dict[uuid.UUID, int] = {}
    for position, item in enumerate(items):
        where = f"items[{position}]"
        if (item.question_id is None) == (item.draw is None):
            raise Unprocessable("an item has either question_id or draw", field=where)
        if item.question_id is not None:
            question = found.get(item.question_id)
            if question is None:
                raise Unprocessable(
                    "no such question in the exam owner's bank or a bank shared with them",
                    field=f"{where}.question_id",
                )
            if question.status == "archived":
                raise Unprocessable("the question is archived", field=f"{where}.question_id")
            if question.id in used:
                raise Unprocessable(
                    f"the question is already item {used[question.id]}",
                    field=f"{where}.question_id",
                )
            used[question.id] = position
            points = question.points if item.points is None else item.points
            rows.append(ExamItem(position=position, question_id=question.id, points=points))
        else:
            assert item.draw is not None
            if item.points is None:
                raise Unprocessable(
                    "a draw needs points (per drawn question)", field=f"{where}.points"
                )
            tag = normalize_tags([item.draw.tag])
            if not tag:
                raise Unprocessable("tag must not be blank", field=f"{where}.draw.tag")
            rows.append(
                ExamItem(
                    position=position,
                    draw_tag=tag[0],
                    draw_count=item.draw.count,
                    points=item.points,
                )
            )
    return rows


async def _replace_items(db: AsyncSession, exam: Exam, rows: list[ExamItem]) -> None:
    # A statement, not ORM deletes: the unit of work would insert the new rows
    # before deleting the old ones and trip the (exam_id, position) unique key.
    await db.execute(delete(ExamItem).where(ExamItem.exam_id == exam.id))
    for row in rows:
        row.exam_id = exam.id
        db.add(row)


# An exam window outside these years is a typo, and near year 1 or 9999 the
# conversion to UTC (or a deadline plus grace) overflows Python's datetime.
FIRST_YEAR, LAST_YEAR = 2000, 2199


def _check_window_years(data: ExamCreate | ExamUpdate) -> None:
    for field in ("opens_at", "closes_at"):
        value = getattr(data, field)
        if value is not msgspec.UNSET and not FIRST_YEAR <= value.year <= LAST_YEAR:
            raise Unprocessable(
                f"{field} must lie between the years {FIRST_YEAR} and {LAST_YEAR}", field=field
            )


async def create_exam(db: AsyncSession, principal: Principal, data: ExamCreate) -> Exam:
    """A draft exam owned by ``principal``; items must name questions of their bank."""
    _check_window_years(data)
    if not data.title.strip():
        raise Unprocessable("title must not be blank", field="title")
    if data.closes_at <= data.opens_at:
        raise Unprocessable("closes_at must be after opens_at", field="closes_at")
    rows = await _build_items(db, principal.id, principal.organization_id, data.items)
    exam = Exam(
        owner_id=principal.id,
        organization_id=principal.organization_id,
        title=data.title.strip(),
        description=data.description,
        opens_at=data.opens_at,
        closes_at=data.closes_at,
        duration_minutes=data.duration_minutes,
        attempts_allowed=data.attempts_allowed,
        shuffle_questions=data.shuffle_questions,
        shuffle_choices=data.shuffle_choices,
        release_policy=data.release_policy,
        integrity=msgspec.to_builtins(data.integrity),
        status="draft",
    )
    db.add(exam)
    await db.flush()
    await _replace_items(db, exam, rows)
    await db.commit()
    await db.refresh(exam)
    log.info("exam_created", exam_id=str(exam.id), items=len(rows))
    return exam


async def list_exams(
    db: AsyncSession,
    principal: Principal,
    *,
    status: str | None = None,
    q: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[Sequence[Exam], int]:
    """A page of the principal's exams (every exam for an admin), newest first, and the total."""
    conditions: list[Any] = [Exam.organization_id == principal.organization_id]
    if not principal.is_admin:
        conditions.append(Exam.owner_id == principal.id)
    if status is not None:
        conditions.append(Exam.status == status)
    if q:
        pattern = "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        conditions.append(Exam.title.ilike(pattern, escape="\\"))
    total = (
        await db.execute(select(func.count()).select_from(Exam).where(*conditions))
    ).scalar_one()
    rows = (
        (
            await db.execute(
                select(Exam)
                .where(*conditions)
                .order_by(Exam.created_at.desc(), Exam.id)
                .limit(limit)
                .offset(offset)
            )
        )
        .scalars()
        .all()
    )
    return rows, int(total)


def _item_shape(item: ExamItem) -> tuple[Any, ...]:
    return (item.question_id, item.draw_tag, item.draw_count, float(item.points))


async def update_exam(db: AsyncSession, exam: Exam, data: ExamUpdate) -> Exam:
    """Apply a PATCH; ``exam`` should be locked (``get_owned_exam(..., for_update=True)``).

    A published exam refuses changes to its items and frozen fields with 409
    ``exam_published``; sending a field with its current value is not a change.
    """
    _check_window_years(data)
    published = exam.status != "draft"
    new_rows: list[ExamItem] | None = None
    if data.items is not msgspec.UNSET:
        new_rows = await _build_items(db, exam.owner_id, exam.organization_id, data.items, exam.id)
        if published:
            current = [_item_shape(i) for i in await get_exam_items(db, exam.id)]
            if [_item_shape(r) for r in new_rows] != current:
                raise Conflict(
                    "a published exam's items cannot be added, removed, reordered or re-pointed",
                    code="exam_published",
                    details={"field": "items"},
                )
            new_rows = None
    if published:
        for name in _FROZEN_WHEN_PUBLISHED:
            value = getattr(data, name)
            if value is not msgspec.UNSET and value != getattr(exam, name):
                raise Conflict(
                    f"{name} cannot change once the exam is published",
                    code="exam_published",
                    details={"field": name},
                )
        if data.closes_at is not msgspec.UNSET and data.closes_at < exam.closes_at:
            raise Conflict(
                "a published exam's closes_at can only be extended",
                code="exam_published",
                details={"field": "closes_at"},
            )
    opens_at = exam.opens_at if data.opens_at is msgspec.UNSET else data.opens_at
    closes_at = exam.closes_at if data.closes_at is msgspec.UNSET else data.closes_at
    if closes_at <= opens_at:
        raise Unprocessable("closes_at must be after opens_at", field="closes_at")
    if data.title is not msgspec.UNSET:
        if not data.title.strip():
            raise Unprocessable("title must not be blank", field="title")
        exam.title = data.title.strip()
    simple = (
        "description",
        "opens_at",
        "closes_at",
        "duration_minutes",
        "attempts_allowed",
        "shuffle_questions",
        "shuffle_choices",
        "release_policy",
    )
    for name in simple:
        value = getattr(data, name)
        if value is not msgspec.UNSET:
            setattr(exam, name, value)
    if data.integrity is not msgspec.UNSET:
        # Merged, not replaced: the integrity review's thresholds live beside these.
        exam.integrity = {**(exam.integrity or {}), **msgspec.to_builtins(data.integrity)}
    if new_rows is not None:
        await _replace_items(db, exam, new_rows)
    exam.updated_at = utcnow()
    await db.commit()
    await db.refresh(exam)
    log.info("exam_updated", exam_id=str(exam.id), status=exam.status)
    return exam


async def delete_exam(db: AsyncSession, exam: Exam) -> None:
    """Delete a draft, or a published exam nobody has started (409 ``exam_has_sessions``)."""
    if exam.status != "draft":
        started = (
            await db.execute(select(ExamSession.id).where(ExamSession.exam_id == exam.id).limit(1))
        ).first()
        if started is not None:
            raise Conflict(
                "students have started this exam; it cannot be deleted",
                code="exam_has_sessions",
            )
    await db.delete(exam)
    await db.commit()
    log.info("exam_deleted", exam_id=str(exam.id))


async def publish_exam(db: AsyncSession, exam: Exam) -> Exam:
    """Check the exam and freeze it: status ``published`` and ``published_at``.

    Refuses (422 ``not_publishable``, one detail per problem, each naming its
    field) an exam without items, one whose window has closed, a fixed question
    that is not active, and a draw whose tag has fewer active questions of the
    owner (not already fixed items) than the exam draws. Publishing twice is a
    no-op. ``exam`` should be locked.
    """
    if exam.status == "published":
        return exam
    if exam.status != "draft":
        raise Conflict(f"an {exam.status} exam cannot be published", code="exam_not_draft")
    now = utcnow()
    # Each problem names its field, says what is wrong, and carries a ``problem``
    # code (with its figures) for clients that put it in their own words.
    problems: list[dict[str, Any]] = []
    items = await get_exam_items(db, exam.id)
    if not items:
        problems.append(
            {"field": "items", "message": "an exam needs at least one item", "problem": "no_items"}
        )
    if exam.closes_at <= now:
        problems.append(
            {"field": "closes_at", "message": "closes_at is in the past", "problem": "closed"}
        )
    if exam.closes_at <= exam.opens_at:
        problems.append(
            {
                "field": "closes_at",
                "message": "closes_at must be after opens_at",
                "problem": "closes_before_opens",
            }
        )
    fixed_ids = [i.question_id for i in items if i.question_id is not None]
    statuses: dict[uuid.UUID, str] = {}
    if fixed_ids:
        # FOR SHARE: a concurrent PATCH that retires one of these questions
        # (it locks the row FOR UPDATE) waits for this publish and then sees it.
        statuses = {
            question_id: status
            for question_id, status in (
                await db.execute(
                    select(Question.id, Question.status)
                    .where(Question.id.in_(fixed_ids))
                    .with_for_update(read=True)
                )
            )
        }
    needed: dict[str, int] = defaultdict(int)
    for item in items:
        if item.question_id is not None:
            status = statuses.get(item.question_id)
            if status != "active":
                problems.append(
                    {
                        "field": f"items[{item.position}].question_id",
                        "message": f"the question is {status or 'missing'}, not active",
                        "problem": "question_not_active",
                        "position": item.position,
                        "status": status or "missing",
                    }
                )
        elif item.draw_tag is not None:
            needed[item.draw_tag] += item.draw_count or 0
    checked: set[str] = set()
    for item in items:
        if item.draw_tag is None or item.draw_tag in checked:
            continue
        checked.add(item.draw_tag)
        pool = await db.execute(
            select(Question.id)
            .where(
                usable_questions(exam.owner_id, exam.organization_id),
                Question.status == "active",
                Question.tags.contains([item.draw_tag]),
                Question.id.not_in(fixed_ids) if fixed_ids else true(),
            )
            .with_for_update(read=True)
        )
        available = len(pool.all())
        if available < needed[item.draw_tag]:
            problems.append(
                {
                    "field": f"items[{item.position}].draw.count",
                    "message": (
                        f"the exam draws {needed[item.draw_tag]} questions tagged "
                        f"{item.draw_tag!r} but only {available} active ones are available"
                    ),
                    "problem": "draw_too_small",
                    "position": item.position,
                    "tag": item.draw_tag,
                    "needed": needed[item.draw_tag],
                    "available": available,
                }
            )
    if problems:
        first = problems[0]
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise Unprocessable(
            f"cannot publish: {first['field']}: {first['message']}{more}",
            code="not_publishable",
            details=problems,
        )
    exam.status = "published"
    exam.published_at = now
    exam.updated_at = now
    await db.commit()
    await db.refresh(exam)
    log.info("exam_published", exam_id=str(exam.id))
    return exam
