"""Code runs and submissions: accept, judge (in the ``judge`` worker), show.

The API records a submission row and a ``judge`` job in one transaction and
answers 202; a worker compiles and runs the program through the configured
runner and writes the verdict, the score and the per-test results. Students
see hidden tests only as name, verdict and time: never their input, the
expected output or what the program printed for them.

Protecting the pool: one run or submission in flight per student and
question (checked under a transaction-scoped advisory lock, so two racing
requests cannot both pass) and a per-student rate limit per minute in Redis.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import msgspec
import structlog
from redis.asyncio import Redis
from sqlalchemy import func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from safexam.auth.guards import Principal
from safexam.coding.compare import parse_comparison, render_program
from safexam.coding.judge0 import (
    InvalidCallback,
    Judge0Result,
    test_result_from_judge0,
    verify_callback_token,
)
from safexam.coding.languages import LANGUAGES, get_language
from safexam.coding.models import CodingSubmission
from safexam.coding.runner import (
    CodeRunner,
    Judgement,
    Limits,
    RunnerError,
    RunnerUnavailable,
    TestCase,
    TestResult,
    overall_verdict,
    score_of,
)
from safexam.coding.schemas import (
    MAX_SOURCE_CHARS,
    MAX_STDIN_CHARS,
    SubmissionOut,
    SubmissionQueued,
    TestOut,
)
from safexam.core.db import utcnow
from safexam.core.errors import Conflict, NotFound, RateLimited, Unprocessable
from safexam.core.events import publish, submission_channel
from safexam.core.redis import incr_fixed_window
from safexam.exams.models import Exam, Question
from safexam.jobs.service import enqueue
from safexam.sessions.models import ExamSession

__all__ = [
    "SUBMIT_LIMITS",
    "SubmitLimits",
    "create_submission",
    "get_submission",
    "judge_submission",
    "record_judge0_callback",
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


@dataclass(frozen=True)
class CodingQuestion:
    """The parts of a coding question's body the judge needs."""

    languages: list[str]
    template: dict[str, str]
    tests: list[TestCase]
    comparison: str
    limits: Limits

    @classmethod
    def from_body(cls, body: dict[str, Any]) -> CodingQuestion:
        limits = body.get("limits") or {}
        return cls(
            languages=list(body.get("languages") or []),
            template=dict(body.get("template") or {}),
            tests=[
                TestCase(
                    name=str(t["name"]),
                    stdin=str(t.get("stdin") or ""),
                    expected_output=t.get("expected_output"),
                    points=float(t.get("points", 1.0)),
                    hidden=bool(t.get("hidden", False)),
                )
                for t in body.get("tests") or []
            ],
            comparison=str(body.get("comparison") or "trimmed"),
            limits=Limits(
                cpu_time_s=float(limits.get("cpu_time_s", 2.0)),
                wall_time_s=float(limits.get("wall_time_s", 5.0)),
                memory_mb=int(limits.get("memory_mb", 256)),
                output_kb=int(limits.get("output_kb", 64)),
            ),
        )

    def tests_for(self, kind: str, stdin: str | None) -> list[TestCase]:
        """Submit: every test. Run: the student's input, or the visible tests."""
        if kind == "submit":
            return list(self.tests)
        if stdin is not None:
            return [TestCase(name="custom input", stdin=stdin)]
        visible = [t for t in self.tests if not t.hidden]
        return visible or [TestCase(name="no input")]


# --------------------------------------------------------------------- accept


async def _rate_limit(
    redis: Redis, namespace: str, user_id: uuid.UUID, kind: str, per_minute: int
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
    kind: str,
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
    spec = CodingQuestion.from_body(question.body)
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
                CodingSubmission.status.in_(("queued", "running")),
                CodingSubmission.created_at > now - limits.in_flight_window,
            )
        )
    ).scalar_one()
    if in_flight:
        raise RateLimited("Your previous run of this question is still in progress", retry_after=2)
    per_minute = limits.submissions_per_minute if kind == "submit" else limits.runs_per_minute
    await _rate_limit(redis, namespace, principal.id, kind, per_minute)
    tests = spec.tests_for(kind, stdin)
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
        kind="judge",
        queue="judge",
        actor="judge_submission",
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


def submission_view(submission: CodingSubmission) -> SubmissionOut:
    """The redacted view: hidden tests carry only name, verdict and time."""
    tests: list[TestOut] = []
    for raw in submission.tests or []:
        hidden = bool(raw.get("hidden"))
        out = TestOut(
            name=str(raw.get("name")),
            hidden=hidden,
            verdict=str(raw.get("verdict")),
            time_ms=int(raw.get("time_ms") or 0),
        )
        if not hidden:
            out.memory_kb = raw.get("memory_kb")
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
    """A run or submission for its student, the exam's owner or an admin; 404 for anyone else."""
    row = (
        await db.execute(
            select(CodingSubmission, ExamSession.user_id, Exam.owner_id)
            .join(ExamSession, ExamSession.id == CodingSubmission.session_id)
            .join(Exam, Exam.id == ExamSession.exam_id)
            .where(CodingSubmission.id == submission_id)
        )
    ).one_or_none()
    if row is None:
        raise NotFound("submission not found")
    submission, student_id, owner_id = row
    if not (principal.is_admin or principal.id in (student_id, owner_id)):
        raise NotFound("submission not found")
    return submission_view(submission)


# --------------------------------------------------------------------- judge


def _as_rows(results: list[TestResult]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = msgspec.to_builtins(results)
    return rows


async def _set_progress(
    maker: async_sessionmaker[AsyncSession],
    redis: Redis | None,
    submission_id: uuid.UUID,
    **values: Any,
) -> None:
    async with maker() as db:
        await db.execute(
            update(CodingSubmission).where(CodingSubmission.id == submission_id).values(**values)
        )
        await db.commit()
    if redis is not None:
        await publish(
            redis,
            submission_channel(submission_id),
            {"id": str(submission_id), **{k: v for k, v in values.items() if k != "started_at"}},
        )


async def judge_submission(
    db: AsyncSession,
    submission_id: uuid.UUID,
    runner: CodeRunner,
    *,
    sessionmaker: async_sessionmaker[AsyncSession],
    redis: Redis | None = None,
    final_attempt: bool = False,
) -> dict[str, Any]:
    """Compile and run a submission through ``runner``; write the outcome on ``db`` (uncommitted).

    Idempotent: a submission already done is left alone. Progress (status
    ``running``, tests done) is committed on its own short sessions so the
    SSE stream sees it while the judge works. ``RunnerUnavailable`` is
    re-raised for the job runner to retry later, except on the final attempt,
    where the submission ends as ``error`` / ``internal_error`` instead of
    staying queued forever.
    """
    submission = await db.get(
        CodingSubmission, submission_id, with_for_update=True, populate_existing=True
    )
    if submission is None:
        raise NotFound("submission not found")
    if submission.status in ("done", "error"):
        return {"submission_id": str(submission_id), "status": submission.status}
    question = await db.get(Question, submission.question_id)
    assert question is not None  # foreign key
    spec = CodingQuestion.from_body(question.body)
    tests = spec.tests_for(submission.kind, submission.stdin)
    # Release the row lock while the program runs; the final write re-reads it.
    await db.commit()
    await _set_progress(
        sessionmaker,
        redis,
        submission_id,
        status="running",
        started_at=utcnow(),
        tests_done=0,
        tests_total=len(tests),
    )

    async def progress(done: int, total: int) -> None:
        await _set_progress(sessionmaker, redis, submission_id, tests_done=done, tests_total=total)

    judgement: Judgement | None = None
    error: str | None = None
    try:
        parse_comparison(spec.comparison)
        program = render_program(spec.template.get(submission.language), submission.source)
        judgement = await runner.judge(
            submission.language, program, tests, spec.limits, spec.comparison, progress
        )
    except RunnerUnavailable as exc:
        if not final_attempt:
            await _set_progress(sessionmaker, redis, submission_id, status="queued")
            raise
        error = f"the code runner stayed unavailable: {exc}"
    except (RunnerError, ValueError, KeyError) as exc:
        error = f"{type(exc).__name__}: {exc}"
    submission = await db.get(
        CodingSubmission, submission_id, with_for_update=True, populate_existing=True
    )
    assert submission is not None
    submission.finished_at = utcnow()
    if judgement is None:
        log.warning("coding_judge_failed", submission_id=str(submission_id), error=error)
        submission.status = "error"
        submission.verdict = "internal_error"
        submission.score = 0.0
        submission.compile_output = None
        submission.tests = []
    else:
        submission.status = "done"
        submission.verdict = judgement.verdict
        submission.score = judgement.score
        submission.max_score = judgement.max_score
        submission.compile_output = judgement.compile_output or None
        submission.tests = _as_rows(judgement.tests)
        submission.tests_done = len(judgement.tests)
        submission.tests_total = len(judgement.tests)
        submission.executor = judgement.executor
    return {
        "submission_id": str(submission_id),
        "status": submission.status,
        "verdict": submission.verdict,
        "score": submission.score,
    }


# --------------------------------------------------------------------- Judge0 callbacks


async def record_judge0_callback(
    db: AsyncSession,
    secret_key: str,
    token: str,
    result: Judge0Result,
    on_done: Callable[[uuid.UUID], None] | None = None,
) -> CodingSubmission:
    """Store one test's result that Judge0 PUT to us; finish the submission with the last one.

    The token must be one we signed (:class:`InvalidCallback` otherwise, before
    anything is read or written). Repeated deliveries of the same test are
    harmless: the slot is simply written again.
    """
    submission_key, index = verify_callback_token(secret_key, token)
    try:
        submission_id = uuid.UUID(submission_key)
    except ValueError:
        raise InvalidCallback("malformed submission id") from None
    submission = await db.get(
        CodingSubmission, submission_id, with_for_update=True, populate_existing=True
    )
    if submission is None:
        raise NotFound("submission not found")
    question = await db.get(Question, submission.question_id)
    assert question is not None
    spec = CodingQuestion.from_body(question.body)
    tests = spec.tests_for(submission.kind, submission.stdin)
    if index >= len(tests):
        raise InvalidCallback("callback for a test that does not exist")
    if submission.status in ("done", "error"):
        return submission
    test_result = test_result_from_judge0(
        tests[index], result, spec.limits, spec.comparison, get_language(submission.language)
    )
    slots: list[dict[str, Any] | None] = list(submission.tests or [])
    slots += [None] * (len(tests) - len(slots))
    slots[index] = msgspec.to_builtins(test_result)
    submission.tests = slots  # type: ignore[assignment]  # a partial list until the last arrives
    filled = [s for s in slots if s is not None]
    submission.tests_done = len(filled)
    submission.status = "running"
    if len(filled) == len(tests):
        results = msgspec.convert(filled, list[TestResult])
        compile_error = any(r.verdict == "compile_error" for r in results)
        submission.status = "done"
        submission.verdict = "compile_error" if compile_error else overall_verdict(results)
        submission.score = score_of(results)
        submission.executor = "judge0"
        submission.finished_at = utcnow()
        if compile_error and result.compile_output:
            submission.compile_output = result.compile_output
        if on_done is not None:
            on_done(submission_id)
    return submission
