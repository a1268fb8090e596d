"""A student's runs and submissions: accept them for judging, and show them.

The API records a submission row and a ``judge`` job in one transaction and
answers 202; a worker judges it (:mod:`safexam.coding.judging`). Students see
hidden tests only as name, verdict and time: never their input, the expected
output or what the program printed for them.

Protecting the pool: one run or submission in flight per student and
question (checked under a transaction-scoped advisory lock, so two racing
requests cannot both pass) and a per-student rate limit per minute in Redis.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import cast

import structlog
from redis.asyncio import Redis
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from safexam.auth.guards import Principal
from safexam.coding.execution import Verdict
from safexam.coding.judging import coding_body, judge_tests
from safexam.coding.languages import LANGUAGES
from safexam.coding.models import IN_FLIGHT, CodingSubmission, SubmissionKind
from safexam.coding.queue import queue_place
from safexam.coding.schemas import (
    MAX_SOURCE_CHARS,
    MAX_STDIN_CHARS,
    SubmissionOut,
    SubmissionQueued,
    TestOut,
)
from safexam.core.errors import Conflict, NotFound, RateLimited, Unprocessable
from safexam.core.redis import incr_fixed_window
from safexam.exams.models import Exam, Question
from safexam.grading.models import Result
from safexam.jobs.kinds import JUDGE
from safexam.jobs.service import enqueue
from safexam.sessions.models import ExamSession
from safexam.sessions.rules import db_now, results_visible

__all__ = [
    "SUBMIT_LIMITS",
    "SubmitLimits",
    "create_submission",
    "get_submission",
    "submission_view",
]

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class SubmitLimits:
    """How hard one student may push the judge pool."""

    submissions_per_minute: int = 10
    runs_per_minute: int = 30
    # A job stuck longer than this (dead worker, lost queue) no longer blocks the next one.
    in_flight_window: timedelta = timedelta(minutes=5)


SUBMIT_LIMITS = SubmitLimits()


# --------------------------------------------------------------------- accept


async def _rate_limit(
    redis: Redis, namespace: str, user_id: uuid.UUID, kind: SubmissionKind, per_minute: int
) -> None:
    key = f"{namespace}:coding:{kind}:{user_id}"
    count, ttl = await incr_fixed_window(redis, key, 60)
    if count > per_minute:
        what = "submissions" if kind == "submit" else "runs"
        raise RateLimited(
            f"Too many {what}: at most {per_minute} a minute", retry_after=max(1, int(ttl))
        )


async def create_submission(
    db: AsyncSession,
    redis: Redis,
    session_id: uuid.UUID,
    principal: Principal,
    *,
    kind: SubmissionKind,
    question_id: uuid.UUID,
    language: str,
    source: str,
    stdin: str | None = None,
    namespace: str = "safexam",
    limits: SubmitLimits | None = None,
) -> SubmissionQueued:
    """Record a run or a submission and its ``judge`` job; the caller gets 202 and an id.

    404 for a session that is not the student's or a question not on the
    paper, 409 ``session_closed`` after submit or the deadline, 422 naming the
    field for a language the question does not allow or an oversized source,
    429 for a second one in flight on the question or too many per minute.
    Commits; the job's message leaves after that commit.
    """
    session = (
        await db.execute(
            select(ExamSession).where(
                ExamSession.id == session_id, ExamSession.user_id == principal.id
            )
        )
    ).scalar_one_or_none()
    if session is None:
        raise NotFound("session not found")
    on_paper = any(str(item.get("question_id")) == str(question_id) for item in session.paper)
    question = await db.get(Question, question_id) if on_paper else None
    if question is None or question.kind != "coding":
        raise NotFound("coding question not found on this paper")
    now = (await db.execute(select(func.now()))).scalar_one()
    if session.status != "active" or now >= session.deadline_at:
        raise Conflict(
            "This session has ended; code can no longer be run or submitted",
            code="session_closed",
        )
    limits = limits or SUBMIT_LIMITS
    spec = coding_body(question.body)
    if language not in spec.languages or language not in LANGUAGES:
        raise Unprocessable(
            f"language must be one of {', '.join(spec.languages)}", field="language"
        )
    if len(source) > MAX_SOURCE_CHARS:
        raise Unprocessable(f"source is longer than {MAX_SOURCE_CHARS} characters", field="source")
    if stdin is not None and len(stdin) > MAX_STDIN_CHARS:
        raise Unprocessable(f"stdin is longer than {MAX_STDIN_CHARS} characters", field="stdin")
    # Serialise requests of this student on this question for the rest of the
    # transaction: the in-flight check and the insert cannot interleave.
    await db.execute(
        text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"),
        {"key": f"coding:{session_id}:{question_id}"},
    )
    in_flight = (
        await db.execute(
            select(func.count())
            .select_from(CodingSubmission)
            .where(
                CodingSubmission.session_id == session_id,
                CodingSubmission.question_id == question_id,
                CodingSubmission.status.in_(IN_FLIGHT),
                CodingSubmission.created_at > now - limits.in_flight_window,
            )
        )
    ).scalar_one()
    if in_flight:
        raise RateLimited("Your previous run of this question is still in progress", retry_after=2)
    per_minute = limits.submissions_per_minute if kind == "submit" else limits.runs_per_minute
    await _rate_limit(redis, namespace, principal.id, kind, per_minute)
    tests = judge_tests(spec, kind, stdin)
    submission = CodingSubmission(
        id=uuid.uuid4(),
        session_id=session_id,
        question_id=question_id,
        kind=kind,
        language=language,
        source=source,
        stdin=stdin,
        status="queued",
        tests=[],
        tests_done=0,
        tests_total=len(tests),
        max_score=float(sum(t.points for t in tests)),
    )
    db.add(submission)
    await db.flush()
    job = await enqueue(
        db,
        JUDGE,
        args={"submission_id": str(submission.id)},
        exam_id=session.exam_id,
        session_id=session_id,
        requested_by=principal.id,
    )
    submission.job_id = job.id
    await db.commit()
    log.info("coding_submission_queued", submission_id=str(submission.id), kind=kind)
    return SubmissionQueued(id=submission.id, status="queued")


# --------------------------------------------------------------------- show


def submission_view(submission: CodingSubmission, *, hidden_facts: bool = False) -> SubmissionOut:
    """The redacted view: hidden tests carry only name and verdict.

    ``hidden_facts`` adds a hidden test's time and memory (for the exam's
    educators, and for its student once the results are released); its data
    and the program's output on it stay out either way.
    """
    tests: list[TestOut] = []
    for raw in submission.tests or []:
        hidden = bool(raw.get("hidden"))
        out = TestOut(
            name=str(raw.get("name")),
            hidden=hidden,
            # Rows are written from TestResult, whose verdict is a Verdict.
            verdict=cast(Verdict, str(raw.get("verdict"))),
        )
        if not hidden or hidden_facts:
            out.time_ms = int(raw.get("time_ms") or 0)
            out.memory_kb = raw.get("memory_kb")
        if not hidden:
            out.stdout = str(raw.get("stdout") or "")
            out.stderr = str(raw.get("stderr") or "")
        tests.append(out)
    return SubmissionOut(
        id=submission.id,
        kind=submission.kind,
        session_id=submission.session_id,
        question_id=submission.question_id,
        language=submission.language,
        status=submission.status,
        verdict=submission.verdict,
        score=submission.score,
        max_score=submission.max_score,
        compile_output=submission.compile_output,
        tests_done=submission.tests_done,
        tests_total=submission.tests_total,
        tests=tests,
        created_at=submission.created_at,
        finished_at=submission.finished_at,
    )


async def get_submission(
    db: AsyncSession, submission_id: uuid.UUID, principal: Principal
) -> SubmissionOut:
    """A run or submission for its student, the exam's owner or an admin; 404 for anyone else.

    While it is queued, with its place in the judge queue and the estimated wait.
    """
    row = (
        await db.execute(
            select(CodingSubmission, ExamSession.user_id, Exam, Result)
            .join(ExamSession, ExamSession.id == CodingSubmission.session_id)
            .join(Exam, Exam.id == ExamSession.exam_id)
            .outerjoin(Result, Result.session_id == ExamSession.id)
            .where(CodingSubmission.id == submission_id)
        )
    ).one_or_none()
    if row is None:
        raise NotFound("submission not found")
    submission, student_id, exam, result = row
    staff = exam.organization_id == principal.organization_id and (
        principal.is_admin or principal.id == exam.owner_id
    )
    if not (staff or principal.id == student_id):
        raise NotFound("submission not found")
    hidden_facts = staff or results_visible(
        release_policy=exam.release_policy,
        closes_at=exam.closes_at,
        exam_released_at=exam.released_at,
        result=result,
        now=await db_now(db),
    )
    view = submission_view(submission, hidden_facts=hidden_facts)
    place = await queue_place(db, submission)
    if place is not None:
        view.queue_position = place.position
        view.estimated_wait_seconds = place.estimated_wait_seconds
    return view
