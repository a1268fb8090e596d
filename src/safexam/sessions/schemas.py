"""Wire shapes of the exam-session endpoints (their field names are a public contract)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec

from safexam.sessions.models import SessionStatus

__all__ = [
    "AutosaveOut",
    "AutosaveRequest",
    "ExamSessionRow",
    "ExamSessionsOut",
    "PaperQuestion",
    "ReleaseOut",
    "ResultColumn",
    "ResultRow",
    "ResultsOut",
    "ReviewItem",
    "ReviewOut",
    "ReviewSubmission",
    "SavedResponse",
    "ScoreOut",
    "SessionOut",
    "SessionStatus",
    "StudentExam",
    "StudentExamState",
    "StudentExamsOut",
    "SubmitOut",
]

StudentExamState = Literal[
    "upcoming", "open", "in_progress", "submitted", "results_released", "closed"
]

# Generous but finite: a client counter (ms timestamps fit comfortably).
ClientSeq = Annotated[int, msgspec.Meta(ge=0, le=2**62)]


class StudentExam(msgspec.Struct, kw_only=True):
    """One of my exams, as a student sees it in the exam list."""

    id: uuid.UUID
    title: str
    description: str
    state: StudentExamState
    opens_at: datetime
    closes_at: datetime
    duration_minutes: int
    attempts_allowed: int
    attempts_used: int
    session_id: uuid.UUID | None
    session_status: SessionStatus | None
    # The running (or last) session's deadline; null before the first start.
    deadline_at: datetime | None


class StudentExamsOut(msgspec.Struct, kw_only=True):
    items: list[StudentExam]
    total: int


class PaperQuestion(msgspec.Struct, kw_only=True, omit_defaults=True):
    """A question on a student's paper: never an answer key, hidden test or template.

    Not the author's ``exams.schemas.QuestionOut``, which carries the body with its key.
    """

    id: uuid.UUID
    kind: str
    prompt: str
    points: float
    choices: list[dict[str, str]] | None = None
    multiple: bool | None = None
    languages: list[str] | None = None
    starter_code: dict[str, str] | None = None
    visible_tests: list[dict[str, str]] | None = None
    limits: dict[str, float] | None = None


class SavedResponse(msgspec.Struct, kw_only=True):
    answer: dict[str, Any] | None
    client_seq: int
    saved_at: datetime


class ScoreOut(msgspec.Struct, kw_only=True):
    score: float
    max_score: float


class SessionOut(msgspec.Struct, kw_only=True):
    """A student's session: enough for a reloaded page to restore everything."""

    id: uuid.UUID
    exam_id: uuid.UUID
    attempt: int
    status: SessionStatus
    started_at: datetime
    deadline_at: datetime
    submitted_at: datetime | None
    server_time: datetime
    remaining_seconds: int
    questions: list[PaperQuestion]
    responses: dict[str, SavedResponse]
    # Only once results are released to the student; null before.
    result: ScoreOut | None


class AutosaveRequest(msgspec.Struct, forbid_unknown_fields=True):
    answer: dict[str, Any]
    client_seq: ClientSeq


class AutosaveOut(msgspec.Struct, kw_only=True):
    question_id: uuid.UUID
    # The sequence number now stored: the request's when applied, the newer one when not.
    client_seq: int
    applied: bool
    saved_at: datetime


class SubmitOut(msgspec.Struct, kw_only=True):
    status: SessionStatus
    job_id: uuid.UUID | None
    submitted_at: datetime | None


class ReviewSubmission(msgspec.Struct, kw_only=True):
    """The code submission that counts for a coding question's score (the last one
    judged before the deadline, or the best when the question scores the best)."""

    id: uuid.UUID
    language: str
    source: str
    # Null while judging is unfinished; "accepted", "wrong_answer", ... once done.
    verdict: str | None
    score: float | None
    max_score: float | None
    tests_passed: int
    tests_total: int
    submitted_at: datetime


class ReviewItem(msgspec.Struct, kw_only=True, omit_defaults=True):
    id: uuid.UUID
    kind: str
    prompt: str
    points: float
    answer: dict[str, Any] | None
    correct_answer: dict[str, Any] | None
    score: float | None
    feedback: str | None
    choices: list[dict[str, str]] | None = None
    languages: list[str] | None = None
    # Coding questions: the submission that counts, when there is one.
    submission: ReviewSubmission | None = None


class ReviewOut(msgspec.Struct, kw_only=True):
    session_id: uuid.UUID
    exam_id: uuid.UUID
    status: SessionStatus
    score: float | None
    max_score: float
    released_at: datetime | None
    questions: list[ReviewItem]


class ExamSessionRow(msgspec.Struct, kw_only=True):
    session_id: uuid.UUID
    user_id: uuid.UUID
    email: str
    name: str
    attempt: int
    status: SessionStatus
    started_at: datetime
    deadline_at: datetime
    submitted_at: datetime | None
    remaining_seconds: int
    answered: int
    question_count: int
    event_counts: dict[str, int]
    flagged_events: int


class ExamSessionsOut(msgspec.Struct, kw_only=True):
    exam_id: uuid.UUID
    server_time: datetime
    items: list[ExamSessionRow]
    total: int


class ResultColumn(msgspec.Struct, kw_only=True):
    question_id: uuid.UUID
    label: str
    prompt: str


class ResultRow(msgspec.Struct, kw_only=True):
    session_id: uuid.UUID | None
    user_id: uuid.UUID | None
    email: str
    name: str
    # A session status, or "not_started" for an enrolled student who never began.
    status: str
    attempt: int | None
    started_at: datetime | None
    submitted_at: datetime | None
    score: float | None
    max_score: float | None
    percent: float | None
    questions: dict[str, float | None]


class ResultsOut(msgspec.Struct, kw_only=True):
    exam_id: uuid.UUID
    columns: list[ResultColumn]
    rows: list[ResultRow]


class ReleaseOut(msgspec.Struct, kw_only=True):
    exam_id: uuid.UUID
    released_at: datetime
    results_released: int
