"""Code runs and graded submissions."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import (
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from safexam.coding.execution import Verdict
from safexam.core.db import Base, new_id

__all__ = [
    "ENDED",
    "IN_FLIGHT",
    "CodingSubmission",
    "Judge0Test",
    "Judge0Via",
    "SubmissionKind",
    "SubmissionStatus",
]

#: A run (visible tests or the student's own input, never graded) or a graded submission.
SubmissionKind = Literal["run", "submit"]
SubmissionStatus = Literal["queued", "running", "done", "error"]
#: Waiting for a judge or being judged: what the one-in-flight rule counts.
IN_FLIGHT: tuple[SubmissionStatus, ...] = ("queued", "running")
#: A submission in one of these has ended; nothing changes it again.
ENDED: tuple[SubmissionStatus, ...] = ("done", "error")
#: How a Judge0 test's result arrived: Judge0's callback, or our poll after the wait.
Judge0Via = Literal["callback", "poll"]


class CodingSubmission(Base):
    __tablename__ = "coding_submissions"
    __table_args__ = (
        CheckConstraint("kind IN ('run', 'submit')", name="kind"),
        CheckConstraint("status IN ('queued', 'running', 'done', 'error')", name="status"),
        CheckConstraint(
            "verdict IS NULL OR verdict IN ('accepted', 'wrong_answer', 'compile_error',"
            " 'runtime_error', 'time_limit', 'memory_limit', 'output_limit', 'internal_error')",
            name="verdict",
        ),
        Index("ix_coding_submissions_session_question", "session_id", "question_id", "created_at"),
        # The judge queue's place and throughput (safexam.coding.queue) read only
        # the few queued and running rows, and the latest finished ones.
        Index(
            "ix_coding_submissions_queued",
            "created_at",
            postgresql_where=text("status = 'queued'"),
        ),
        Index(
            "ix_coding_submissions_running",
            "started_at",
            postgresql_where=text("status = 'running'"),
        ),
        Index(
            "ix_coding_submissions_done",
            "finished_at",
            postgresql_where=text("status = 'done'"),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=new_id)
    session_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("exam_sessions.id", ondelete="CASCADE"), nullable=False
    )
    question_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("questions.id", ondelete="RESTRICT"), nullable=False
    )
    kind: Mapped[SubmissionKind] = mapped_column(Text, nullable=False)
    language: Mapped[str] = mapped_column(Text, nullable=False)
    source: Mapped[str] = mapped_column(Text, nullable=False)
    stdin: Mapped[str | None] = mapped_column(Text)
    status: Mapped[SubmissionStatus] = mapped_column(Text, nullable=False, server_default="queued")
    verdict: Mapped[Verdict | None] = mapped_column(Text)
    score: Mapped[float | None] = mapped_column(Float)
    max_score: Mapped[float | None] = mapped_column(Float)
    compile_output: Mapped[str | None] = mapped_column(Text)
    tests: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, nullable=False, server_default="[]")
    tests_done: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    tests_total: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    executor: Mapped[str | None] = mapped_column(Text)
    job_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Judge0Test(Base):
    """One test of a submission sent to Judge0 in callback mode: its token, then its result.

    A row per test, keyed by (submission, test index) like the signed callback
    token, so a repeated or replayed callback lands on the row it already
    filled, and a result is durable once the callback's 204 has left. Either
    side may create the row: Judge0 can call back before the worker has
    stored the token it was given.
    """

    __tablename__ = "judge0_tests"
    __table_args__ = (
        CheckConstraint("test_index >= 0", name="test_index_nonnegative"),
        CheckConstraint("via IS NULL OR via IN ('callback', 'poll')", name="via"),
    )

    submission_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("coding_submissions.id", ondelete="CASCADE"), primary_key=True
    )
    test_index: Mapped[int] = mapped_column(Integer, primary_key=True)
    judge0_token: Mapped[str | None] = mapped_column(Text)
    # Our TestResult for this test; null until Judge0's answer is in.
    result: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    compile_output: Mapped[str | None] = mapped_column(Text)
    # How the result arrived: Judge0's callback, or our poll after the callback wait.
    via: Mapped[Judge0Via | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )
    received_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
