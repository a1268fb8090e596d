"""The question bank: create, list, edit and retire questions.

Every body goes through :func:`safexam.exams.kinds.decode_body` and is stored in
its normalized form (defaults filled in), so graders and the student view read
one shape whatever the client sent. Questions used by a published exam may have
their answer keys edited (regrades exist for that) but can neither leave the
active pool nor be deleted.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import msgspec
import structlog
from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from safexam.auth.guards import Principal, ensure_owner
from safexam.auth.models import User
from safexam.core.audit import record_audit
from safexam.core.db import utcnow
from safexam.core.errors import Conflict, Forbidden, NotFound, Unprocessable
from safexam.exams.banks import Access, question_access, readable_questions, usable_questions
from safexam.exams.kinds import decode_body, validate_parametric
from safexam.exams.models import Exam, ExamItem, Question, QuestionStatus
from safexam.exams.schemas import QuestionOut, QuestionUpdate
from safexam.sessions.models import ExamSession, Response

__all__ = [
    "add_question",
    "create_question",
    "delete_question",
    "get_owned_question",
    "get_shared_question",
    "list_questions",
    "normalize_tags",
    "normalized_body",
    "question_out",
    "update_question",
]

log = structlog.get_logger(__name__)

MAX_PAGE = 200


def normalize_tags(tags: Iterable[str]) -> list[str]:
    """Stripped, lower-cased, without duplicates, in the order given."""
    seen: list[str] = []
    for tag in tags:
        clean = tag.strip().lower()
        if clean and clean not in seen:
            seen.append(clean)
    return seen


def normalized_body(
    kind: str, raw: Any, *, field: str = "body", strict: bool = True
) -> dict[str, Any]:
    """The body validated against ``kind`` and with its defaults filled in.

    ``strict=False`` is for a page's form, whose numbers and booleans arrive as text.
    """
    decoded = decode_body(kind, raw, field=field, strict=strict)
    body: dict[str, Any] = msgspec.to_builtins(decoded)
    return body


def question_out(question: Question) -> QuestionOut:
    return QuestionOut(
        id=question.id,
        owner_id=question.owner_id,
        kind=question.kind,
        prompt=question.prompt,
        body=question.body,
        points=question.points,
        tags=list(question.tags),
        status=question.status,
        source=question.source,
        provenance=question.provenance,
        created_at=question.created_at,
        updated_at=question.updated_at,
        bank_id=question.bank_id,
    )


async def add_question(
    db: AsyncSession,
    *,
    owner_id: uuid.UUID,
    kind: str,
    prompt: str,
    body: Any,
    points: float = 1.0,
    tags: Iterable[str] = (),
    status: QuestionStatus = "draft",
    source: str = "manual",
    provenance: dict[str, Any] | None = None,
) -> Question:
    """Validate and add a question of ``owner_id`` in the caller's transaction (flushed).

    The one way a question enters the bank: by the API through
    :func:`create_question`, and by the question generator (``source="qie"``,
    usually ``status="draft"`` with its provenance), whose job runner commits.
    Raises a 422 naming the field for a body that does not fit the kind.
    """
    if points < 0:
        raise Unprocessable("points must be >= 0", field="points")
    if status not in ("draft", "active"):
        raise Unprocessable("a new question is draft or active", field="status")
    if not prompt.strip():
        raise Unprocessable("prompt must not be blank", field="prompt")
    checked_body = normalized_body(kind, body)
    # Parameters and expressions are checked when authored, not when a student meets them.
    validate_parametric(kind, prompt, checked_body)
    # A question belongs to its owner's organization, always: read it here
    # rather than trust every caller to pass the matching one.
    organization_id = await db.scalar(select(User.organization_id).where(User.id == owner_id))
    if organization_id is None:
        raise NotFound("owner not found")
    question = Question(
        owner_id=owner_id,
        organization_id=organization_id,
        kind=kind,
        prompt=prompt,
        body=checked_body,
        points=points,
        tags=normalize_tags(tags),
        status=status,
        source=source,
        provenance=provenance,
    )
    db.add(question)
    await db.flush()
    await db.refresh(question)
    log.info("question_created", question_id=str(question.id), kind=kind, source=source)
    return question


async def create_question(
    db: AsyncSession,
    *,
    owner_id: uuid.UUID,
    kind: str,
    prompt: str,
    body: Any,
    points: float = 1.0,
    tags: Iterable[str] = (),
    status: QuestionStatus = "draft",
) -> Question:
    """An educator's new question (``source="manual"``); commits."""
    question = await add_question(
        db,
        owner_id=owner_id,
        kind=kind,
        prompt=prompt,
        body=body,
        points=points,
        tags=tags,
        status=status,
    )
    await db.commit()
    return question


async def get_owned_question(
    db: AsyncSession, question_id: uuid.UUID, principal: Principal, *, for_update: bool = False
) -> Question:
    """The question if the principal owns it (or is an admin); 404 otherwise."""
    stmt = select(Question).where(Question.id == question_id)
    if for_update:
        stmt = stmt.with_for_update()
    question = (await db.execute(stmt)).scalar_one_or_none()
    if question is None:
        raise NotFound("question not found")
    ensure_owner(question.owner_id, principal, "question", organization_id=question.organization_id)
    return question


async def get_shared_question(
    db: AsyncSession,
    question_id: uuid.UUID,
    principal: Principal,
    *,
    edit: bool = False,
    for_update: bool = False,
) -> tuple[Question, Access]:
    """The question and what the principal may do with it, through a shared bank too.

    404 for a question they may not see (another's, unshared, or another
    organization's); with ``edit=True``, 403 for one they see read-only.
    """
    stmt = select(Question).where(Question.id == question_id)
    if for_update:
        stmt = stmt.with_for_update()
    question = (await db.execute(stmt)).scalar_one_or_none()
    if question is None:
        raise NotFound("question not found")
    access = await question_access(db, question, principal)
    if access is None:
        raise NotFound("question not found")
    if edit and access == "read":
        raise Forbidden(
            "the question's bank is shared read-only; its owner may make it editable",
            code="question_read_only",
        )
    return question, access


async def list_questions(
    db: AsyncSession,
    principal: Principal,
    *,
    status: QuestionStatus | None = None,
    source: str | None = None,
    tag: str | None = None,
    kind: str | None = None,
    q: str | None = None,
    bank_id: uuid.UUID | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[Sequence[Question], int]:
    """A page of the principal's questions and those of banks shared with their
    organization (all its questions for an admin), and the total.

    Archived questions are left out unless ``status="archived"`` is asked for.
    ``q`` matches the prompt and the tags, case-insensitively; ``bank_id``
    keeps one bank's.
    """
    conditions: list[Any] = [readable_questions(principal)]
    if bank_id is not None:
        conditions.append(Question.bank_id == bank_id)
    if status is not None:
        conditions.append(Question.status == status)
    else:
        conditions.append(Question.status != "archived")
    if source is not None:
        conditions.append(Question.source == source)
    if kind is not None:
        conditions.append(Question.kind == kind)
    if tag is not None:
        conditions.append(Question.tags.contains([tag.strip().lower()]))
    if q:
        pattern = "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        conditions.append(
            or_(
                Question.prompt.ilike(pattern, escape="\\"),
                func.array_to_string(Question.tags, " ").ilike(pattern, escape="\\"),
            )
        )
    total = (
        await db.execute(select(func.count()).select_from(Question).where(*conditions))
    ).scalar_one()
    rows = (
        (
            await db.execute(
                select(Question)
                .where(*conditions)
                .order_by(Question.created_at.desc(), Question.id)
                .limit(limit)
                .offset(offset)
            )
        )
        .scalars()
        .all()
    )
    return rows, int(total)


async def _published_exams_with_item(db: AsyncSession, question_id: uuid.UUID) -> list[str]:
    rows = await db.execute(
        select(Exam.title)
        .join(ExamItem, ExamItem.exam_id == Exam.id)
        .where(ExamItem.question_id == question_id, Exam.status == "published")
        .distinct()
    )
    return [r[0] for r in rows]


async def _check_draw_pools(
    db: AsyncSession, question: Question, lost_tags: set[str], now: datetime
) -> None:
    """409 if taking ``question`` out of the active pool of ``lost_tags`` leaves a
    published, not yet closed exam unable to draw its questions."""
    if not lost_tags:
        return
    # A question of a shared bank feeds the draws of every educator of its organization.
    owners = (
        Exam.organization_id == question.organization_id
        if question.bank_id is not None
        else Exam.owner_id == question.owner_id
    )
    draws = (
        await db.execute(
            select(
                ExamItem.exam_id,
                ExamItem.draw_tag,
                func.sum(ExamItem.draw_count),
                Exam.title,
                Exam.owner_id,
            )
            .join(Exam, Exam.id == ExamItem.exam_id)
            .where(
                owners,
                Exam.status == "published",
                Exam.closes_at > now,
                ExamItem.draw_tag.in_(sorted(lost_tags)),
            )
            .group_by(ExamItem.exam_id, ExamItem.draw_tag, Exam.title, Exam.owner_id)
        )
    ).all()
    for exam_id, tag, draw_total, title, exam_owner_id in draws:
        needed = int(draw_total or 0)
        fixed = select(ExamItem.question_id).where(
            ExamItem.exam_id == exam_id, ExamItem.question_id.is_not(None)
        )
        available = (
            await db.execute(
                select(func.count())
                .select_from(Question)
                .where(
                    usable_questions(exam_owner_id, question.organization_id),
                    Question.status == "active",
                    Question.tags.contains([tag]),
                    Question.id != question.id,
                    Question.id.not_in(fixed),
                )
            )
        ).scalar_one()
        if available < needed:
            raise Conflict(
                f"the published exam {title!r} draws {needed} questions tagged {tag!r}; "
                f"without this one only {available} would be left",
                code="draw_pool_too_small",
                details={"exam_id": str(exam_id), "tag": tag},
            )


async def _leaving_active_pool(
    db: AsyncSession, question: Question, new_status: QuestionStatus, new_tags: list[str]
) -> None:
    if question.status != "active":
        return
    if new_status != "active":
        titles = await _published_exams_with_item(db, question.id)
        if titles:
            raise Conflict(
                f"the question is used by the published exam {titles[0]!r}; it must stay active",
                code="question_in_published_exam",
                details={"exams": titles},
            )
        lost = set(question.tags)
    else:
        lost = set(question.tags) - set(new_tags)
    await _check_draw_pools(db, question, lost, utcnow())


async def update_question(
    db: AsyncSession, question: Question, data: QuestionUpdate, actor: Principal | None = None
) -> Question:
    """Apply a PATCH. The body is re-validated against the (immutable) kind.

    Answer keys of questions in published exams may change (a regrade brings
    scores up to date); taking such a question out of the active pool may not.
    An edit by someone other than the owner (through an editable shared bank,
    or the admin), and any edit of a question in a bank, is audited: who, when
    and which fields.
    """
    changed = sorted(
        name
        for name in ("prompt", "body", "points", "tags", "status")
        if getattr(data, name) is not msgspec.UNSET
        and getattr(data, name) != getattr(question, name)
    )
    if data.kind is not msgspec.UNSET and data.kind != question.kind:
        raise Unprocessable(
            f"kind cannot change (it is {question.kind}); create a new question instead",
            field="kind",
        )
    if data.prompt is not msgspec.UNSET:
        if not data.prompt.strip():
            raise Unprocessable("prompt must not be blank", field="prompt")
        question.prompt = data.prompt
    if data.body is not msgspec.UNSET:
        question.body = normalized_body(question.kind, data.body)
    if data.body is not msgspec.UNSET or data.prompt is not msgspec.UNSET:
        validate_parametric(question.kind, question.prompt, question.body)
    if data.points is not msgspec.UNSET:
        question.points = data.points
    new_tags = list(question.tags) if data.tags is msgspec.UNSET else normalize_tags(data.tags)
    new_status = question.status if data.status is msgspec.UNSET else data.status
    await _leaving_active_pool(db, question, new_status, new_tags)
    question.tags = new_tags
    question.status = new_status
    question.updated_at = utcnow()
    if actor is not None and (actor.id != question.owner_id or question.bank_id is not None):
        record_audit(
            db,
            actor_id=actor.id,
            action="question.edit",
            subject_type="question",
            subject_id=question.id,
            details={
                "owner_id": str(question.owner_id),
                "bank_id": str(question.bank_id) if question.bank_id else None,
                "fields": changed,
            },
        )
    await db.commit()
    await db.refresh(question)
    log.info("question_updated", question_id=str(question.id))
    return question


async def _is_referenced(db: AsyncSession, question_id: uuid.UUID) -> bool:
    """Whether any exam item, saved response or student's paper points at the question."""
    in_items = select(ExamItem.id).where(ExamItem.question_id == question_id).limit(1)
    in_responses = select(Response.id).where(Response.question_id == question_id).limit(1)
    in_papers = (
        select(ExamSession.id)
        .where(ExamSession.paper.contains([{"question_id": str(question_id)}]))
        .limit(1)
    )
    for stmt in (in_items, in_responses, in_papers):
        if (await db.execute(stmt)).first() is not None:
            return True
    return False


async def delete_question(db: AsyncSession, question: Question) -> bool:
    """Delete the question, or archive it when something still refers to it.

    Returns True when the row is gone, False when it was archived (a draft exam
    or a student's paper still names it). A question of a published exam, or
    one a published exam still needs for a draw, is a 409.
    """
    titles = await _published_exams_with_item(db, question.id)
    if titles:
        raise Conflict(
            f"the question is used by the published exam {titles[0]!r}",
            code="question_in_published_exam",
            details={"exams": titles},
        )
    await _leaving_active_pool(db, question, "archived", [])
    if await _is_referenced(db, question.id):
        question.status = "archived"
        question.updated_at = utcnow()
        await db.commit()
        log.info("question_archived", question_id=str(question.id))
        return False
    await db.delete(question)
    await db.commit()
    log.info("question_deleted", question_id=str(question.id))
    return True
