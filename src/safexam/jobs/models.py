"""The job ledger: transactional outbox and operators' view of all async work."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any, Literal, get_args

from sqlalchemy import CheckConstraint, DateTime, ForeignKey, Index, Integer, Text, func, text
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from safexam.core.db import Base, new_id
from safexam.core.settings import get_settings

__all__ = ["JOB_STATUSES", "STALE_AFTER", "Job", "JobStatus", "stale_after"]

JobStatus = Literal["pending", "queued", "running", "succeeded", "failed", "dead"]
JOB_STATUSES: tuple[JobStatus, ...] = get_args(JobStatus)

#: A running job whose heartbeat is older than this is presumed abandoned by a
#: dead worker: the sweep re-sends it and the next worker may take it over.
STALE_AFTER = timedelta(seconds=30)


def stale_after() -> timedelta:
    """This deployment's :data:`STALE_AFTER` (``SAFEXAM_JOB_STALE_AFTER_SECONDS``)."""
    return timedelta(seconds=get_settings().job_stale_after_seconds)


class Job(Base):
    __tablename__ = "jobs"
    __table_args__ = (
        CheckConstraint(
            "status IN ('pending', 'queued', 'running', 'succeeded', 'failed', 'dead')",
            name="status",
        ),
        CheckConstraint("attempts >= 0", name="attempts_nonnegative"),
        Index("ix_jobs_status_created_at", "status", "created_at"),
        Index("ix_jobs_kind_status", "kind", "status"),
        Index("ix_jobs_exam_id", "exam_id", postgresql_where=text("exam_id IS NOT NULL")),
        Index("ix_jobs_session_id", "session_id", postgresql_where=text("session_id IS NOT NULL")),
        # Two regrades of one exam never run at the same time: the second is refused.
        Index(
            "uq_jobs_active_regrade",
            "exam_id",
            unique=True,
            postgresql_where=text(
                "kind = 'regrade' AND status IN ('pending', 'queued', 'running')"
            ),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=new_id)
    kind: Mapped[str] = mapped_column(Text, nullable=False)
    queue: Mapped[str] = mapped_column(Text, nullable=False)
    actor: Mapped[str] = mapped_column(Text, nullable=False)
    args: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False, server_default="{}")
    exam_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    session_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    status: Mapped[JobStatus] = mapped_column(Text, nullable=False, server_default="pending")
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    max_attempts: Mapped[int] = mapped_column(Integer, nullable=False, server_default="5")
    progress_done: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    progress_total: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    progress_failed: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    error: Mapped[str | None] = mapped_column(Text)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    requested_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )
    # Not before this time (delayed jobs such as the auto-submit at a deadline).
    run_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    queued_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
