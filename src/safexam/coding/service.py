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

import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import msgspec
import structlog
from redis.asyncio import Redis
from sqlalchemy import func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from safexam.auth.guards import Principal
from safexam.coding.compare import hide_template_lines, parse_comparison, render_program
from safexam.coding.execution import (
    CodeRunner,
    Judgement,
    Limits,
    RunnerError,
    RunnerUnavailable,
    TestCase,
    TestResult,
)
from safexam.coding.judge0 import (
    CallbackConfig,
    InvalidCallback,
    Judge0Result,
    Judge0Runner,
    clean_compile_output,
    fold_judgement,
    test_result_from_judge0,
    verify_callback_token,
)
from safexam.coding.languages import LANGUAGES, get_language
from safexam.coding.models import CodingSubmission, Judge0Test
from safexam.coding.notify import publish_progress
from safexam.coding.schemas import (
    MAX_SOURCE_CHARS,
    MAX_STDIN_CHARS,
    SubmissionOut,
    SubmissionQueued,
    TestOut,
)
from safexam.core.db import utcnow
from safexam.core.errors import Conflict, NotFound, RateLimited, Unprocessable
from safexam.core.redis import incr_fixed_window
from safexam.exams.kinds import CodingBody
from safexam.exams.models import Exam, Question
from safexam.jobs.kinds import JUDGE, JUDGE0_COLLECT
from safexam.jobs.service import enqueue
from safexam.sessions.models import ExamSession

__all__ = [
    "SUBMIT_LIMITS",
    "CallbackOutcome",
    "StaleCallback",
    "SubmitLimits",
    "collect_judge0_results",
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


def coding_body(body: dict[str, Any]) -> CodingBody:
    """A stored coding question's body, as its kind declares it (checked when authored)."""
    return msgspec.convert(body, CodingBody)


def judge_limits(spec: CodingBody) -> Limits:
    """The runner's limits for every test of the question."""
    return Limits(**msgspec.structs.asdict(spec.limits))


def judge_tests(spec: CodingBody, kind: str, stdin: str | None) -> list[TestCase]:
    """Submit: every test. Run: the student's input, or the visible tests."""
    tests = [TestCase(**msgspec.structs.asdict(t)) for t in spec.tests]
    if kind == "submit":
        return tests
    if stdin is not None:
        return [TestCase(name="custom input", stdin=stdin)]
    visible = [t for t in tests if not t.hidden]
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
                CodingSubmission.status.in_(("queued", "running")),
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


#: At most this often a judging reports how many tests are done (the last one always).
PROGRESS_INTERVAL_S = 0.25


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
    await publish_progress(
        redis,
        submission_id,
        status=values.get("status"),
        tests_done=values.get("tests_done"),
        tests_total=values.get("tests_total"),
    )


def _finish(
    submission: CodingSubmission,
    judgement: Judgement | None,
    error: str | None,
    template: str | None = None,
) -> None:
    """Write the outcome on the locked submission row: the one place a submission ends.

    The polling judge, the last Judge0 callback and the fallback poll all end
    here, so a submission finished by a callback is the same row, field for
    field, as one finished by polling (grading reads ``score``/``max_score``).
    """
    submission.finished_at = utcnow()
    if judgement is None:
        log.warning("coding_judge_failed", submission_id=str(submission.id), error=error)
        submission.status = "error"
        submission.verdict = "internal_error"
        submission.score = 0.0
        submission.compile_output = None
        submission.tests = []
        return
    submission.status = "done"
    submission.verdict = judgement.verdict
    submission.score = judgement.score
    submission.max_score = judgement.max_score
    # Compilers and tracebacks quote source lines; the template's stay hidden.
    source = submission.source
    submission.compile_output = (
        hide_template_lines(judgement.compile_output, template, source) or None
    )
    submission.tests = _as_rows(
        [
            msgspec.structs.replace(t, stderr=hide_template_lines(t.stderr, template, source))
            for t in judgement.tests
        ]
    )
    submission.tests_done = len(judgement.tests)
    submission.tests_total = len(judgement.tests)
    submission.executor = judgement.executor


def _outcome(submission: CodingSubmission) -> dict[str, Any]:
    return {
        "submission_id": str(submission.id),
        "status": submission.status,
        "verdict": submission.verdict,
        "score": submission.score,
    }


async def judge_submission(
    db: AsyncSession,
    submission_id: uuid.UUID,
    runner: CodeRunner,
    *,
    sessionmaker: async_sessionmaker[AsyncSession],
    redis: Redis | None = None,
    final_attempt: bool = False,
    callbacks: CallbackConfig | None = None,
) -> dict[str, Any]:
    """Compile and run a submission through ``runner``; write the outcome on ``db`` (uncommitted).

    Idempotent: a submission already done is left alone. Progress (status
    ``running``, tests done) is committed on its own short sessions so the
    SSE stream sees it while the judge works. ``RunnerUnavailable`` is
    re-raised for the job runner to retry later, except on the final attempt,
    where the submission ends as ``error`` / ``internal_error`` instead of
    staying queued forever.

    With ``callbacks`` and a Judge0 runner, the batch is created with signed
    callback URLs and this returns at once, leaving the submission
    ``running``: Judge0's PUTs (:func:`record_judge0_callback`) finish it, and
    a delayed ``JUDGE0_COLLECT`` job polls whatever has not arrived after
    ``callbacks.wait``. The job's writes (the Judge0 tokens, that job) commit
    with the job's own status.
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
    spec = coding_body(question.body)
    tests = judge_tests(spec, submission.kind, submission.stdin)
    language, session_id = submission.language, submission.session_id
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

    last_progress = -PROGRESS_INTERVAL_S

    async def progress(done: int, total: int) -> None:
        # A test can take a few milliseconds; a write and a notification for
        # each would cost more than the test and hold the next one back.
        nonlocal last_progress
        now = time.monotonic()
        if done < total and now - last_progress < PROGRESS_INTERVAL_S:
            return
        last_progress = now
        await _set_progress(sessionmaker, redis, submission_id, tests_done=done, tests_total=total)

    use_callbacks = callbacks is not None and isinstance(runner, Judge0Runner) and bool(tests)
    judgement: Judgement | None = None
    error: str | None = None
    try:
        parse_comparison(spec.comparison)
        program = render_program(spec.template.get(language), submission.source)
        if use_callbacks:
            assert callbacks is not None and isinstance(runner, Judge0Runner)
            tokens = await runner.submit_with_callbacks(
                language,
                program,
                tests,
                judge_limits(spec),
                lambda index: callbacks.url(str(submission_id), index),
            )
            await _await_callbacks(db, submission_id, session_id, tokens, callbacks)
            return {
                "submission_id": str(submission_id),
                "status": "running",
                "mode": "callback",
                "tests": len(tokens),
            }
        judgement = await runner.judge(
            language, program, tests, judge_limits(spec), spec.comparison, progress
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
    _finish(submission, judgement, error, spec.template.get(language))
    return _outcome(submission)


# --------------------------------------------------------------------- Judge0 callback mode
#
# One judge0_tests row per test, keyed like the signed callback token by
# (submission, test index). The worker writes the Judge0 tokens; the callback
# endpoint and the fallback poll write results, first one wins. Whoever fills
# the last row finishes the submission, under the submission's row lock taken
# FOR NO KEY UPDATE: that serialises the finishers without blocking the
# worker's inserts, whose foreign-key check only needs a KEY SHARE lock.


async def _await_callbacks(
    db: AsyncSession,
    submission_id: uuid.UUID,
    session_id: uuid.UUID,
    tokens: Sequence[str],
    callbacks: CallbackConfig,
) -> None:
    """Store the batch's Judge0 tokens and schedule the fallback poll, on ``db`` (uncommitted)."""
    # A callback may already have created its row (Judge0 can answer before we
    # commit), and a retried job brings a new batch: the token is overwritten,
    # a result that is in stays.
    statement = insert(Judge0Test).values(
        [
            {"submission_id": submission_id, "test_index": index, "judge0_token": token}
            for index, token in enumerate(tokens)
        ]
    )
    await db.execute(
        statement.on_conflict_do_update(
            index_elements=[Judge0Test.submission_id, Judge0Test.test_index],
            set_={"judge0_token": statement.excluded.judge0_token},
        )
    )
    exam_id = await db.scalar(select(ExamSession.exam_id).where(ExamSession.id == session_id))
    await enqueue(
        db,
        JUDGE0_COLLECT,
        args={"submission_id": str(submission_id)},
        exam_id=exam_id,
        session_id=session_id,
        delay_ms=int(callbacks.wait.total_seconds() * 1000),
    )
    log.info(
        "judge0_callbacks_awaited",
        submission_id=str(submission_id),
        tests=len(tokens),
        wait_s=callbacks.wait.total_seconds(),
    )


async def _lock_for_results(db: AsyncSession, submission_id: uuid.UUID) -> CodingSubmission | None:
    submission: CodingSubmission | None = await db.get(
        CodingSubmission,
        submission_id,
        with_for_update={"key_share": True},
        populate_existing=True,
    )
    return submission


async def _store_result(
    db: AsyncSession,
    submission_id: uuid.UUID,
    index: int,
    test_result: TestResult,
    compile_output: str | None,
    via: str,
) -> bool:
    """Fill one test's row unless a result is already there; True if this call filled it."""
    values = {
        "submission_id": submission_id,
        "test_index": index,
        "result": msgspec.to_builtins(test_result),
        "compile_output": clean_compile_output(compile_output) or None,
        "via": via,
        "received_at": utcnow(),
    }
    statement = insert(Judge0Test).values(values)
    filled = await db.execute(
        statement.on_conflict_do_update(
            index_elements=[Judge0Test.submission_id, Judge0Test.test_index],
            set_={
                name: statement.excluded[name]
                for name in ("result", "compile_output", "via", "received_at")
            },
            where=Judge0Test.result.is_(None),
        ).returning(Judge0Test.test_index)
    )
    return filled.first() is not None


async def _complete_if_all_in(
    db: AsyncSession, submission: CodingSubmission, spec: CodingBody, tests: list[TestCase]
) -> None:
    """Count the results in; with the last one, fold them and finish the submission."""
    rows = (
        await db.execute(
            select(Judge0Test.test_index, Judge0Test.result, Judge0Test.compile_output)
            .where(
                Judge0Test.submission_id == submission.id,
                Judge0Test.result.is_not(None),
                Judge0Test.test_index < len(tests),
            )
            .order_by(Judge0Test.test_index)
        )
    ).all()
    if len(rows) < len(tests):
        submission.status = "running"
        submission.tests_done = len(rows)
        submission.tests_total = len(tests)
        return
    results = msgspec.convert([row.result for row in rows], list[TestResult])
    _finish(
        submission,
        fold_judgement(results, [row.compile_output for row in rows], tests),
        None,
        spec.template.get(submission.language),
    )


class StaleCallback(Exception):
    """A signed callback for a Judge0 submission we no longer wait for (an earlier batch)."""


@dataclass(frozen=True)
class CallbackOutcome:
    submission: CodingSubmission
    # False for a replay, a duplicate or a callback after the submission ended.
    changed: bool


async def record_judge0_callback(
    db: AsyncSession,
    secret_key: str,
    token: str,
    result: Judge0Result,
) -> CallbackOutcome:
    """Store one test's result that Judge0 PUT to us; finish the submission with the last one.

    The token must be one we signed and still valid (:class:`InvalidCallback`
    otherwise, before anything is read or written). Idempotent: a repeated or
    replayed delivery finds its test's result already in (the first one
    wins) or the submission finished, and changes nothing. The caller commits.
    """
    submission_key, index = verify_callback_token(secret_key, token)
    try:
        submission_id = uuid.UUID(submission_key)
    except ValueError:
        raise InvalidCallback("malformed submission id") from None
    submission = await _lock_for_results(db, submission_id)
    if submission is None:
        raise NotFound("submission not found")
    if submission.status in ("done", "error"):
        return CallbackOutcome(submission, changed=False)
    question = await db.get(Question, submission.question_id)
    assert question is not None  # foreign key
    spec = coding_body(question.body)
    tests = judge_tests(spec, submission.kind, submission.stdin)
    if index >= len(tests):
        raise InvalidCallback("callback for a test that does not exist")
    row = await db.get(Judge0Test, (submission_id, index), populate_existing=True)
    if row is not None and row.result is not None:
        return CallbackOutcome(submission, changed=False)
    if (
        row is not None
        and row.judge0_token is not None
        and result.token is not None
        and row.judge0_token != result.token
    ):
        raise StaleCallback("callback for a Judge0 submission this test no longer waits for")
    test_result = test_result_from_judge0(
        tests[index], result, judge_limits(spec), spec.comparison, get_language(submission.language)
    )
    if not await _store_result(
        db, submission_id, index, test_result, result.compile_output, "callback"
    ):
        return CallbackOutcome(submission, changed=False)
    await _complete_if_all_in(db, submission, spec, tests)
    log.info(
        "judge0_callback_recorded",
        submission_id=str(submission_id),
        test_index=index,
        status=submission.status,
    )
    return CallbackOutcome(submission, changed=True)


async def collect_judge0_results(
    db: AsyncSession,
    submission_id: uuid.UUID,
    runner: Judge0Runner | None,
    *,
    final_attempt: bool = False,
) -> dict[str, Any]:
    """The fallback of callback mode: poll the tests whose callback never came; caller commits.

    Runs ``callbacks.wait`` after the batch was created. Judge0 sends each
    callback once (retrying only on connection errors), so a PUT that met a
    restart, a 5xx or a proxy in the way is never sent again; Judge0 keeps the
    result, so polling its token still gets it. Without this a submission
    would stay ``running`` for good. A submission already finished is left
    alone; ``RunnerUnavailable`` propagates for a retry, and on the final
    attempt the submission ends as ``error`` instead. ``runner`` is None when
    Judge0 is no longer the configured runner: nothing can be polled, so the
    submission ends as ``error`` rather than waiting for good.
    """
    submission = await db.get(CodingSubmission, submission_id, populate_existing=True)
    if submission is None or submission.status in ("done", "error"):
        return {"submission_id": str(submission_id), "polled": 0}
    pending = (
        await db.execute(
            select(Judge0Test.test_index, Judge0Test.judge0_token)
            .where(Judge0Test.submission_id == submission_id, Judge0Test.result.is_(None))
            .order_by(Judge0Test.test_index)
        )
    ).all()
    # No transaction stays open while Judge0 is polled (seconds to minutes).
    await db.commit()
    missing = [(row.test_index, row.judge0_token) for row in pending if row.judge0_token]
    log.info("judge0_callbacks_missing", submission_id=str(submission_id), missing=len(missing))
    finished: dict[str, Judge0Result] = {}
    error: str | None = None
    try:
        if runner is None:
            raise RunnerError("Judge0 is no longer the configured code runner")
        if missing:
            finished = await runner.collect([token for _, token in missing])
    except RunnerUnavailable as exc:
        if not final_attempt:
            raise
        error = f"Judge0 stayed unavailable: {exc}"
    except RunnerError as exc:
        error = f"{type(exc).__name__}: {exc}"
    submission = await _lock_for_results(db, submission_id)
    if submission is None or submission.status in ("done", "error"):
        return {"submission_id": str(submission_id), "polled": len(finished)}
    if error is not None:
        _finish(submission, None, error)
        return _outcome(submission)
    question = await db.get(Question, submission.question_id)
    assert question is not None  # foreign key
    spec = coding_body(question.body)
    tests = judge_tests(spec, submission.kind, submission.stdin)
    language = get_language(submission.language)
    for index, token in missing:
        if index < len(tests) and token in finished:
            result = finished[token]
            test_result = test_result_from_judge0(
                tests[index], result, judge_limits(spec), spec.comparison, language
            )
            await _store_result(
                db, submission_id, index, test_result, result.compile_output, "poll"
            )
    await _complete_if_all_in(db, submission, spec, tests)
    if submission.status not in ("done", "error"):
        # Rows without a token or a result: nothing left to poll, so end rather than hang.
        _finish(submission, None, "Judge0 results missing for some tests after polling")
    return {**_outcome(submission), "polled": len(finished)}
