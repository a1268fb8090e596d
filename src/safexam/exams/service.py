"""Exams and enrollments: authoring rules, publishing, and the lookups other domains use.

An exam is a draft until :func:`publish_exam` checks it and freezes its
content: from then on its items, window opening, duration, attempts and
shuffling stay as they are; title, description, a later ``closes_at``, the
release policy and the integrity settings may still change.

Item points are per question: a draw of ``count`` questions at ``points``
contributes ``count * points`` to the maximum score. Draws take active
questions of the exam's owner carrying the tag, never a question that is
already a fixed item of the exam.

Public surface for other domains: :func:`get_owned_exam`,
:func:`get_exam_items`, :func:`exam_max_score`, :func:`load_exam_max_score`,
:func:`get_enrollment`.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from typing import Any, Protocol

import msgspec
import structlog
from sqlalchemy import delete, func, select, true
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from safexam.auth.guards import Principal, ensure_owner
from safexam.auth.models import User
from safexam.auth.service import normalize_email
from safexam.core.db import new_id, utcnow
from safexam.core.errors import Conflict, NotFound, Unprocessable
from safexam.exams.models import Enrollment, Exam, ExamItem, Question
from safexam.exams.questions_service import normalize_tags
from safexam.exams.schemas import (
    DEFAULT_FLAG_KINDS,
    EVENT_KINDS,
    DrawOut,
    EnrollmentIn,
    EnrollmentOut,
    ExamCounts,
    ExamCreate,
    ExamItemIn,
    ExamItemOut,
    ExamOut,
    ExamUpdate,
    IntegritySettings,
    QuestionBrief,
)
from safexam.sessions.models import ExamSession

__all__ = [
    "create_exam",
    "delete_exam",
    "exam_max_score",
    "exams_out",
    "get_enrollment",
    "get_exam_items",
    "get_owned_exam",
    "list_enrollments",
    "list_exams",
    "load_exam_max_score",
    "publish_exam",
    "remove_enrollment",
    "update_exam",
    "upsert_enrollments",
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
# asyncpg allows 32,767 bind parameters per statement; six per enrollment row.
_ENROLLMENT_CHUNK = 1_000


class _Person(Protocol):
    @property
    def id(self) -> uuid.UUID: ...

    @property
    def email(self) -> str: ...


# ---------------------------------------------------------------- lookups for other domains


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
    ensure_owner(exam.owner_id, principal, "exam")
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


# ---------------------------------------------------------------- responses


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


# ---------------------------------------------------------------- authoring


async def _build_items(
    db: AsyncSession, owner_id: uuid.UUID, items: Sequence[ExamItemIn]
) -> list[ExamItem]:
    """Validated, unsaved item rows; 422 naming ``items[i]...`` for the first bad one."""
    wanted = {i.question_id for i in items if i.question_id is not None}
    found: dict[uuid.UUID, Question] = {}
    if wanted:
        for q in (await db.execute(select(Question).where(Question.id.in_(wanted)))).scalars():
            found[q.id] = q
    rows: list[ExamItem] = []
    used: dict[uuid.UUID, int] = {}
    for position, item in enumerate(items):
        where = f"items[{position}]"
        if (item.question_id is None) == (item.draw is None):
            raise Unprocessable("an item has either question_id or draw", field=where)
        if item.question_id is not None:
            question = found.get(item.question_id)
            if question is None or question.owner_id != owner_id:
                raise Unprocessable(
                    "no such question in the exam owner's bank", field=f"{where}.question_id"
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
    rows = await _build_items(db, principal.id, data.items)
    exam = Exam(
        owner_id=principal.id,
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
    conditions: list[Any] = []
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
        new_rows = await _build_items(db, exam.owner_id, data.items)
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
        exam.integrity = msgspec.to_builtins(data.integrity)
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
    problems: list[dict[str, str]] = []
    items = await get_exam_items(db, exam.id)
    if not items:
        problems.append({"field": "items", "message": "an exam needs at least one item"})
    if exam.closes_at <= now:
        problems.append({"field": "closes_at", "message": "closes_at is in the past"})
    if exam.closes_at <= exam.opens_at:
        problems.append({"field": "closes_at", "message": "closes_at must be after opens_at"})
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
                Question.owner_id == exam.owner_id,
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


# ---------------------------------------------------------------- enrollments


async def upsert_enrollments(db: AsyncSession, exam: Exam, students: Sequence[EnrollmentIn]) -> int:
    """Enroll students by email (lower-cased), linking existing accounts.

    Unknown emails are pre-enrolled; ``safexam.auth.service.link_enrollments``
    attaches them when the account is created. An accommodation left out keeps
    its current value. 422 naming ``students[i].email`` for an email listed
    twice or belonging to an educator or admin. Returns how many were upserted.
    """
    emails = [normalize_email(s.email) for s in students]
    first_seen: dict[str, int] = {}
    for index, email in enumerate(emails):
        if email in first_seen:
            raise Unprocessable(
                f"{email} is listed twice (also at {first_seen[email]})",
                field=f"students[{index}].email",
            )
        first_seen[email] = index
    users = {
        u.email: u for u in (await db.execute(select(User).where(User.email.in_(emails)))).scalars()
    }
    for index, email in enumerate(emails):
        user = users.get(email)
        if user is not None and user.role != "student":
            raise Unprocessable(
                f"{email} belongs to an {user.role} account, not a student",
                field=f"students[{index}].email",
            )
    # Rows that omit an accommodation must not overwrite it on conflict, so rows
    # are grouped by which accommodations they carry.
    groups: dict[tuple[bool, bool], list[dict[str, Any]]] = defaultdict(list)
    for student, email in zip(students, emails, strict=True):
        has_extra = student.extra_minutes is not msgspec.UNSET
        has_mult = student.time_multiplier is not msgspec.UNSET
        user = users.get(email)
        groups[(has_extra, has_mult)].append(
            {
                "id": new_id(),
                "exam_id": exam.id,
                "email": email,
                "user_id": user.id if user else None,
                "extra_minutes": student.extra_minutes if has_extra else 0,
                "time_multiplier": student.time_multiplier if has_mult else 1.0,
            }
        )
    for (has_extra, has_mult), rows in groups.items():
        for start in range(0, len(rows), _ENROLLMENT_CHUNK):
            stmt = pg_insert(Enrollment).values(rows[start : start + _ENROLLMENT_CHUNK])
            update: dict[str, Any] = {
                "user_id": func.coalesce(stmt.excluded.user_id, Enrollment.user_id)
            }
            if has_extra:
                update["extra_minutes"] = stmt.excluded.extra_minutes
            if has_mult:
                update["time_multiplier"] = stmt.excluded.time_multiplier
            await db.execute(
                stmt.on_conflict_do_update(index_elements=["exam_id", "email"], set_=update)
            )
    await db.commit()
    log.info("enrollments_upserted", exam_id=str(exam.id), count=len(emails))
    return len(emails)


async def list_enrollments(db: AsyncSession, exam: Exam) -> list[EnrollmentOut]:
    """The exam's enrollments by email, with the account's name once linked."""
    rows = await db.execute(
        select(Enrollment, User.name)
        .outerjoin(User, User.id == Enrollment.user_id)
        .where(Enrollment.exam_id == exam.id)
        .order_by(Enrollment.email)
    )
    return [
        EnrollmentOut(
            email=e.email,
            user_id=e.user_id,
            name=name,
            linked=e.user_id is not None,
            extra_minutes=e.extra_minutes,
            time_multiplier=e.time_multiplier,
            created_at=e.created_at,
        )
        for e, name in rows
    ]


async def remove_enrollment(db: AsyncSession, exam: Exam, email: str) -> None:
    """Unenroll one email; 404 if it was not enrolled."""
    result = await db.execute(
        delete(Enrollment)
        .where(Enrollment.exam_id == exam.id, Enrollment.email == normalize_email(email))
        .returning(Enrollment.id)
    )
    if result.first() is None:
        raise NotFound("no enrollment for this email")
    await db.commit()
    log.info("enrollment_removed", exam_id=str(exam.id))
