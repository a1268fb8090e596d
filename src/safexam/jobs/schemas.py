"""Wire shapes of jobs: the status a requester, educator or operator reads."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import msgspec

__all__ = ["JobAccepted", "JobOut", "Progress"]


class Progress(msgspec.Struct):
    done: int
    total: int
    failed: int


class JobOut(msgspec.Struct):
    id: uuid.UUID
    kind: str
    status: str
    progress: Progress
    error: str | None
    result: dict[str, Any] | None
    attempts: int
    max_attempts: int
    exam_id: uuid.UUID | None
    session_id: uuid.UUID | None
    created_at: datetime
    queued_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None


class JobAccepted(msgspec.Struct):
    job_id: uuid.UUID
    status: str = "pending"
