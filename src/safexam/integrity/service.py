"""The integrity log: browser events a student's page reports, plus what the server notices.

The log is append-only: rows are inserted in bulk and never updated or
deleted by the application. The server stamps its own time on every row
(``server_at``) next to the client's claimed time, because a client clock is
evidence of nothing.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import msgspec
import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from safexam.auth.guards import Principal, ensure_owner
from safexam.core.errors import Conflict, NotFound, RateLimited, Unprocessable
from safexam.exams.models import Exam
from safexam.integrity.models import ActivityLog
from safexam.integrity.schemas import ActivityEvent, ActivityOut, ClientEvent
from safexam.sessions.models import ExamSession
from safexam.sessions.notify import MonitorDelta, publish_delta

__all__ = ["IP_CHANGED", "activity_of_session", "flag_kinds_of", "note_client", "record_events"]

log = structlog.get_logger(__name__)

IP_CHANGED = "ip_changed"
MAX_DETAILS_BYTES = 2_048
MAX_PAGE = 5_000
# What one exam page may log per minute. An honest page sends a few events a
# minute (a resize storm or a flapping network, some dozens); a script that
# floods the log would otherwise fill the table that educators read. Past the
# cap a batch is refused whole (429) and waits on the device, so the first
# events of a burst are stored as they come and the latest are sent once the
# minute is over; nothing is half-stored, and a retry never stores twice.
EVENTS_PER_MINUTE = 300
EVENT_BYTES_PER_MINUTE = 256 * 1024
WINDOW_SECONDS = 60


def flag_kinds_of(integrity: dict[str, Any] | None) -> list[str]:
    """The event kinds the exam's author wants flagged (``integrity.flag_kinds``)."""
    kinds = (integrity or {}).get("flag_kinds") or []
    return [str(k) for k in kinds] if isinstance(kinds, list) else []


async def note_client(
    db: AsyncSession,
    *,
    session_id: uuid.UUID,
    start_ip: str | None,
    start_user_agent: str | None,
    ip: str | None,
    user_agent: str | None,
) -> bool:
    """Record ``ip_changed`` when a request comes from another address or browser.

    The common case (same address and agent as at start) costs no query. A
    change is recorded once, not on every later request from the new place:
    only when it differs from the last change recorded. Returns True if an
    event was written (in the caller's transaction).
    """
    if (ip, user_agent) == (start_ip, start_user_agent):
        return False
    last = (
        await db.execute(
            select(ActivityLog.details)
            .where(ActivityLog.session_id == session_id, ActivityLog.kind == IP_CHANGED)
            .order_by(ActivityLog.id.desc())
            .limit(1)
        )
    ).scalar_one_or_none()
    if last is not None and (last.get("ip"), last.get("user_agent")) == (ip, user_agent):
        return False
    previous_ip = last.get("ip") if last is not None else start_ip
    previous_agent = last.get("user_agent") if last is not None else start_user_agent
    await db.execute(
        insert(ActivityLog).values(
            session_id=session_id,
            kind=IP_CHANGED,
            details={
                "ip": ip,
                "user_agent": user_agent,
                "previous_ip": previous_ip,
                "previous_user_agent": previous_agent,
                "start_ip": start_ip,
                "start_user_agent": start_user_agent,
            },
        )
    )
    log.info("integrity_ip_changed", session_id=str(session_id))
    return True


async def record_events(
    db: AsyncSession,
    session_id: uuid.UUID,
    principal: Principal,
    events: list[ClientEvent],
    *,
    ip: str | None,
    user_agent: str | None,
    grace_seconds: int,
    redis: Redis | None = None,
    namespace: str = "safexam",
) -> int:
    """Append a batch of the student's browser events to their session's log and commit.

    With ``redis``, the batch is counted against the session's minute (refused
    past :data:`EVENTS_PER_MINUTE` or :data:`EVENT_BYTES_PER_MINUTE`) and its
    counts by kind are told to the exam's live monitor.

    Accepted while the session runs and for ``grace_seconds`` after it ended,
    so the last batch a page flushes while submitting is not lost.
    """
    size = 0
    for index, event in enumerate(events):
        encoded = len(msgspec.json.encode(event.details))
        if encoded > MAX_DETAILS_BYTES:
            raise Unprocessable(
                f"details must encode to at most {MAX_DETAILS_BYTES} bytes",
                field=f"events[{index}].details",
            )
        size += encoded + len(event.kind)
    row = (
        await db.execute(
            select(
                ExamSession.exam_id,
                ExamSession.status,
                ExamSession.deadline_at,
                ExamSession.submitted_at,
                ExamSession.ip_address,
                ExamSession.user_agent,
                func.now().label("now"),
            ).where(ExamSession.id == session_id, ExamSession.user_id == principal.id)
        )
    ).first()
    if row is None:
        raise NotFound("session not found")
    ended = row.deadline_at if row.status == "active" else (row.submitted_at or row.deadline_at)
    if row.now > ended + timedelta(seconds=grace_seconds):
        raise Conflict("This session has ended", code="session_closed")
    if redis is not None:
        await _within_the_minute(redis, namespace, session_id, count=len(events), size=size)
    await note_client(
        db,
        session_id=session_id,
        start_ip=row.ip_address,
        start_user_agent=row.user_agent,
        ip=ip,
        user_agent=user_agent,
    )
    await db.execute(
        insert(ActivityLog),
        [
            {
                "session_id": session_id,
                "kind": event.kind,
                "client_at": event.at,
                "details": event.details,
            }
            for event in events
        ],
    )
    await db.commit()
    counts: dict[str, int] = {}
    connectivity = None
    for event in events:
        counts[event.kind] = counts.get(event.kind, 0) + 1
        if event.kind in ("offline", "online"):
            connectivity = event.kind
    await publish_delta(
        redis,
        MonitorDelta(
            id=row.exam_id,
            kind="event",
            session=session_id,
            at=row.now,
            events=counts,
            connectivity=connectivity,
        ),
    )
    return len(events)


async def _within_the_minute(
    redis: Redis, namespace: str, session_id: uuid.UUID, *, count: int, size: int
) -> None:
    """Count the batch against the session's minute, or refuse it whole (429, with the wait).

    A refused batch is taken back off the counters, so the events it carried
    are counted once, when the page sends them again. ``SET NX EX`` then
    ``INCRBY`` (which keeps the expiry), as the sign-in limits do: the
    embedded Redis of ``make run`` has no ``EXPIRE NX``.
    """
    events_key = f"{namespace}:integrity:{session_id}:events"
    bytes_key = f"{namespace}:integrity:{session_id}:bytes"
    try:
        async with redis.pipeline(transaction=True) as pipe:
            pipe.set(events_key, 0, ex=WINDOW_SECONDS, nx=True)
            pipe.set(bytes_key, 0, ex=WINDOW_SECONDS, nx=True)
            pipe.incrby(events_key, count)
            pipe.incrby(bytes_key, size)
            pipe.ttl(events_key)
            *_, events, stored, ttl = await pipe.execute()
        if events <= EVENTS_PER_MINUTE and stored <= EVENT_BYTES_PER_MINUTE:
            return
        async with redis.pipeline(transaction=True) as pipe:
            pipe.decrby(events_key, count)
            pipe.decrby(bytes_key, size)
            await pipe.execute()
    except (RedisError, OSError) as exc:
        # The log is evidence: without Redis to count with, keep the events.
        log.warning("integrity_cap_unavailable", error=f"{type(exc).__name__}: {exc}"[:200])
        return
    raise RateLimited(
        "This page sent more integrity events in a minute than an exam needs; "
        "the rest wait on the device and are sent after the pause",
        retry_after=int(ttl) if int(ttl) > 0 else WINDOW_SECONDS,
    )


async def activity_of_session(
    db: AsyncSession,
    session_id: uuid.UUID,
    principal: Principal,
    *,
    after_id: int = 0,
    limit: int = 1_000,
) -> ActivityOut:
    """A session's log in the order it was written, with per-kind counts, for the exam's owner.

    Ordered by the row id (the append order), which is also what ``after_id``
    pages on, so a page boundary never skips or repeats an event.
    """
    row = (
        await db.execute(
            select(ExamSession, Exam.owner_id, Exam.integrity, Exam.organization_id)
            .join(Exam, Exam.id == ExamSession.exam_id)
            .where(ExamSession.id == session_id)
        )
    ).first()
    if row is None:
        raise NotFound("session not found")
    session, owner_id, integrity, organization_id = row
    ensure_owner(owner_id, principal, "session", organization_id=organization_id)
    flagged = set(flag_kinds_of(integrity))
    limit = max(1, min(limit, MAX_PAGE))
    counts = {
        kind: int(n)
        for kind, n in (
            await db.execute(
                select(ActivityLog.kind, func.count())
                .where(ActivityLog.session_id == session_id)
                .group_by(ActivityLog.kind)
                .order_by(ActivityLog.kind)
            )
        ).all()
    }
    rows = (
        await db.execute(
            select(ActivityLog)
            .where(ActivityLog.session_id == session_id, ActivityLog.id > after_id)
            .order_by(ActivityLog.id)
            .limit(limit + 1)
        )
    ).scalars()
    events = [
        ActivityEvent(
            id=e.id,
            kind=e.kind,
            client_at=e.client_at,
            server_at=e.server_at,
            details=e.details,
            flagged=e.kind in flagged,
        )
        for e in rows
    ]
    more = len(events) > limit
    events = events[:limit]
    return ActivityOut(
        session_id=session.id,
        exam_id=session.exam_id,
        user_id=session.user_id,
        ip_address=session.ip_address,
        user_agent=session.user_agent,
        flag_kinds=sorted(flagged),
        counts=counts,
        flagged_total=sum(n for kind, n in counts.items() if kind in flagged),
        events=events,
        next_after_id=events[-1].id if more and events else None,
    )
