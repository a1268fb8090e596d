"""Grading's live events, all on the graded session's channel, and that channel's state.

SSE clients of ``/api/v1/sessions/{id}/events`` are sent :class:`SessionState`
(re-read from the database on each event, see ``grading/live.py``); the events
only wake them.
"""

from __future__ import annotations

import uuid
from typing import ClassVar, Literal

import msgspec
from redis.asyncio import Redis

from safexam.core.events import LiveEvent, notify
from safexam.grading.schemas import SessionResultOut
from safexam.sessions.models import Response
from safexam.sessions.monitor import AnnouncementOut

__all__ = [
    "ScoreOverridden",
    "SessionGraded",
    "SessionRegraded",
    "SessionState",
    "publish_override",
]


class SessionState(msgspec.Struct):
    """What the session's SSE stream sends: its status and, when visible, its result."""

    id: uuid.UUID
    status: str
    # Python's isoformat text ("+00:00"), as this stream has always sent it.
    submitted_at: str | None
    graded_at: str | None
    result: SessionResultOut | None
    # The deadline (an extension moves it: the page's timer re-syncs), the exam,
    # and its announcements, oldest first (the page shows those it lacks).
    deadline_at: str | None = None
    exam_id: uuid.UUID | None = None
    announcements: list[AnnouncementOut] = []


class SessionGraded(LiveEvent, kw_only=True):
    topic: ClassVar[str] = "session"
    status: Literal["graded"] = "graded"
    job_id: uuid.UUID


class SessionRegraded(LiveEvent, kw_only=True):
    topic: ClassVar[str] = "session"
    regraded: bool = True


class ScoreOverridden(LiveEvent, kw_only=True):
    """An educator set the score of one response (``override``: the response's id)."""

    topic: ClassVar[str] = "session"
    override: uuid.UUID


async def publish_override(redis: Redis | None, response: Response) -> None:
    """Tell the session's listeners a score was overridden (call after the commit)."""
    await notify(redis, ScoreOverridden(id=response.session_id, override=response.id))
