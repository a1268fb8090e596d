"""An author's trial of a coding question: a reference solution against every test.

A trial belongs to no student session, so it is no submission: it is a job of
its own kind (``try_coding``) on the judge queue, run by the same worker pool
and runner as the students' code, whose result (the verdict of each test,
hidden ones included: the author wrote them) is kept on the job row. Only the
question's owner (or an admin) starts or reads one.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec
import structlog
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from safexam.auth.guards import Principal
from safexam.coding.compare import render_program
from safexam.coding.execution import CodeRunner, Verdict
from safexam.coding.judging import coding_body, judge_limits, judge_tests
from safexam.coding.schemas import MAX_SOURCE_CHARS
from safexam.core.errors import Conflict, NotFound, Unprocessable
from safexam.exams.models import Question
from safexam.jobs.kinds import TRY_CODING
from safexam.jobs.models import Job
from safexam.jobs.service import enqueue

__all__ = [
    "TrialCreate",
    "TrialOut",
    "TrialTestOut",
    "get_trial",
    "run_trial",
    "start_trial",
]

log = structlog.get_logger(__name__)

TrialStatus = Literal["queued", "running", "done", "error"]
_STATUS: dict[str, TrialStatus] = {
    "pending": "queued",
    "queued": "queued",
    "running": "running",
    "succeeded": "done",
    "failed": "error",
    "dead": "error",
}


class TrialCreate(msgspec.Struct, forbid_unknown_fields=True):
    language: Annotated[str, msgspec.Meta(min_length=1, max_length=32)]
    source: Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_SOURCE_CHARS)]


class TrialTestOut(msgspec.Struct, kw_only=True):
    name: str
    hidden: bool
    verdict: Verdict
    time_ms: int
    points: float
    max_points: float
    stdout: str
    stderr: str


class TrialOut(msgspec.Struct, kw_only=True):
    """A trial as its author sees it: every test, hidden ones too."""

    id: uuid.UUID
    question_id: uuid.UUID
    language: str
    status: TrialStatus
    verdict: Verdict | None = None
    score: float | None = None
    max_score: float | None = None
    compile_output: str | None = None
    tests: list[TrialTestOut] = []
    error: str | None = None
    created_at: datetime


def _out(job: Job) -> TrialOut:
    result = job.result or {}
    status = _STATUS.get(job.status, "queued")
    if status == "done" and result.get("error"):
        status = "error"
    return TrialOut(
        id=job.id,
        question_id=uuid.UUID(str(job.args["question_id"])),
        language=str(job.args.get("language", "")),
        status=status,
        verdict=result.get("verdict"),
        score=result.get("score"),
        max_score=result.get("max_score"),
        compile_output=result.get("compile_output"),
        tests=msgspec.convert(result.get("tests") or [], list[TrialTestOut]),
        error=result.get("error") or (job.error if status == "error" else None),
        created_at=job.created_at,
    )


async def _in_flight(db: AsyncSession, question: Question, principal: Principal) -> bool:
    found = await db.execute(
        select(Job.id)
        .where(
            Job.kind == TRY_CODING.name,
            Job.requested_by == principal.id,
            Job.status.in_(("pending", "queued", "running")),
            Job.args["question_id"].astext == str(question.id),
        )
        .limit(1)
    )
    return found.first() is not None


async def start_trial(
    db: AsyncSession, question: Question, principal: Principal, data: TrialCreate
) -> TrialOut:
    """Queue a trial of ``data`` against every test of the (owned) coding question; commits.

    One trial per author and question at a time: a second while the first is
    still queued or running is a 409, so an impatient author cannot fill the
    judge queue the students need.
    """
    if question.kind != "coding":
        raise Unprocessable("only coding questions can be tried", field="question_id")
    languages = list(question.body.get("languages") or [])
    if data.language not in languages:
        raise Unprocessable(
            f"language {data.language} is not allowed for this question "
            f"(it allows {', '.join(languages)})",
            field="language",
        )
    if await _in_flight(db, question, principal):
        raise Conflict(
            "a trial of this question is still running; wait for its verdicts",
            code="trial_in_progress",
        )
    job = await enqueue(
        db,
        TRY_CODING,
        args={"question_id": str(question.id), "language": data.language, "source": data.source},
        requested_by=principal.id,
    )
    await db.commit()
    await db.refresh(job)
    log.info("coding_trial_queued", question_id=str(question.id), job_id=str(job.id))
    return _out(job)


async def get_trial(
    db: AsyncSession, question: Question, job_id: uuid.UUID, principal: Principal
) -> TrialOut:
    """A trial of the (owned) question; someone else's, or another question's, is a 404."""
    job = await db.get(Job, job_id, populate_existing=True)
    if (
        job is None
        or job.kind != TRY_CODING.name
        or job.args.get("question_id") != str(question.id)
        or (job.requested_by != principal.id and not principal.is_admin)
    ):
        raise NotFound("trial not found")
    return _out(job)


async def run_trial(
    db: AsyncSession, question_id: uuid.UUID, language: str, source: str, runner: CodeRunner
) -> dict[str, Any]:
    """Judge ``source`` against every test of the question as it stands now (the worker's part).

    A question that is gone or no longer allows the language is recorded as
    the trial's error rather than retried: no attempt would fare better.
    """
    question = await db.get(Question, question_id)
    if question is None or question.kind != "coding":
        return {"error": "The question is gone."}
    spec = coding_body(question.body)
    if language not in spec.languages:
        return {"error": f"The question no longer allows {language}."}
    try:
        program = render_program(spec.template.get(language), source)
    except ValueError as exc:
        return {"error": str(exc)}
    judgement = await runner.judge(
        language,
        program,
        judge_tests(spec, "submit", None),
        judge_limits(spec),
        spec.comparison,
    )
    return {
        "verdict": judgement.verdict,
        "score": judgement.score,
        "max_score": judgement.max_score,
        "compile_output": judgement.compile_output,
        "executor": judgement.executor,
        "tests": [
            {
                "name": t.name,
                "hidden": t.hidden,
                "verdict": t.verdict,
                "time_ms": t.time_ms,
                "points": t.points,
                "max_points": t.max_points,
                "stdout": t.stdout,
                "stderr": t.stderr,
            }
            for t in judgement.tests
        ],
    }
