"""The audit trail: who did what to whom, when and why.

Every action an educator or operator takes on someone else's work (a time
extension, a force-submit, an announcement, a score override, a regrade
applied, a release, a role changed, an account disabled) adds one row here in
the same transaction as the change itself, so the trail and the change commit
or roll back together. Rows are never updated or deleted.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, ForeignKey, Index, Text, func, select
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from safexam.core.db import Base, new_id

__all__ = ["AuditEvent", "audit_events", "record_audit"]


class AuditEvent(Base):
    __tablename__ = "audit_events"
    __table_args__ = (
        Index("ix_audit_events_exam_id_at", "exam_id", "at"),
        Index("ix_audit_events_subject_id_at", "subject_id", "at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )
    # Who acted; kept when the account is removed so the trail still reads.
    actor_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    # A dotted verb, e.g. "session.extend", "session.force_submit",
    # "exam.announce", "response.override", "user.role".
    action: Mapped[str] = mapped_column(Text, nullable=False)
    subject_type: Mapped[str] = mapped_column(Text, nullable=False)
    subject_id: Mapped[uuid.UUID | None] = mapped_column()
    # The exam the action belongs to, when there is one: the monitor and the
    # results page list an exam's trail by it.
    exam_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("exams.id", ondelete="CASCADE")
    )
    reason: Mapped[str | None] = mapped_column(Text)
    details: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False, server_default="{}")


def record_audit(
    db: AsyncSession,
    *,
    actor_id: uuid.UUID | None,
    action: str,
    subject_type: str,
    subject_id: uuid.UUID | None = None,
    exam_id: uuid.UUID | None = None,
    reason: str | None = None,
    details: dict[str, Any] | None = None,
) -> AuditEvent:
    """Add one row to the trail in the caller's transaction (the caller commits)."""
    event = AuditEvent(
        id=new_id(),
        actor_id=actor_id,
        action=action,
        subject_type=subject_type,
        subject_id=subject_id,
        exam_id=exam_id,
        reason=reason,
        details=details or {},
    )
    db.add(event)
    return event


async def audit_events(
    db: AsyncSession,
    *,
    exam_id: uuid.UUID | None = None,
    subject_id: uuid.UUID | None = None,
    limit: int = 200,
) -> list[AuditEvent]:
    """The newest rows first, of an exam or of one subject."""
    query = select(AuditEvent).order_by(AuditEvent.at.desc()).limit(limit)
    if exam_id is not None:
        query = query.where(AuditEvent.exam_id == exam_id)
    if subject_id is not None:
        query = query.where(AuditEvent.subject_id == subject_id)
    return list((await db.scalars(query)).all())
