"""Every kind of async work, declared once.

A :class:`JobKind` says what ``enqueue`` writes on the job row (its kind,
queue, actor and attempts), and :func:`job_actor` registers the worker's
coroutine under the same queue and actor name, so the row, the message the
outbox sends for it and the actor that receives it cannot disagree. The
outbox and its sweep send each message to the queue and actor on the row.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import dramatiq

from safexam.core.broker import MAX_REDELIVERIES

__all__ = [
    "AUTOSUBMIT",
    "GENERATE_QUESTIONS",
    "GRADE_SESSION",
    "JOB_KINDS",
    "JUDGE",
    "JUDGE0_COLLECT",
    "REGRADE",
    "SIMILARITY",
    "TRY_CODING",
    "JobKind",
    "job_actor",
]


@dataclass(frozen=True)
class JobKind:
    #: The job row's ``kind``, as operators and the metrics see it.
    name: str
    #: The Dramatiq queue, which is also the worker pool that runs it.
    queue: str
    #: The actor that does the work.
    actor: str
    #: Attempts the ledger allows before an infrastructure fault makes the job ``dead``.
    max_attempts: int = 5
    #: Dramatiq's limit on one attempt (None: Dramatiq's default, 10 minutes).
    time_limit_ms: int | None = None


GRADE_SESSION = JobKind("grade_session", queue="grading", actor="grade_session")
AUTOSUBMIT = JobKind("autosubmit", queue="maintenance", actor="autosubmit_session")
# One active regrade per exam: a unique index on the job rows refuses a second.
REGRADE = JobKind("regrade", queue="regrade", actor="regrade_exam", time_limit_ms=30 * 60 * 1000)
# Code similarity of one coding question across an exam's cohort: bulk CPU
# work, so it runs in the regrade pool, away from the judge and the sweeps.
SIMILARITY = JobKind(
    "similarity",
    queue="regrade",
    actor="compare_programs",
    max_attempts=3,
    time_limit_ms=15 * 60 * 1000,
)
JUDGE = JobKind("judge", queue="judge", actor="judge_submission")
# Judge0 callback mode's fallback poll of a batch whose callbacks did not all arrive.
JUDGE0_COLLECT = JobKind("judge0_collect", queue="judge", actor="collect_judge0_results")
# An author's reference solution against every test of a coding question: a
# student's session has no part in it, so it is a job, not a submission.
TRY_CODING = JobKind("try_coding", queue="judge", actor="try_coding", max_attempts=3)
GENERATE_QUESTIONS = JobKind(
    "qie",
    queue="qie",
    actor="generate_questions",
    max_attempts=3,
    time_limit_ms=15 * 60 * 1000,
)

JOB_KINDS: dict[str, JobKind] = {
    kind.name: kind
    for kind in (
        GRADE_SESSION,
        AUTOSUBMIT,
        REGRADE,
        SIMILARITY,
        JUDGE,
        JUDGE0_COLLECT,
        TRY_CODING,
        GENERATE_QUESTIONS,
    )
}

ActorFn = Callable[..., Awaitable[None]]


def job_actor(kind: JobKind) -> Callable[[ActorFn], Any]:
    """Register the decorated coroutine as ``kind``'s Dramatiq actor."""
    options: dict[str, Any] = {
        "queue_name": kind.queue,
        "actor_name": kind.actor,
        "max_retries": MAX_REDELIVERIES,
    }
    if kind.time_limit_ms is not None:
        options["time_limit"] = kind.time_limit_ms
    decorator: Callable[[ActorFn], Any] = dramatiq.actor(**options)
    return decorator
