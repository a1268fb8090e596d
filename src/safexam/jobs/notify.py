"""The live events of jobs: a job's status (and progress) changed.

SSE clients of ``/api/v1/jobs/{id}/events`` are sent the job as its viewer
may see it (``JobOut``, re-read on each event); these payloads only wake them.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import ClassVar, Literal

import msgspec
from redis.asyncio import Redis

from safexam.core.events import LiveEvent, notify
from safexam.jobs.models import JobStatus

__all__ = ["JobChanged", "JobProgress", "progress_publisher"]


class JobProgress(msgspec.Struct):
    done: int
    total: int


class JobChanged(LiveEvent, kw_only=True, omit_defaults=True):
    """The job's status changed (``error``: why an attempt failed), or it made progress.

    ``lost``: an attempt failed after another worker had taken the job over.
    """

    topic: ClassVar[str] = "job"
    status: Literal[JobStatus, "lost"]
    error: str | None = None
    progress: JobProgress | None = None


def progress_publisher(
    redis: Redis | None, job_id: uuid.UUID
) -> Callable[[int, int], Awaitable[None]]:
    """A callback for work that reports progress once it has committed it."""

    async def publish_progress(done: int, total: int) -> None:
        await notify(
            redis,
            JobChanged(id=job_id, status="running", progress=JobProgress(done=done, total=total)),
        )

    return publish_progress
