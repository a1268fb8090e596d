"""Judge0 callback mode: the results Judge0 PUTs to us, and the poll for those that never came.

One judge0_tests row per test, keyed like the signed callback token by
(submission, test index). The judge job writes the Judge0 tokens (see
:mod:`safexam.coding.judging`); the callback endpoint and the fallback poll
write results, first one wins. Whoever fills the last row finishes the
submission, under the submission's row lock taken FOR NO KEY UPDATE: that
serialises the finishers without blocking the judge job's inserts, whose
foreign-key check only needs a KEY SHARE lock.
"""

from __future__ import annotations

import uuid
from typing import Any

import msgspec
import structlog
from redis.asyncio import Redis
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from safexam.coding.execution import RunnerError, RunnerUnavailable, TestCase, TestResult
from safexam.coding.judge0 import (
    InvalidCallback,
    Judge0Result,
    Judge0Runner,
    clean_compile_output,
    fold_judgement,
    test_result_from_judge0,
    verify_callback_token,
)
from safexam.coding.judging import (
    coding_body,
    finish_submission,
    judge_limits,
    judge_tests,
    outcome_of,
)
from safexam.coding.languages import get_language
from safexam.coding.models import ENDED, CodingSubmission, Judge0Test, Judge0Via
from safexam.coding.notify import SubmissionChanged, publish_submission
from safexam.core.db import utcnow
from safexam.core.errors import NotFound
from safexam.exams.kinds import CodingBody
from safexam.exams.models import Question
from safexam.jobs.runner import Done

__all__ = ["StaleCallback", "collect_judge0_results", "record_judge0_callback"]

log = structlog.get_logger(__name__)


class StaleCallback(Exception):
    """A signed callback for a Judge0 submission we no longer wait for (an earlier batch)."""


async def _lock_for_results(db: AsyncSession, submission_id: uuid.UUID) -> CodingSubmission | None:
    submission: CodingSubmission | None = await db.get(
        CodingSubmission,
        submission_id,
        with_for_update={"key_share": True},
        populate_existing=True,
    )
    return submission


async def _judged_on(
    db: AsyncSession, submission: CodingSubmission
) -> tuple[CodingBody, list[TestCase]]:
    question = await db.get(Question, submission.question_id)
    assert question is not None  # foreign key
    spec = coding_body(question.body)
    return spec, judge_tests(spec, submission.kind, submission.stdin)


async def _store_result(
    db: AsyncSession,
    submission_id: uuid.UUID,
    index: int,
    test_result: TestResult,
    compile_output: str | None,
    via: Judge0Via,
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
    finish_submission(
        submission,
        fold_judgement(results, [row.compile_output for row in rows], tests),
        None,
        spec.template.get(submission.language),
    )


# --------------------------------------------------------------------- Judge0's PUTs


async def record_judge0_callback(
    db: AsyncSession,
    redis: Redis | None,
    secret_key: str,
    token: str,
    result: Judge0Result,
) -> bool:
    """Store one test's result that Judge0 PUT to us; finish the submission with the last one.

    The token must be one we signed and still valid (:class:`InvalidCallback`
    otherwise, before anything is read or written). Idempotent: a repeated or
    replayed delivery finds its test's result already in (the first one
    wins) or the submission finished, and changes nothing. Commits, then tells
    the submission's listeners; True when this callback changed the submission.
    """
    submission_key, index = verify_callback_token(secret_key, token)
    try:
        submission_id = uuid.UUID(submission_key)
    except ValueError:
        raise InvalidCallback("malformed submission id") from None
    submission = await _lock_for_results(db, submission_id)
    if submission is None:
        raise NotFound("submission not found")
    if submission.status in ENDED:
        return False
    spec, tests = await _judged_on(db, submission)
    if index >= len(tests):
        raise InvalidCallback("callback for a test that does not exist")
    row = await db.get(Judge0Test, (submission_id, index), populate_existing=True)
    if row is not None and row.result is not None:
        return False
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
        return False
    await _complete_if_all_in(db, submission, spec, tests)
    await db.commit()
    log.info(
        "judge0_callback_recorded",
        submission_id=str(submission_id),
        test_index=index,
        status=submission.status,
    )
    await publish_submission(redis, submission)
    return True


# --------------------------------------------------------------------- the fallback poll


async def _poll(
    runner: Judge0Runner | None, tokens: list[str], *, final_attempt: bool
) -> tuple[dict[str, Judge0Result], str | None]:
    """Judge0's answers for ``tokens`` (no database access), or why there are none."""
    try:
        if runner is None:
            raise RunnerError("Judge0 is no longer the configured code runner")
        return (await runner.collect(tokens) if tokens else {}), None
    except RunnerUnavailable as exc:
        if not final_attempt:
            raise
        return {}, f"Judge0 stayed unavailable: {exc}"
    except RunnerError as exc:
        return {}, f"{type(exc).__name__}: {exc}"


async def collect_judge0_results(
    db: AsyncSession,
    submission_id: uuid.UUID,
    runner: Judge0Runner | None,
    *,
    final_attempt: bool = False,
) -> Done:
    """The fallback of callback mode: poll the tests whose callback never came; caller commits.

    Runs ``callbacks.wait`` after the batch was created. Judge0 sends each
    callback once (retrying only on connection errors), so a PUT that met a
    restart, a 5xx or a proxy in the way is never sent again; Judge0 keeps the
    result, so polling its token still gets it. Without this a submission
    would stay ``running`` for good. A submission already finished is left
    alone; ``RunnerUnavailable`` propagates for a retry, and on the final
    attempt the submission ends as ``error`` instead. ``runner`` is None when
    Judge0 is no longer the configured runner: nothing can be polled, so the
    submission ends as ``error`` rather than waiting for good. The events
    carry the submission as it stands once the job's writes commit.
    """
    submission = await db.get(CodingSubmission, submission_id, populate_existing=True)
    if submission is None:
        return Done({"submission_id": str(submission_id), "polled": 0})
    if submission.status in ENDED:
        return Done(
            {"submission_id": str(submission_id), "polled": 0}, [SubmissionChanged.of(submission)]
        )
    pending = (
        await db.execute(
            select(Judge0Test.test_index, Judge0Test.judge0_token)
            .where(Judge0Test.submission_id == submission_id, Judge0Test.result.is_(None))
            .order_by(Judge0Test.test_index)
        )
    ).all()
    # Only read so far: no transaction stays open while Judge0 is polled
    # (seconds to minutes); the results are written in a new one.
    await db.rollback()
    missing = [(row.test_index, row.judge0_token) for row in pending if row.judge0_token]
    log.info("judge0_callbacks_missing", submission_id=str(submission_id), missing=len(missing))
    finished, error = await _poll(
        runner, [token for _, token in missing], final_attempt=final_attempt
    )
    submission = await _lock_for_results(db, submission_id)
    if submission is None:
        return Done({"submission_id": str(submission_id), "polled": len(finished)})
    if submission.status in ENDED:
        return Done(
            {"submission_id": str(submission_id), "polled": len(finished)},
            [SubmissionChanged.of(submission)],
        )
    if error is not None:
        finish_submission(submission, None, error)
        return Done(outcome_of(submission), [SubmissionChanged.of(submission)])
    spec, tests = await _judged_on(db, submission)
    language = get_language(submission.language)
    for index, token in missing:
        if index < len(tests) and token in finished:
            answer = finished[token]
            test_result = test_result_from_judge0(
                tests[index], answer, judge_limits(spec), spec.comparison, language
            )
            await _store_result(
                db, submission_id, index, test_result, answer.compile_output, "poll"
            )
    await _complete_if_all_in(db, submission, spec, tests)
    if submission.status not in ENDED:
        # Rows without a token or a result: nothing left to poll, so end rather than hang.
        finish_submission(submission, None, "Judge0 results missing for some tests after polling")
    result: dict[str, Any] = {**outcome_of(submission), "polled": len(finished)}
    return Done(result, [SubmissionChanged.of(submission)])
