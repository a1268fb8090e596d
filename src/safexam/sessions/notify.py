"""The live events of exam sessions themselves (grading's are in ``grading/notify.py``).

Three channels: a session's own (its student's page and whoever watches that
session), the exam's (every student taking it: announcements, an extension
for everyone) and the exam's monitor (:class:`MonitorDelta`, one small message
per change of one student, read by the educator's live monitor).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import ClassVar, Literal

from redis.asyncio import Redis

from safexam.core.events import LiveEvent, monitor_channel, publish
from safexam.sessions.schemas import SessionOut

__all__ = [
    "DeltaKind",
    "ExamBroadcast",
    "MonitorDelta",
    "SessionChanged",
    "SessionExpired",
    "publish_delta",
    "started_delta",
]


class SessionExpired(LiveEvent, kw_only=True):
    """The deadline passed and the session was submitted for the student."""

    topic: ClassVar[str] = "session"
    status: Literal["expired"] = "expired"


class SessionChanged(LiveEvent, kw_only=True):
    """The exam's educator changed the session: its deadline, or ended it."""

    topic: ClassVar[str] = "session"
    change: Literal["extended", "force_submitted"]


class ExamBroadcast(LiveEvent, kw_only=True):
    """Something for every student of the exam (``id``: the exam's id)."""

    topic: ClassVar[str] = "exam"
    change: Literal["announcement", "extended"]


DeltaKind = Literal[
    "save", "event", "start", "submit", "expire", "extend", "online", "offline", "refresh"
]


class MonitorDelta(LiveEvent, kw_only=True, omit_defaults=True):
    """One change of one student, for the exam's monitor (``id``: the exam's id).

    Small and free of anything secret (no answers): the monitor relays the
    message as published, so its stream does no database work per save.
    ``refresh`` means "re-read the whole roster" (a change to many students).
    """

    topic: ClassVar[str] = "monitor"
    kind: DeltaKind
    session: uuid.UUID | None = None
    user: uuid.UUID | None = None
    at: datetime | None = None
    # save: the question, the client's sequence number, and whether it is the
    # first saved answer to that question (the answered count grows).
    question: uuid.UUID | None = None
    seq: int | None = None
    first: bool = False
    # event: integrity events by kind in the batch; the last connectivity one.
    events: dict[str, int] | None = None
    connectivity: str | None = None
    # start, extend: the deadline; start, submit, expire: the status.
    deadline_at: datetime | None = None
    status: str | None = None
    started_at: datetime | None = None
    question_count: int | None = None
    # online, offline: how many of the student's exam pages are connected.
    pages: int | None = None


async def publish_delta(redis: Redis | None, delta: MonitorDelta) -> None:
    """Publish one delta on its exam's monitor channel (after the change committed)."""
    if redis is None:
        return
    await publish(redis, monitor_channel(delta.id), delta)


def started_delta(view: SessionOut, user_id: uuid.UUID) -> MonitorDelta:
    """The monitor's delta for a session just started."""
    return MonitorDelta(
        id=view.exam_id,
        kind="start",
        session=view.id,
        user=user_id,
        at=view.started_at,
        started_at=view.started_at,
        deadline_at=view.deadline_at,
        status="active",
        question_count=len(view.questions),
    )
