"""Question bank, exams, their items and enrollments."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from safexam.core.db import Base, Timestamped, new_id

QuestionStatus = Literal["draft", "active", "archived"]
ExamStatus = Literal["draft", "published", "archived"]
BankSharing = Literal["private", "org_read", "org_edit"]


class QuestionBank(Timestamped, Base):
    """A named set of questions its owner may share with their organization.

    ``private``: the owner's alone (and the organization's admin's), as a
    question in no bank is. ``org_read``: every educator of the organization
    may find, preview and use its questions in their own exams. ``org_edit``:
    they may also edit them (each such edit is audited).
    """

    __tablename__ = "question_banks"
    __table_args__ = (
        CheckConstraint("sharing IN ('private', 'org_read', 'org_edit')", name="sharing"),
        UniqueConstraint("organization_id", "owner_id", "name"),
    )

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=new_id)
    organization_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organizations.id", ondelete="RESTRICT"), nullable=False, index=True
    )
    owner_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="RESTRICT"), nullable=False
    )
    name: Mapped[str] = mapped_column(Text, nullable=False)
    sharing: Mapped[BankSharing] = mapped_column(Text, nullable=False, server_default="private")
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False
    )


class Question(Timestamped, Base):
    __tablename__ = "questions"
    __table_args__ = (
        CheckConstraint(
            "kind IN ('mcq_single', 'mcq_multi', 'numeric', 'short_text', 'coding')", name="kind"
        ),
        CheckConstraint("status IN ('draft', 'active', 'archived')", name="status"),
        CheckConstraint("source IN ('manual', 'qie')", name="source"),
        CheckConstraint("points >= 0", name="points_nonnegative"),
        Index("ix_questions_owner_status", "owner_id", "status"),
        Index("ix_questions_tags", "tags", postgresql_using="gin"),
    )

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=new_id)
    owner_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="RESTRICT"), nullable=False
    )
    # Always the owner's organization; kept here so every bank query filters on it directly.
    organization_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organizations.id", ondelete="RESTRICT"), nullable=False, index=True
    )
    kind: Mapped[str] = mapped_column(Text, nullable=False)
    prompt: Mapped[str] = mapped_column(Text, nullable=False)
    body: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False)
    points: Mapped[float] = mapped_column(Float, nullable=False, server_default="1")
    tags: Mapped[list[str]] = mapped_column(ARRAY(Text), nullable=False, server_default="{}")
    status: Mapped[QuestionStatus] = mapped_column(Text, nullable=False, server_default="draft")
    source: Mapped[str] = mapped_column(Text, nullable=False, server_default="manual")
    provenance: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    # None: the owner's alone, as before banks existed. A bank deleted later
    # would leave its questions with their owner (SET NULL).
    bank_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("question_banks.id", ondelete="SET NULL"), index=True
    )
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False
    )


class Exam(Timestamped, Base):
    __tablename__ = "exams"
    __table_args__ = (
        CheckConstraint("closes_at > opens_at", name="window"),
        CheckConstraint("duration_minutes > 0", name="duration_positive"),
        CheckConstraint("attempts_allowed >= 1", name="attempts_positive"),
        CheckConstraint(
            "release_policy IN ('immediate', 'after_close', 'manual')", name="release_policy"
        ),
        CheckConstraint("status IN ('draft', 'published', 'archived')", name="status"),
    )

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=new_id)
    owner_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="RESTRICT"), nullable=False, index=True
    )
    # Sessions, responses, results, submissions and activity logs belong to an
    # exam and are scoped through it: every route reaching them loads the exam.
    organization_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organizations.id", ondelete="RESTRICT"), nullable=False, index=True
    )
    title: Mapped[str] = mapped_column(Text, nullable=False)
    description: Mapped[str] = mapped_column(Text, nullable=False, server_default="")
    opens_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    closes_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    duration_minutes: Mapped[int] = mapped_column(Integer, nullable=False)
    attempts_allowed: Mapped[int] = mapped_column(Integer, nullable=False, server_default="1")
    shuffle_questions: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default="false")
    shuffle_choices: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default="false")
    release_policy: Mapped[str] = mapped_column(Text, nullable=False, server_default="manual")
    integrity: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False, server_default="{}")
    status: Mapped[ExamStatus] = mapped_column(Text, nullable=False, server_default="draft")
    published_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    released_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Bumped by every regrade; responses and results record the version they were graded at.
    grading_version: Mapped[int] = mapped_column(Integer, nullable=False, server_default="1")
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False
    )


class ExamItem(Base):
    """One slot of an exam: a fixed question, or a draw of N questions from a tag."""

    __tablename__ = "exam_items"
    __table_args__ = (
        UniqueConstraint("exam_id", "position"),
        CheckConstraint(
            "(question_id IS NOT NULL AND draw_tag IS NULL AND draw_count IS NULL)"
            " OR (question_id IS NULL AND draw_tag IS NOT NULL AND draw_count >= 1)",
            name="question_or_draw",
        ),
        CheckConstraint("points >= 0", name="points_nonnegative"),
    )

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=new_id)
    exam_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("exams.id", ondelete="CASCADE"), nullable=False
    )
    position: Mapped[int] = mapped_column(Integer, nullable=False)
    question_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("questions.id", ondelete="RESTRICT"), index=True
    )
    draw_tag: Mapped[str | None] = mapped_column(Text)
    draw_count: Mapped[int | None] = mapped_column(Integer)
    points: Mapped[float] = mapped_column(Float, nullable=False)


class Enrollment(Timestamped, Base):
    """A student allowed to take an exam; by email so students can be enrolled before sign-in."""

    __tablename__ = "enrollments"
    __table_args__ = (
        UniqueConstraint("exam_id", "email"),
        CheckConstraint("email = lower(email)", name="email_lowercase"),
        CheckConstraint("extra_minutes >= 0", name="extra_minutes_nonnegative"),
        CheckConstraint("time_multiplier >= 1", name="time_multiplier_min"),
        Index("ix_enrollments_email", "email"),
    )

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=new_id)
    exam_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("exams.id", ondelete="CASCADE"), nullable=False
    )
    email: Mapped[str] = mapped_column(Text, nullable=False)
    user_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    extra_minutes: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    time_multiplier: Mapped[float] = mapped_column(Float, nullable=False, server_default="1")
