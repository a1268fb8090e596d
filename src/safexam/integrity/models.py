"""A session's append-only integrity log, code similarity across a cohort, and reviews."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from safexam.core.db import Base, new_id


class ActivityLog(Base):
    __tablename__ = "activity_logs"
    __table_args__ = (Index("ix_activity_logs_session_server_at", "session_id", "server_at"),)

    # A bigint sequence, not a UUID: this table takes the most rows and is read in order.
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    session_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("exam_sessions.id", ondelete="CASCADE"), nullable=False
    )
    kind: Mapped[str] = mapped_column(Text, nullable=False)
    client_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    server_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )
    details: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False, server_default="{}")


#: What an educator decided about a similar pair or a session; ``open`` until then.
REVIEW_DECISIONS: tuple[str, ...] = ("open", "reviewed", "dismissed", "escalated")
_DECISION_CHECK = "decision IN ('open', 'reviewed', 'dismissed', 'escalated')"


class SimilarityPair(Base):
    """Two sessions' programs for one coding question that the similarity job found alike.

    The compared sources are kept with the pair, so the regions' line numbers
    always refer to the text the job read. A rerun updates the scores and
    keeps the educator's decision.
    """

    __tablename__ = "similarity_pairs"
    __table_args__ = (
        CheckConstraint(_DECISION_CHECK, name="decision"),
        # session_a < session_b: one row per unordered pair and question.
        CheckConstraint("session_a_id < session_b_id", name="ordered"),
        UniqueConstraint("question_id", "session_a_id", "session_b_id", name="uq_similarity_pair"),
        Index("ix_similarity_pairs_exam_id_score", "exam_id", "score"),
    )

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=new_id)
    exam_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("exams.id", ondelete="CASCADE"), nullable=False
    )
    question_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("questions.id", ondelete="CASCADE"), nullable=False
    )
    language: Mapped[str] = mapped_column(Text, nullable=False)
    session_a_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("exam_sessions.id", ondelete="CASCADE"), nullable=False
    )
    session_b_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("exam_sessions.id", ondelete="CASCADE"), nullable=False
    )
    score: Mapped[float] = mapped_column(Float, nullable=False)
    a_coverage: Mapped[float] = mapped_column(Float, nullable=False)
    b_coverage: Mapped[float] = mapped_column(Float, nullable=False)
    # [{"a_first", "a_last", "b_first", "b_last", "tokens"}], lines 1-based.
    regions: Mapped[list[dict[str, Any]]] = mapped_column(
        JSONB, nullable=False, server_default="[]"
    )
    a_source: Mapped[str] = mapped_column(Text, nullable=False)
    b_source: Mapped[str] = mapped_column(Text, nullable=False)
    decision: Mapped[str] = mapped_column(Text, nullable=False, server_default="open")
    note: Mapped[str | None] = mapped_column(Text)
    decided_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    computed_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )


class SimilarityCluster(Base):
    """Three or more sessions joined by similar pairs on one coding question."""

    __tablename__ = "similarity_clusters"
    __table_args__ = (Index("ix_similarity_clusters_exam_id", "exam_id"),)

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=new_id)
    exam_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("exams.id", ondelete="CASCADE"), nullable=False
    )
    question_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("questions.id", ondelete="CASCADE"), nullable=False
    )
    language: Mapped[str] = mapped_column(Text, nullable=False)
    session_ids: Mapped[list[uuid.UUID]] = mapped_column(ARRAY(UUID(as_uuid=True)), nullable=False)
    top_score: Mapped[float] = mapped_column(Float, nullable=False)
    computed_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )


class SessionReview(Base):
    """An educator's decision about one session's integrity evidence (never its score)."""

    __tablename__ = "session_reviews"
    __table_args__ = (CheckConstraint(_DECISION_CHECK, name="decision"),)

    session_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("exam_sessions.id", ondelete="CASCADE"), primary_key=True
    )
    exam_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("exams.id", ondelete="CASCADE"), nullable=False, index=True
    )
    decision: Mapped[str] = mapped_column(Text, nullable=False)
    note: Mapped[str | None] = mapped_column(Text)
    decided_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    decided_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )
