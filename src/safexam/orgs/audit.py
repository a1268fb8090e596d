"""An organization's audit trail: who changed what, for its admins."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import msgspec
from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from safexam.auth.models import User
from safexam.core.audit import AuditEvent
from safexam.exams.models import Exam

__all__ = ["AuditRow", "organization_audit"]


class AuditRow(msgspec.Struct):
    at: datetime
    actor: str | None
    action: str
    subject_type: str
    exam_title: str | None
    subject_email: str | None
    reason: str | None
    details: dict[str, Any]


async def organization_audit(
    db: AsyncSession, organization_id: uuid.UUID, *, limit: int = 200
) -> list[AuditRow]:
    """The newest events first: those on the organization's exams, and those of its people
    that concern no exam (roles, accounts, invitations, imports)."""
    subject = aliased(User)
    rows = await db.execute(
        select(AuditEvent, User.name, User.email, Exam.title, subject.email)
        .outerjoin(User, User.id == AuditEvent.actor_id)
        .outerjoin(
            subject,
            and_(AuditEvent.subject_type == "user", subject.id == AuditEvent.subject_id),
        )
        .outerjoin(Exam, Exam.id == AuditEvent.exam_id)
        .where(
            or_(
                Exam.organization_id == organization_id,
                and_(AuditEvent.exam_id.is_(None), User.organization_id == organization_id),
            )
        )
        .order_by(AuditEvent.at.desc(), AuditEvent.id)
        .limit(limit)
    )
    return [
        AuditRow(
            at=event.at,
            actor=f"{name} ({email})" if email else None,
            action=event.action,
            subject_type=event.subject_type,
            exam_title=title,
            subject_email=subject_email,
            reason=event.reason,
            details=event.details,
        )
        for event, name, email, title, subject_email in rows.all()
    ]
