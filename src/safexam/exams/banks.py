"""Question banks: an educator's named sets of questions, shared with their organization.

A question in no bank is its owner's alone, as it always was. A bank's
``sharing`` widens that within the organization, never beyond it:

- ``private``: the owner's (and the organization's admin's) alone;
- ``org_read``: every educator of the organization finds its questions in the
  bank list, previews them and uses them in their own exams (fixed items and
  draws by tag), but may not edit or delete them (403: they can see them);
- ``org_edit``: they may also edit them; every edit by someone other than the
  owner is audited. Deleting a question and moving it between banks stay the
  owner's (and the admin's).

An exam keeps the shared questions it holds when their bank is made private
again: its items and the students' papers already name them, and rebuilding
the exam's items accepts a question the exam already had. A draw, though, is
made when each student starts, so a bank may not stop being shared while a
published exam of another educator, not yet closed, still needs its questions
to fill a draw (409, as for retiring such a question).
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from typing import Any, Literal

import msgspec
import structlog
from sqlalchemy import ColumnElement, Select, and_, func, or_, select, true
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from safexam.auth.guards import Principal
from safexam.core.audit import record_audit
from safexam.core.db import utcnow
from safexam.core.errors import Conflict, Forbidden, NotFound, Unprocessable
from safexam.exams.models import Exam, ExamItem, Question, QuestionBank
from safexam.exams.schemas import BankCreate, BankOut, BankUpdate

__all__ = [
    "SHARED",
    "Access",
    "bank_out",
    "create_bank",
    "get_bank_for_owner",
    "list_banks",
    "move_question",
    "question_access",
    "readable_questions",
    "shared_bank_ids",
    "update_bank",
    "usable_questions",
]

log = structlog.get_logger(__name__)

Access = Literal["owner", "edit", "read"]
SHARED = ("org_read", "org_edit")


def shared_bank_ids(organization_id: uuid.UUID) -> Select[Any]:
    """The ids of the organization's banks shared with it (read-only or editable)."""
    return select(QuestionBank.id).where(
        QuestionBank.organization_id == organization_id, QuestionBank.sharing.in_(SHARED)
    )


def usable_questions(owner_id: uuid.UUID, organization_id: uuid.UUID) -> ColumnElement[bool]:
    """The questions an exam of ``owner_id`` may hold or draw from: the owner's own,
    and those of banks shared with the organization."""
    return and_(
        Question.organization_id == organization_id,
        or_(Question.owner_id == owner_id, Question.bank_id.in_(shared_bank_ids(organization_id))),
    )


def readable_questions(principal: Principal) -> ColumnElement[bool]:
    """The questions the principal may find and preview: an admin's organization's
    all, an educator's own and the shared ones."""
    if principal.is_admin:
        return Question.organization_id == principal.organization_id
    return usable_questions(principal.id, principal.organization_id)


async def question_access(
    db: AsyncSession, question: Question, principal: Principal
) -> Access | None:
    """What the principal may do with the question; None: it does not exist for them."""
    if question.organization_id != principal.organization_id:
        return None
    if principal.is_admin or question.owner_id == principal.id:
        return "owner"
    if question.bank_id is None:
        return None
    sharing = await db.scalar(
        select(QuestionBank.sharing).where(QuestionBank.id == question.bank_id)
    )
    if sharing == "org_edit":
        return "edit"
    if sharing == "org_read":
        return "read"
    return None


def _access_to_bank(bank: QuestionBank, principal: Principal) -> Access | None:
    if bank.organization_id != principal.organization_id:
        return None
    if principal.is_admin or bank.owner_id == principal.id:
        return "owner"
    if bank.sharing == "org_edit":
        return "edit"
    if bank.sharing == "org_read":
        return "read"
    return None


def bank_out(bank: QuestionBank, principal: Principal, questions: int = 0) -> BankOut:
    return BankOut(
        id=bank.id,
        owner_id=bank.owner_id,
        name=bank.name,
        sharing=bank.sharing,
        questions=questions,
        access=_access_to_bank(bank, principal) or "read",
        created_at=bank.created_at,
        updated_at=bank.updated_at,
    )


async def _count(db: AsyncSession, bank_ids: list[uuid.UUID]) -> dict[uuid.UUID, int]:
    if not bank_ids:
        return {}
    rows = await db.execute(
        select(Question.bank_id, func.count())
        .where(Question.bank_id.in_(bank_ids), Question.status != "archived")
        .group_by(Question.bank_id)
    )
    return {bank_id: int(n) for bank_id, n in rows.all() if bank_id is not None}


async def list_banks(db: AsyncSession, principal: Principal) -> list[tuple[QuestionBank, int]]:
    """The banks the principal sees (their own, and those shared with their organization;
    an admin all of it), each with its count of questions not archived; by name."""
    visible: ColumnElement[bool] = (
        true()
        if principal.is_admin
        else or_(QuestionBank.owner_id == principal.id, QuestionBank.sharing.in_(SHARED))
    )
    banks = list(
        (
            await db.execute(
                select(QuestionBank)
                .where(QuestionBank.organization_id == principal.organization_id, visible)
                .order_by(func.lower(QuestionBank.name), QuestionBank.id)
            )
        )
        .scalars()
        .all()
    )
    counts = await _count(db, [b.id for b in banks])
    return [(bank, counts.get(bank.id, 0)) for bank in banks]


async def get_bank_for_owner(
    db: AsyncSession, bank_id: uuid.UUID, principal: Principal, *, for_update: bool = False
) -> QuestionBank:
    """The bank if the principal owns it or administers its organization; 404 otherwise
    (403 for an educator who sees it shared: they know it exists)."""
    stmt = select(QuestionBank).where(QuestionBank.id == bank_id)
    if for_update:
        stmt = stmt.with_for_update()
    bank = (await db.execute(stmt)).scalar_one_or_none()
    if bank is None:
        raise NotFound("bank not found")
    access = _access_to_bank(bank, principal)
    if access is None:
        raise NotFound("bank not found")
    if access != "owner":
        raise Forbidden("only the bank's owner may change it", code="not_bank_owner")
    return bank


def _clean_name(name: str) -> str:
    clean = " ".join(name.split())
    if not clean:
        raise Unprocessable("name must not be blank", field="name")
    return clean


async def _flush_name(db: AsyncSession, name: str) -> None:
    try:
        await db.flush()
    except IntegrityError:
        await db.rollback()
        raise Conflict(
            f"you already have a bank named {name!r}",
            code="bank_name_taken",
            details=[{"field": "name", "message": f"you already have a bank named {name!r}"}],
        ) from None


async def create_bank(db: AsyncSession, principal: Principal, data: BankCreate) -> QuestionBank:
    """A new bank of the principal's, in their organization; commits."""
    name = _clean_name(data.name)
    bank = QuestionBank(
        organization_id=principal.organization_id,
        owner_id=principal.id,
        name=name,
        sharing=data.sharing,
    )
    db.add(bank)
    await _flush_name(db, name)
    record_audit(
        db,
        actor_id=principal.id,
        action="bank.create",
        subject_type="question_bank",
        subject_id=bank.id,
        details={"name": name, "sharing": data.sharing},
    )
    await db.commit()
    await db.refresh(bank)
    log.info("bank_created", bank_id=str(bank.id), sharing=bank.sharing)
    return bank


async def _check_draws_without(db: AsyncSession, bank: QuestionBank) -> None:
    """409 if a published, not yet closed exam of another educator of the organization
    could no longer fill a draw once the bank's questions leave its pool."""
    now = utcnow()
    draws = (
        await db.execute(
            select(
                Exam.id, Exam.title, Exam.owner_id, ExamItem.draw_tag, func.sum(ExamItem.draw_count)
            )
            .join(ExamItem, ExamItem.exam_id == Exam.id)
            .where(
                Exam.organization_id == bank.organization_id,
                Exam.owner_id != bank.owner_id,
                Exam.status == "published",
                Exam.closes_at > now,
                ExamItem.draw_tag.is_not(None),
            )
            .group_by(Exam.id, Exam.title, Exam.owner_id, ExamItem.draw_tag)
        )
    ).all()
    for exam_id, title, owner_id, tag, draw_total in draws:
        fixed = select(ExamItem.question_id).where(
            ExamItem.exam_id == exam_id, ExamItem.question_id.is_not(None)
        )
        available = (
            await db.execute(
                select(func.count())
                .select_from(Question)
                .where(
                    usable_questions(owner_id, bank.organization_id),
                    or_(Question.bank_id.is_(None), Question.bank_id != bank.id),
                    Question.status == "active",
                    Question.tags.contains([tag]),
                    Question.id.not_in(fixed),
                )
            )
        ).scalar_one()
        needed = int(draw_total or 0)
        if available < needed:
            raise Conflict(
                f"the published exam {title!r} draws {needed} questions tagged {tag!r} "
                f"from this bank's shared questions; without them only {available} would be left",
                code="draw_pool_too_small",
                details={"exam_id": str(exam_id), "tag": tag},
            )


async def update_bank(
    db: AsyncSession, bank: QuestionBank, data: BankUpdate, actor: Principal
) -> QuestionBank:
    """Rename the bank or change its sharing (audited); commits."""
    changes: dict[str, Any] = {}
    if data.name is not msgspec.UNSET:
        name = _clean_name(data.name)
        if name != bank.name:
            changes["name"] = {"from": bank.name, "to": name}
            bank.name = name
    if data.sharing is not msgspec.UNSET and data.sharing != bank.sharing:
        if data.sharing == "private":
            await _check_draws_without(db, bank)
        changes["sharing"] = {"from": bank.sharing, "to": data.sharing}
        bank.sharing = data.sharing
    if not changes:
        return bank
    bank.updated_at = utcnow()
    await _flush_name(db, bank.name)
    record_audit(
        db,
        actor_id=actor.id,
        action="bank.update",
        subject_type="question_bank",
        subject_id=bank.id,
        details=changes,
    )
    await db.commit()
    await db.refresh(bank)
    log.info("bank_updated", bank_id=str(bank.id), changed=sorted(changes))
    return bank


async def move_question(
    db: AsyncSession, question_id: uuid.UUID, bank_id: uuid.UUID | None, principal: Principal
) -> Question:
    """Put the principal's question into one of their banks, or take it out (None); commits.

    Only the question's owner (or the admin) moves it, and only into a bank the
    mover owns (or administers): sharing is the bank owner's decision.
    """
    question = (
        await db.execute(select(Question).where(Question.id == question_id).with_for_update())
    ).scalar_one_or_none()
    if question is None:
        raise NotFound("question not found")
    access = await question_access(db, question, principal)
    if access is None:
        raise NotFound("question not found")
    if access != "owner":
        raise Forbidden("only the question's owner may move it", code="not_question_owner")
    previous = question.bank_id
    if bank_id is not None:
        bank = await db.get(QuestionBank, bank_id)
        if bank is None or _access_to_bank(bank, principal) is None:
            raise Unprocessable("no such bank", field="bank_id")
        # An admin may file any question of the organization, but only into a
        # bank of the question's owner: a bank is one person's set.
        if bank.owner_id != question.owner_id:
            raise Unprocessable("the bank belongs to someone else", field="bank_id")
    elif previous is not None:
        old = await db.get(QuestionBank, previous)
        if old is not None and old.sharing != "private":
            await _check_draws_without_question(db, question, old)
    if previous != bank_id:
        question.bank_id = bank_id
        question.updated_at = utcnow()
        record_audit(
            db,
            actor_id=principal.id,
            action="question.move",
            subject_type="question",
            subject_id=question.id,
            details={
                "from": str(previous) if previous else None,
                "to": str(bank_id) if bank_id else None,
            },
        )
    await db.commit()
    await db.refresh(question)
    return question


async def _check_draws_without_question(
    db: AsyncSession, question: Question, bank: QuestionBank
) -> None:
    """As :func:`_check_draws_without`, for one question leaving a shared bank."""
    if question.status != "active" or not question.tags:
        return
    now = utcnow()
    draws = (
        await db.execute(
            select(
                Exam.id, Exam.title, Exam.owner_id, ExamItem.draw_tag, func.sum(ExamItem.draw_count)
            )
            .join(ExamItem, ExamItem.exam_id == Exam.id)
            .where(
                Exam.organization_id == bank.organization_id,
                Exam.owner_id != question.owner_id,
                Exam.status == "published",
                Exam.closes_at > now,
                ExamItem.draw_tag.in_(list(question.tags)),
            )
            .group_by(Exam.id, Exam.title, Exam.owner_id, ExamItem.draw_tag)
        )
    ).all()
    needed: dict[tuple[uuid.UUID, str | None], int] = defaultdict(int)
    for exam_id, _title, _owner, tag, draw_total in draws:
        needed[(exam_id, tag)] += int(draw_total or 0)
    for exam_id, title, owner_id, tag, _total in draws:
        fixed = select(ExamItem.question_id).where(
            ExamItem.exam_id == exam_id, ExamItem.question_id.is_not(None)
        )
        available = (
            await db.execute(
                select(func.count())
                .select_from(Question)
                .where(
                    usable_questions(owner_id, bank.organization_id),
                    Question.id != question.id,
                    Question.status == "active",
                    Question.tags.contains([tag]),
                    Question.id.not_in(fixed),
                )
            )
        ).scalar_one()
        if available < needed[(exam_id, tag)]:
            raise Conflict(
                f"the published exam {title!r} draws questions tagged {tag!r} "
                f"from this shared bank; without this one only {available} would be left",
                code="draw_pool_too_small",
                details={"exam_id": str(exam_id), "tag": tag},
            )
