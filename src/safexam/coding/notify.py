"""The live events of code submissions, and where they are published.

SSE clients of ``/api/v1/submissions/{id}/events`` are sent the submission as
its viewer may see it (``SubmissionOut``, re-read on each event); these
payloads wake them and carry enough to redraw a progress bar.
"""

from __future__ import annotations

import uuid
from typing import ClassVar

from redis.asyncio import Redis

from safexam.coding.execution import Verdict
from safexam.coding.models import CodingSubmission, SubmissionStatus
from safexam.core.events import LiveEvent, notify

__all__ = [
    "SubmissionChanged",
    "SubmissionJobEnded",
    "SubmissionProgress",
    "publish_progress",
    "publish_submission",
]


class SubmissionChanged(LiveEvent, kw_only=True):
    """The submission as it now stands (a callback or the fallback poll recorded results)."""

    topic: ClassVar[str] = "submission"
    status: SubmissionStatus
    verdict: Verdict | None
    score: float | None
    tests_done: int
    tests_total: int

    @classmethod
    def of(cls, submission: CodingSubmission) -> SubmissionChanged:
        return cls(
            id=submission.id,
            status=submission.status,
            verdict=submission.verdict,
            score=submission.score,
            tests_done=submission.tests_done,
            tests_total=submission.tests_total,
        )


class SubmissionProgress(LiveEvent, kw_only=True, omit_defaults=True):
    """Judging moved on: its status (running, or queued again), or tests done of total."""

    topic: ClassVar[str] = "submission"
    status: SubmissionStatus | None = None
    tests_done: int | None = None
    tests_total: int | None = None


class SubmissionJobEnded(LiveEvent, kw_only=True):
    """The judge job ended; in Judge0 callback mode the submission may still be running."""

    topic: ClassVar[str] = "submission"
    status: SubmissionStatus
    job_id: uuid.UUID


async def publish_submission(redis: Redis | None, submission: CodingSubmission) -> None:
    """Tell SSE listeners the submission changed (call after the change is committed)."""
    await notify(redis, SubmissionChanged.of(submission))


async def publish_progress(
    redis: Redis | None,
    submission_id: uuid.UUID,
    *,
    status: SubmissionStatus | None = None,
    tests_done: int | None = None,
    tests_total: int | None = None,
) -> None:
    """Tell SSE listeners how judging goes (call after the progress is committed)."""
    await notify(
        redis,
        SubmissionProgress(
            id=submission_id, status=status, tests_done=tests_done, tests_total=tests_total
        ),
    )
