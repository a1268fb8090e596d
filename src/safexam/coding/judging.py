"""Judging a run or a submission, the ``judge`` job's work: load, judge, record.

- **load** reads the submission and its question and copies what the judge
  needs into a :class:`JudgeTask`, an immutable struct; the read transaction
  ends right after, so no row lock or connection is held while programs run.
- **judge** compiles and runs the program through the configured
  :class:`~safexam.coding.execution.CodeRunner`. It never touches the
  database: it is a function of the task and the runner, and its outcome is a
  struct (:data:`JudgeOutcome`).
- **record** writes that outcome on the job's session, which the job runner
  commits with the job's status (fenced by the attempt number), and hands
  back the live events to publish after that commit.

Progress (``running``, tests done of total) is the one thing written while
the judge works, through :class:`ProgressReport`, which the judge is given as
a plain callback.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import msgspec
import structlog
from redis.asyncio import Redis
from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from safexam.coding.compare import hide_template_lines, parse_comparison, render_program
from safexam.coding.execution import (
    CodeRunner,
    Judgement,
    Limits,
    Progress,
    RunnerError,
    RunnerUnavailable,
    TestCase,
    TestResult,
)
from safexam.coding.judge0 import CallbackConfig, Judge0Runner
from safexam.coding.models import ENDED, CodingSubmission, Judge0Test, SubmissionStatus
from safexam.coding.notify import SubmissionJobEnded, publish_progress
from safexam.core.db import utcnow
from safexam.core.errors import NotFound
from safexam.exams.kinds import CodingBody
from safexam.exams.models import Question
from safexam.jobs.kinds import JUDGE0_COLLECT
from safexam.jobs.runner import Done
from safexam.jobs.service import enqueue
from safexam.sessions.models import ExamSession

__all__ = [
    "PROGRESS_INTERVAL_S",
    "BatchCreated",
    "Failed",
    "JudgeOutcome",
    "JudgeTask",
    "Judged",
    "ProgressReport",
    "coding_body",
    "finish_submission",
    "judge",
    "judge_limits",
    "judge_submission",
    "judge_tests",
    "load",
    "outcome_of",
    "record",
]

log = structlog.get_logger(__name__)

#: At most this often a judging reports how many tests are done (the last one always).
PROGRESS_INTERVAL_S = 0.25


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


# --------------------------------------------------------------------- load


class JudgeTask(msgspec.Struct, frozen=True, kw_only=True):
    """Everything the judge needs of one submission, read once, detached from the database."""

    submission_id: uuid.UUID
    session_id: uuid.UUID
    language: str
    source: str
    # The question's harness for this language (None: the source runs as it is).
    template: str | None
    tests: tuple[TestCase, ...]
    limits: Limits
    comparison: str


async def load(db: AsyncSession, submission_id: uuid.UUID) -> JudgeTask | SubmissionStatus:
    """The task of judging ``submission_id``, or its status when it has already ended.

    A message delivered twice finds the submission ended and judges nothing.
    The row lock waits out a writer still finishing it; it is released with
    the caller's read transaction.
    """
    submission = await db.get(
        CodingSubmission, submission_id, with_for_update=True, populate_existing=True
    )
    if submission is None:
        raise NotFound("submission not found")
    if submission.status in ENDED:
        return submission.status
    question = await db.get(Question, submission.question_id)
    assert question is not None  # foreign key
    spec = coding_body(question.body)
    return JudgeTask(
        submission_id=submission.id,
        session_id=submission.session_id,
        language=submission.language,
        source=submission.source,
        template=spec.template.get(submission.language),
        tests=tuple(judge_tests(spec, submission.kind, submission.stdin)),
        limits=judge_limits(spec),
        comparison=spec.comparison,
    )


# --------------------------------------------------------------------- judge


class Judged(msgspec.Struct, frozen=True):
    """The program was compiled and run on every test."""

    judgement: Judgement


class Failed(msgspec.Struct, frozen=True):
    """The judging could not be done (a broken runner, a question the judge cannot use)."""

    error: str


class BatchCreated(msgspec.Struct, frozen=True):
    """Judge0 callback mode: the tests are queued on Judge0 and will call back one by one."""

    tokens: tuple[str, ...]
    # When to poll Judge0 for the callbacks that have not come by then.
    collect_after: timedelta


JudgeOutcome = Judged | Failed | BatchCreated


async def judge(
    task: JudgeTask,
    runner: CodeRunner,
    progress: Progress | None = None,
    *,
    callbacks: CallbackConfig | None = None,
) -> JudgeOutcome:
    """Compile and run the task's program on its tests; no database access.

    ``progress`` is called after each finished test. :class:`RunnerUnavailable`
    propagates: whether to retry is the caller's decision. With ``callbacks``
    and a Judge0 runner the batch is only created, with a signed callback URL
    per test.
    """
    try:
        parse_comparison(task.comparison)
        program = render_program(task.template, task.source)
        if callbacks is not None and isinstance(runner, Judge0Runner) and task.tests:
            tokens = await runner.submit_with_callbacks(
                task.language,
                program,
                task.tests,
                task.limits,
                lambda index: callbacks.url(str(task.submission_id), index),
            )
            return BatchCreated(tuple(tokens), callbacks.wait)
        judgement = await runner.judge(
            task.language, program, task.tests, task.limits, task.comparison, progress
        )
    except (RunnerError, ValueError, KeyError) as exc:
        return Failed(f"{type(exc).__name__}: {exc}")
    return Judged(judgement)


# --------------------------------------------------------------------- progress


class ProgressReport:
    """Judging's progress on the submission row, for the SSE stream to show while it runs.

    Each report commits on a short session of its own and is published after
    that commit. That is on purpose, apart from the job's transaction: the
    stream re-reads the row from PostgreSQL, so a progress held back until the
    job commits would only ever be seen at the end.
    """

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        redis: Redis | None,
        submission_id: uuid.UUID,
        *,
        template: str | None = None,
        source: str = "",
    ) -> None:
        self.sessionmaker = sessionmaker
        self.redis = redis
        self.submission_id = submission_id
        # The results so far are shown as they come, with the template's lines
        # hidden from them as from the final ones (see finish_submission).
        self.template = template
        self.source = source
        self._last = -PROGRESS_INTERVAL_S

    async def _set(self, **values: Any) -> None:
        async with self.sessionmaker() as db:
            await db.execute(
                update(CodingSubmission)
                .where(CodingSubmission.id == self.submission_id)
                .values(**values)
            )
            await db.commit()
        await publish_progress(
            self.redis,
            self.submission_id,
            status=values.get("status"),
            tests_done=values.get("tests_done"),
            tests_total=values.get("tests_total"),
        )

    async def started(self, total: int) -> None:
        await self._set(status="running", started_at=utcnow(), tests_done=0, tests_total=total)

    async def __call__(self, done: int, total: int, results: Sequence[TestResult] = ()) -> None:
        # A test can take a few milliseconds; a write and a notification for
        # each would cost more than the test and hold the next one back.
        now = time.monotonic()
        if done < total and now - self._last < PROGRESS_INTERVAL_S:
            return
        self._last = now
        if results:
            await self._set(
                tests_done=done, tests_total=total, tests=_as_rows(self._redacted(results))
            )
        else:
            await self._set(tests_done=done, tests_total=total)

    def _redacted(self, results: Sequence[TestResult]) -> list[TestResult]:
        return [
            msgspec.structs.replace(
                t, stderr=hide_template_lines(t.stderr, self.template, self.source)
            )
            for t in results
        ]

    async def requeued(self) -> None:
        """The runner was unavailable: the submission waits for the job's next attempt."""
        await self._set(status="queued")


# --------------------------------------------------------------------- record


def finish_submission(
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


def _as_rows(results: list[TestResult]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = msgspec.to_builtins(results)
    return rows


def outcome_of(submission: CodingSubmission) -> dict[str, Any]:
    """A finished submission as a job's result."""
    return {
        "submission_id": str(submission.id),
        "status": submission.status,
        "verdict": submission.verdict,
        "score": submission.score,
    }


async def _store_batch(db: AsyncSession, task: JudgeTask, batch: BatchCreated) -> None:
    """Keep the batch's Judge0 tokens and schedule the fallback poll (see ``callbacks``)."""
    # A callback may already have created its row (Judge0 can answer before we
    # commit), and a retried job brings a new batch: the token is overwritten,
    # a result that is in stays.
    statement = insert(Judge0Test).values(
        [
            {"submission_id": task.submission_id, "test_index": index, "judge0_token": token}
            for index, token in enumerate(batch.tokens)
        ]
    )
    await db.execute(
        statement.on_conflict_do_update(
            index_elements=[Judge0Test.submission_id, Judge0Test.test_index],
            set_={"judge0_token": statement.excluded.judge0_token},
        )
    )
    exam_id = await db.scalar(select(ExamSession.exam_id).where(ExamSession.id == task.session_id))
    await enqueue(
        db,
        JUDGE0_COLLECT,
        args={"submission_id": str(task.submission_id)},
        exam_id=exam_id,
        session_id=task.session_id,
        delay_ms=int(batch.collect_after.total_seconds() * 1000),
    )
    log.info(
        "judge0_callbacks_awaited",
        submission_id=str(task.submission_id),
        tests=len(batch.tokens),
        wait_s=batch.collect_after.total_seconds(),
    )


def _done(submission_id: uuid.UUID, result: dict[str, Any], job_id: uuid.UUID | None) -> Done:
    """The job's result, and the event that tells listeners the judge job ended."""
    if job_id is None:
        return Done(result)
    # The job's end, not necessarily the submission's: in Judge0 callback
    # mode the submission is still "running" until the last result arrives.
    ended = SubmissionJobEnded(id=submission_id, status=result["status"], job_id=job_id)
    return Done(result, [ended])


async def record(
    db: AsyncSession, task: JudgeTask, outcome: JudgeOutcome, *, job_id: uuid.UUID | None = None
) -> Done:
    """Write ``outcome`` on ``db`` (the caller commits) and say what to publish after the commit."""
    if isinstance(outcome, BatchCreated):
        await _store_batch(db, task, outcome)
        result = {
            "submission_id": str(task.submission_id),
            "status": "running",
            "mode": "callback",
            "tests": len(outcome.tokens),
        }
        return _done(task.submission_id, result, job_id)
    submission = await db.get(
        CodingSubmission, task.submission_id, with_for_update=True, populate_existing=True
    )
    assert submission is not None  # runs and submissions are never deleted alone
    if isinstance(outcome, Judged):
        finish_submission(submission, outcome.judgement, None, task.template)
    else:
        finish_submission(submission, None, outcome.error, task.template)
    return _done(task.submission_id, outcome_of(submission), job_id)


# --------------------------------------------------------------------- the job's work


async def judge_submission(
    db: AsyncSession,
    submission_id: uuid.UUID,
    runner: CodeRunner,
    *,
    sessionmaker: async_sessionmaker[AsyncSession],
    redis: Redis | None = None,
    final_attempt: bool = False,
    callbacks: CallbackConfig | None = None,
    job_id: uuid.UUID | None = None,
) -> Done:
    """Load, judge and record one run or submission; the writes on ``db`` are left uncommitted.

    Idempotent: a submission already ended is left alone. ``RunnerUnavailable``
    is re-raised for the job runner to retry later, the submission queued
    again, except on the final attempt, where the submission ends as
    ``error`` / ``internal_error`` instead of staying queued forever.

    With ``callbacks`` and a Judge0 runner this returns once the batch is
    created, leaving the submission ``running``: Judge0's PUTs finish it, and
    a delayed ``JUDGE0_COLLECT`` job polls whatever has not arrived after
    ``callbacks.wait``. ``job_id``, the judge job's, goes into the event that
    tells listeners the job ended.
    """
    task = await load(db, submission_id)
    # Only read so far: ending the transaction releases the row lock and the
    # connection while the program runs; the record step starts a new one.
    await db.rollback()
    if isinstance(task, str):
        return _done(submission_id, {"submission_id": str(submission_id), "status": task}, job_id)
    progress = ProgressReport(
        sessionmaker, redis, submission_id, template=task.template, source=task.source
    )
    await progress.started(len(task.tests))
    try:
        outcome = await judge(task, runner, progress, callbacks=callbacks)
    except RunnerUnavailable as exc:
        if not final_attempt:
            await progress.requeued()
            raise
        outcome = Failed(f"the code runner stayed unavailable: {exc}")
    return await record(db, task, outcome, job_id=job_id)
