"""Exam sessions (one attempt of one student at one exam) and their responses."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from safexam.core.db import Base, new_id

SessionStatus = Literal["active", "submitted", "expired", "graded"]
#: Ended, by the student's submit or at the deadline, and graded or waiting to be.
FINISHED_STATUSES: tuple[SessionStatus, ...] = ("submitted", "expired", "graded")


class ExamSession(Base):
    __tablename__ = "exam_sessions"
    __table_args__ = (
        UniqueConstraint("exam_id", "user_id", "attempt"),
        CheckConstraint("status IN ('active', 'submitted', 'expired', 'graded')", name="status"),
        CheckConstraint("attempt >= 1", name="attempt_positive"),
        CheckConstraint("deadline_at > started_at", name="deadline_after_start"),
        # At most one running attempt per student and exam, whatever the attempt number.
        Index(
            "uq_exam_sessions_one_active",
            "exam_id",
            "user_id",
            unique=True,
            postgresql_where=text("status = 'active'"),
        ),
        Index("ix_exam_sessions_status_deadline", "status", "deadline_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=new_id)
    exam_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("exams.id", ondelete="CASCADE"), nullable=False
    )
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True
    )
    attempt: Mapped[int] = mapped_column(Integer, nullable=False)
    status: Mapped[SessionStatus] = mapped_column(Text, nullable=False, server_default="active")
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    deadline_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    submitted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    graded_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    seed: Mapped[int] = mapped_column(BigInteger, nullable=False)
    # The student's paper, fixed at start: [{question_id, points, choice_order, variant}].
    paper: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, nullable=False)
    ip_address: Mapped[str | None] = mapped_column(Text)
    user_agent: Mapped[str | None] = mapped_column(Text)


class Response(Base):
    """The latest saved answer of a session to one question, with its grade."""

    __tablename__ = "responses"
    __table_args__ = (
        UniqueConstraint("session_id", "question_id"),
        CheckConstraint("client_seq >= 0", name="client_seq_nonnegative"),
    )

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=new_id)
    session_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("exam_sessions.id", ondelete="CASCADE"), nullable=False
    )
    question_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("questions.id", ondelete="RESTRICT"), nullable=False, index=True
    )
    answer: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    client_seq: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default="0")
    saved_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    score: Mapped[float | None] = mapped_column(Float)
    max_score: Mapped[float | None] = mapped_column(Float)
    feedback: Mapped[str | None] = mapped_column(Text)
    graded_version: Mapped[int | None] = mapped_column(Integer)
    override_score: Mapped[float | None] = mapped_column(Float)
    override_comment: Mapped[str | None] = mapped_column(Text)
    override_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    override_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ResponseHistory(Base):
    """Every applied save of an answer, kept in order: what ``responses`` overwrites.

    The integrity review shows the answers saved around an event (an MCQ
    answer changed right after a paste); ``responses`` holds only the last.
    Written by the autosave statement itself, in the same statement as the
    upsert, and only when the save was applied (an older or repeated
    ``client_seq`` writes nothing). Grading's placeholder rows for unanswered
    questions are not saves and are not recorded. Pruned with the integrity
    events after ``SAFEXAM_INTEGRITY_RETENTION_DAYS``.
    """

    __tablename__ = "response_history"
    __table_args__ = (Index("ix_response_history_session_id_saved_at", "session_id", "saved_at"),)

    # A bigint sequence: the table grows with every save, and retention walks it from the oldest.
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    session_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("exam_sessions.id", ondelete="CASCADE"), nullable=False
    )
    # No foreign key on purpose: the session's ``responses`` row already holds the
    # question (and keeps it from being deleted), and a second check would run on
    # every save of the hot path.
    question_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    client_seq: Mapped[int] = mapped_column(BigInteger, nullable=False)
    answer: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False)
    saved_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)


class Announcement(Base):
    """A message from the exam's educator to every student taking it.

    Kept, not only pushed: a student who opens or reloads the exam page later
    still reads every announcement made during their attempt.
    """

    __tablename__ = "announcements"
    __table_args__ = (Index("ix_announcements_exam_id_created_at", "exam_id", "created_at"),)

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=new_id)
    exam_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("exams.id", ondelete="CASCADE"), nullable=False
    )
    author_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    message: Mapped[str] = mapped_column(Text, nullable=False)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )
