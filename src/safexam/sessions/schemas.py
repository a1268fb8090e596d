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
    "ReleaseStatusOut",
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
    "StudentResultItem",
    "StudentResultOut",
    "SubmissionDetailOut",
    "SubmissionTestOut",
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
    # What the question is worth (the most any paper gives it; papers agree
    # unless the exam changed after some students started).
    points: float = 0.0


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
    # Per question id, the response whose score PUT /responses/{id}/override sets.
    response_ids: dict[str, uuid.UUID] = {}


class ResultsOut(msgspec.Struct, kw_only=True):
    exam_id: uuid.UUID
    columns: list[ResultColumn]
    rows: list[ResultRow]


class SubmissionTestOut(msgspec.Struct, kw_only=True):
    name: str
    hidden: bool
    verdict: str
    time_ms: int
    points: float
    max_points: float


class SubmissionDetailOut(msgspec.Struct, kw_only=True):
    """A coding question's counted submission as the educator sees it: every test."""

    id: uuid.UUID
    language: str
    source: str
    verdict: str | None
    score: float | None
    max_score: float | None
    compile_output: str | None
    submitted_at: datetime
    tests: list[SubmissionTestOut]


class StudentResultItem(msgspec.Struct, kw_only=True):
    question_id: uuid.UUID
    # The column's label in the results table (Q1, Q2, ...).
    label: str
    kind: str
    prompt: str
    points: float
    # Null only when the session is not graded yet and the question was never answered.
    response_id: uuid.UUID | None
    answer: dict[str, Any] | None
    correct_answer: dict[str, Any] | None
    choices: list[dict[str, str]] | None
    # The automatic score, the educator's override, and the one that counts.
    auto_score: float | None
    override_score: float | None
    override_comment: str | None
    override_at: datetime | None
    score: float | None
    feedback: str | None
    submission: SubmissionDetailOut | None


class StudentResultOut(msgspec.Struct, kw_only=True):
    """One student's attempt for the exam's owner: every answer, score and override."""

    session_id: uuid.UUID
    exam_id: uuid.UUID
    exam_title: str
    user_id: uuid.UUID
    email: str
    name: str
    status: SessionStatus
    attempt: int
    started_at: datetime
    submitted_at: datetime | None
    graded_at: datetime | None
    score: float | None
    max_score: float
    pending_count: int
    released_at: datetime | None
    items: list[StudentResultItem]


class ReleaseStatusOut(msgspec.Struct, kw_only=True):
    """Where an exam's results stand: what its students can see now and what releasing adds."""

    exam_id: uuid.UUID
    title: str
    status: str
    release_policy: str
    closes_at: datetime
    released_at: datetime | None
    sessions: int
    graded: int
    # Graded results their students can open now, and those still held back.
    visible: int
    held: int
    # Finished but not graded yet: they show when grading ends (if released).
    grading: int
    active: int
    not_started: int


class ReleaseOut(msgspec.Struct, kw_only=True):
    exam_id: uuid.UUID
    released_at: datetime
    results_released: int
