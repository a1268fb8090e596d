"""The live exam monitor: every enrolled student's state, and the educator's actions.

The roster is read from PostgreSQL when a monitor connects (and again after a
reconnect or a change to many students); after that the monitor only relays
the small deltas published on the exam's monitor channel
(:class:`~safexam.sessions.notify.MonitorDelta`) as they were published, so a
save costs the monitor's stream no database work and no decoding. States that
change with time alone (idle, time left) are derived by the viewer from the
moments the roster and the deltas carry, against the server's clock.

Offline has two sources: the integrity log's last connectivity event (the
page reports ``offline`` when it comes back, so that one is late), and the
student's exam page's own event stream, which doubles as a heartbeat: a
counter per student in Redis goes up when a page connects and down when it
goes away (:func:`page_connected`). A student whose page never connected
(answers sent by another client) is not called offline.

The actions (extend time, force-submit, announce) each write one audit row in
their own transaction and then reach the student's page over the session's
channel (one student) or the exam's channel (everyone).
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncGenerator, Awaitable, Callable
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

import msgspec
import structlog
from litestar.channels import ChannelsPlugin
from litestar.response import ServerSentEventMessage
from redis.asyncio import Redis
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from safexam.auth.guards import Principal
from safexam.auth.models import User
from safexam.core.audit import AuditEvent, audit_events, record_audit
from safexam.core.errors import Conflict, NotFound, unavailable_dependency
from safexam.core.events import (
    HEARTBEAT_SECONDS,
    RECONNECTED,
    exam_channel,
    monitor_channel,
    notify,
)
from safexam.exams.lookups import get_owned_exam
from safexam.exams.models import Enrollment, Exam
from safexam.exams.schemas import DEFAULT_FLAG_KINDS
from safexam.integrity.models import ActivityLog
from safexam.integrity.service import flag_kinds_of
from safexam.jobs import enqueue
from safexam.jobs.kinds import AUTOSUBMIT
from safexam.sessions.closing import _enqueue_grading
from safexam.sessions.models import Announcement, ExamSession, Response
from safexam.sessions.notify import (
    ExamBroadcast,
    MonitorDelta,
    SessionChanged,
    publish_delta,
)
from safexam.sessions.rules import db_now

__all__ = [
    "IDLE_AFTER_SECONDS",
    "AnnouncementIn",
    "AnnouncementOut",
    "AuditEntryOut",
    "AuditTrailOut",
    "ExtendIn",
    "ExtendOut",
    "ForceSubmitIn",
    "ForceSubmitOut",
    "MonitorRoster",
    "MonitorStudent",
    "TimelineItem",
    "TimelineOut",
    "announce",
    "exam_announcements",
    "exam_audit_trail",
    "exam_roster",
    "extend_time",
    "force_submit",
    "monitor_events",
    "page_connected",
    "student_timeline",
]

log = structlog.get_logger(__name__)

#: No save and no integrity event for this long: the student is idle.
IDLE_AFTER_SECONDS = 5 * 60
#: Deltas arriving together are sent as one SSE message: at 250 saves a second
#: this keeps the stream to a few writes a second at a small cost in latency.
COALESCE_SECONDS = 0.1
#: The most deltas one SSE message carries; a larger burst is a roster re-read.
MAX_BATCH = 2_000
MAX_MINUTES = 24 * 60

MonitorState = Literal["not_started", "active", "idle", "offline", "submitted", "auto_submitted"]
Reason = Annotated[str, msgspec.Meta(min_length=1, max_length=2_000, pattern=r"\S")]
Message = Annotated[str, msgspec.Meta(min_length=1, max_length=2_000, pattern=r"\S")]
Minutes = Annotated[int, msgspec.Meta(ge=1, le=MAX_MINUTES)]


class MonitorStudent(msgspec.Struct, kw_only=True):
    """One enrolled student as the monitor shows them (their latest attempt)."""

    user_id: uuid.UUID | None
    email: str
    name: str | None
    state: MonitorState
    session_id: uuid.UUID | None = None
    attempt: int | None = None
    status: str | None = None
    started_at: datetime | None = None
    deadline_at: datetime | None = None
    submitted_at: datetime | None = None
    remaining_seconds: int = 0
    last_save_at: datetime | None = None
    last_event_at: datetime | None = None
    answered: int = 0
    question_count: int = 0
    # Integrity events of the kinds the exam flags, by kind.
    flags: dict[str, int] = {}
    # The last connectivity event of the integrity log ("offline" / "online").
    connectivity: str | None = None
    # Exam pages of the student connected now; None: never seen connected.
    pages: int | None = None


class MonitorRoster(msgspec.Struct, kw_only=True):
    """What the monitor stream opens with (and sends again after a reconnect)."""

    exam_id: uuid.UUID
    title: str
    server_time: datetime
    idle_after_seconds: int
    flag_kinds: list[str]
    students: list[MonitorStudent]


class ExtendIn(msgspec.Struct, forbid_unknown_fields=True):
    """Give more time: to one running session, or (no ``session_id``) to every one."""

    minutes: Minutes
    reason: Reason
    session_id: uuid.UUID | None = None


class ExtendOut(msgspec.Struct, kw_only=True):
    extended: int
    deadlines: dict[str, datetime]


class ForceSubmitIn(msgspec.Struct, forbid_unknown_fields=True):
    reason: Reason


class ForceSubmitOut(msgspec.Struct, kw_only=True):
    session_id: uuid.UUID
    status: str
    submitted_at: datetime | None
    job_id: uuid.UUID | None


class AnnouncementIn(msgspec.Struct, forbid_unknown_fields=True):
    message: Message


class AnnouncementOut(msgspec.Struct, kw_only=True):
    id: uuid.UUID
    message: str
    created_at: datetime


class AuditEntryOut(msgspec.Struct, kw_only=True):
    id: uuid.UUID
    at: datetime
    actor_id: uuid.UUID | None
    actor: str | None
    action: str
    subject_type: str
    subject_id: uuid.UUID | None
    reason: str | None
    details: dict[str, Any]


class AuditTrailOut(msgspec.Struct, kw_only=True):
    exam_id: uuid.UUID
    items: list[AuditEntryOut]


class TimelineItem(msgspec.Struct, kw_only=True):
    at: datetime
    # start, save, submit, expire, an integrity event's kind, or an audited action.
    kind: str
    detail: str = ""


class TimelineOut(msgspec.Struct, kw_only=True):
    session_id: uuid.UUID
    user_id: uuid.UUID
    email: str
    name: str | None
    items: list[TimelineItem]


# ------------------------------------------------------------------ the roster


def _presence_key(exam_id: uuid.UUID) -> str:
    # Beside the exam's channels, in the same namespace.
    return exam_channel(exam_id) + ":pages"


def derive_state(
    student: MonitorStudent, now: datetime, idle_after: int = IDLE_AFTER_SECONDS
) -> MonitorState:
    """The state shown; js/monitor.js derives it the same way as time passes."""
    if student.session_id is None:
        return "not_started"
    if student.status == "expired":
        return "auto_submitted"
    if student.status in ("submitted", "graded"):
        # A graded session keeps no trace of how it ended but this: the
        # deadline's auto-submit stamps the deadline itself.
        auto = student.status == "graded" and student.submitted_at == student.deadline_at
        return "auto_submitted" if auto else "submitted"
    if student.pages == 0 or student.connectivity == "offline":
        return "offline"
    moments = [m for m in (student.started_at, student.last_save_at, student.last_event_at) if m]
    if moments and (now - max(moments)).total_seconds() >= idle_after:
        return "idle"
    return "active"


async def exam_roster(
    db: AsyncSession, exam_id: uuid.UUID, principal: Principal, redis: Redis | None = None
) -> MonitorRoster:
    """Every enrolled student (and anyone with a session) with their latest attempt's state."""
    exam = await get_owned_exam(db, exam_id, principal)
    now = await db_now(db)
    enrolled = (
        await db.execute(
            select(Enrollment.email, Enrollment.user_id)
            .where(Enrollment.exam_id == exam.id)
            .order_by(Enrollment.email)
        )
    ).all()
    sessions: dict[uuid.UUID, ExamSession] = {}
    for session in (
        await db.execute(
            select(ExamSession).where(ExamSession.exam_id == exam.id).order_by(ExamSession.attempt)
        )
    ).scalars():
        sessions[session.user_id] = session  # by attempt: the last one wins
    saves = {
        sid: (int(n), last)
        for sid, n, last in (
            await db.execute(
                select(Response.session_id, func.count(), func.max(Response.saved_at))
                .join(ExamSession, ExamSession.id == Response.session_id)
                .where(ExamSession.exam_id == exam.id)
                .group_by(Response.session_id)
            )
        ).all()
    }
    # An exam that names no kinds flags what an educator most likely wants.
    flagged = set(flag_kinds_of(exam.integrity) or DEFAULT_FLAG_KINDS)
    flags: dict[uuid.UUID, dict[str, int]] = {}
    last_event: dict[uuid.UUID, datetime] = {}
    connectivity: dict[uuid.UUID, tuple[int, str]] = {}
    for sid, kind, n, last_at, last_id in (
        await db.execute(
            select(
                ActivityLog.session_id,
                ActivityLog.kind,
                func.count(),
                func.max(ActivityLog.server_at),
                func.max(ActivityLog.id),
            )
            .join(ExamSession, ExamSession.id == ActivityLog.session_id)
            .where(ExamSession.exam_id == exam.id)
            .group_by(ActivityLog.session_id, ActivityLog.kind)
        )
    ).all():
        if kind in flagged:
            flags.setdefault(sid, {})[kind] = int(n)
        if sid not in last_event or last_at > last_event[sid]:
            last_event[sid] = last_at
        if kind in ("offline", "online") and (
            sid not in connectivity or last_id > connectivity[sid][0]
        ):
            connectivity[sid] = (int(last_id), kind)
    pages: dict[str, int] = {}
    if redis is not None:
        try:
            raw = await redis.hgetall(_presence_key(exam.id))
            pages = {
                (k.decode() if isinstance(k, bytes) else str(k)): int(v) for k, v in raw.items()
            }
        except Exception as exc:
            if unavailable_dependency(exc) is None:
                raise
    user_ids = {u for _, u in enrolled if u is not None} | set(sessions)
    users = {
        u.id: u for u in (await db.execute(select(User).where(User.id.in_(user_ids)))).scalars()
    }
    by_email = {u.email.lower(): u for u in users.values()}
    students: list[MonitorStudent] = []
    seen: set[uuid.UUID] = set()

    def row(email: str, user: User | None) -> MonitorStudent:
        session = sessions.get(user.id) if user is not None else None
        student = MonitorStudent(
            user_id=user.id if user is not None else None,
            email=user.email if user is not None else email,
            name=user.name if user is not None else None,
            state="not_started",
        )
        if session is not None:
            count, last_save = saves.get(session.id, (0, None))
            student.session_id = session.id
            student.attempt = session.attempt
            student.status = session.status
            student.started_at = session.started_at
            student.deadline_at = session.deadline_at
            student.submitted_at = session.submitted_at
            student.remaining_seconds = (
                max(0, int((session.deadline_at - now).total_seconds()))
                if session.status == "active"
                else 0
            )
            student.last_save_at = last_save
            student.last_event_at = last_event.get(session.id)
            student.answered = count
            student.question_count = len(session.paper)
            student.flags = dict(sorted(flags.get(session.id, {}).items()))
            held = connectivity.get(session.id)
            student.connectivity = held[1] if held else None
            student.pages = pages.get(str(session.id))
        student.state = derive_state(student, now)
        return student

    for email, user_id in enrolled:
        user = users.get(user_id) if user_id is not None else by_email.get(email.lower())
        if user is not None:
            if user.id in seen:
                continue
            seen.add(user.id)
        students.append(row(email, user))
    for user_id in sessions:
        if user_id not in seen and user_id in users:
            seen.add(user_id)
            students.append(row(users[user_id].email, users[user_id]))
    return MonitorRoster(
        exam_id=exam.id,
        title=exam.title,
        server_time=now,
        idle_after_seconds=IDLE_AFTER_SECONDS,
        flag_kinds=sorted(flagged),
        students=students,
    )


async def monitor_events(
    channels: ChannelsPlugin,
    exam_id: uuid.UUID,
    read_roster: Callable[[], Awaitable[MonitorRoster]],
    *,
    heartbeat_seconds: float = HEARTBEAT_SECONDS,
) -> AsyncGenerator[ServerSentEventMessage, None]:
    """The monitor's SSE: ``roster`` first, then ``delta`` messages (JSON arrays of deltas).

    Subscribes before reading, so nothing between the read and the
    subscription is missed (a delta already in the roster is harmless: the
    viewer applies each idempotently). The deltas are relayed as published,
    joined into one array per burst. After a Redis reconnect, or a ``refresh``
    delta, the roster is read again.
    """
    pending: list[bytes] = []
    arrived = asyncio.Event()
    async with channels.start_subscription([monitor_channel(exam_id)]) as subscriber:

        async def listen() -> None:
            async for message in subscriber.iter_events():
                pending.append(message if isinstance(message, bytes) else bytes(message))
                arrived.set()

        listener = asyncio.create_task(listen())
        try:
            sequence = 1
            roster = await read_roster()
            yield ServerSentEventMessage(
                data=msgspec.json.encode(roster).decode(), event="roster", id=sequence
            )
            while True:
                try:
                    await asyncio.wait_for(arrived.wait(), timeout=heartbeat_seconds)
                except TimeoutError:
                    yield ServerSentEventMessage(comment="keep-alive")
                    continue
                await asyncio.sleep(COALESCE_SECONDS)
                arrived.clear()
                batch = pending[:]
                pending.clear()
                sequence += 1
                if len(batch) > MAX_BATCH or any(
                    raw == RECONNECTED or b'"kind":"refresh"' in raw for raw in batch
                ):
                    try:
                        roster = await read_roster()
                    except Exception as exc:
                        if unavailable_dependency(exc) is None:
                            raise
                        log.warning("monitor_stream_ended", exam_id=str(exam_id))
                        return
                    yield ServerSentEventMessage(
                        data=msgspec.json.encode(roster).decode(), event="roster", id=sequence
                    )
                    continue
                yield ServerSentEventMessage(
                    data=b"[" + b",".join(batch) + b"]", event="delta", id=sequence
                )
        finally:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await listener


@contextlib.asynccontextmanager
async def page_connected(
    redis: Redis | None, exam_id: uuid.UUID, session_id: uuid.UUID
) -> AsyncGenerator[None, None]:
    """While a student's exam page holds its event stream: counted, and told to the monitor."""

    async def change(by: int) -> None:
        if redis is None:
            return
        try:
            pages = int(await redis.hincrby(_presence_key(exam_id), str(session_id), by))
        except Exception as exc:
            log.warning("presence_failed", error=f"{type(exc).__name__}: {exc}")
            return
        await publish_delta(
            redis,
            MonitorDelta(
                id=exam_id,
                kind="online" if pages > 0 else "offline",
                session=session_id,
                at=datetime.now().astimezone(),
                pages=max(0, pages),
            ),
        )

    await change(1)
    try:
        yield
    finally:
        # Shielded: the stream ends by cancellation when the page goes away.
        with contextlib.suppress(Exception, asyncio.CancelledError):
            await asyncio.shield(change(-1))


# ------------------------------------------------------------------ a student's timeline


async def _exam_session(
    db: AsyncSession, exam: Exam, session_id: uuid.UUID, *, lock: bool = False
) -> ExamSession:
    stmt = select(ExamSession).where(ExamSession.id == session_id, ExamSession.exam_id == exam.id)
    if lock:
        stmt = stmt.with_for_update()
    session = (await db.execute(stmt)).scalar_one_or_none()
    if session is None:
        raise NotFound("session not found")
    return session


async def student_timeline(
    db: AsyncSession, exam_id: uuid.UUID, session_id: uuid.UUID, principal: Principal
) -> TimelineOut:
    """One session's start, saves, integrity events, actions taken on it and end, in order."""
    exam = await get_owned_exam(db, exam_id, principal)
    session = await _exam_session(db, exam, session_id)
    user = await db.get(User, session.user_id)
    assert user is not None
    items = [TimelineItem(at=session.started_at, kind="start", detail=f"Attempt {session.attempt}")]
    order = {str(q.get("question_id")): n for n, q in enumerate(session.paper, start=1)}
    for question_id, saved_at in (
        await db.execute(
            select(Response.question_id, Response.saved_at).where(Response.session_id == session.id)
        )
    ).all():
        n = order.get(str(question_id))
        items.append(TimelineItem(at=saved_at, kind="save", detail=f"Question {n}" if n else ""))
    for kind, server_at in (
        await db.execute(
            select(ActivityLog.kind, ActivityLog.server_at)
            .where(ActivityLog.session_id == session.id)
            .order_by(ActivityLog.id.desc())
            .limit(500)
        )
    ).all():
        items.append(TimelineItem(at=server_at, kind=kind))
    for event in await audit_events(db, subject_id=session.id, limit=100):
        items.append(TimelineItem(at=event.at, kind=event.action, detail=event.reason or ""))
    if session.submitted_at is not None:
        items.append(
            TimelineItem(
                at=session.submitted_at,
                kind="expire" if session.status == "expired" else "submit",
            )
        )
    items.sort(key=lambda item: item.at)
    return TimelineOut(
        session_id=session.id, user_id=user.id, email=user.email, name=user.name, items=items
    )


# ------------------------------------------------------------------ actions


async def extend_time(
    db: AsyncSession,
    exam_id: uuid.UUID,
    principal: Principal,
    data: ExtendIn,
    *,
    redis: Redis | None = None,
) -> ExtendOut:
    """Move the deadline of one running session, or of every running one; audited; commit.

    Only running sessions move (one whose time ran out in the grace seconds
    before its auto-submit does too: the extension reopens it). One student's
    new deadline gets its own auto-submit message; for everyone, the periodic
    sweep closes them, so no job row per student is written.
    """
    exam = await get_owned_exam(db, exam_id, principal)
    delta = timedelta(minutes=data.minutes)
    if data.session_id is not None:
        session = await _exam_session(db, exam, data.session_id, lock=True)
        if session.status != "active":
            raise Conflict("This student's attempt has already ended", code="session_closed")
        session.deadline_at = session.deadline_at + delta
        now = await db_now(db)
        await enqueue(
            db,
            AUTOSUBMIT,
            args={"session_id": str(session.id)},
            exam_id=exam.id,
            session_id=session.id,
            requested_by=principal.id,
            delay_ms=max(0, int((session.deadline_at - now).total_seconds() * 1000)),
        )
        deadlines = {str(session.id): session.deadline_at}
        record_audit(
            db,
            actor_id=principal.id,
            action="session.extend",
            subject_type="session",
            subject_id=session.id,
            exam_id=exam.id,
            reason=data.reason,
            details={"minutes": data.minutes, "deadline_at": session.deadline_at.isoformat()},
        )
    else:
        moved = (
            await db.execute(
                update(ExamSession)
                .where(ExamSession.exam_id == exam.id, ExamSession.status == "active")
                .values(deadline_at=ExamSession.deadline_at + delta)
                .returning(ExamSession.id, ExamSession.deadline_at)
            )
        ).all()
        deadlines = {str(sid): deadline for sid, deadline in moved}
        record_audit(
            db,
            actor_id=principal.id,
            action="exam.extend",
            subject_type="exam",
            subject_id=exam.id,
            exam_id=exam.id,
            reason=data.reason,
            details={"minutes": data.minutes, "sessions": len(deadlines)},
        )
    await db.commit()
    log.info("time_extended", exam_id=str(exam.id), sessions=len(deadlines), minutes=data.minutes)
    if data.session_id is not None:
        sid = uuid.UUID(next(iter(deadlines)))
        await notify(redis, SessionChanged(id=sid, change="extended"))
        await publish_delta(
            redis,
            MonitorDelta(id=exam.id, kind="extend", session=sid, deadline_at=deadlines[str(sid)]),
        )
    else:
        await notify(redis, ExamBroadcast(id=exam.id, change="extended"))
        await publish_delta(redis, MonitorDelta(id=exam.id, kind="refresh"))
    return ExtendOut(extended=len(deadlines), deadlines=deadlines)


async def force_submit(
    db: AsyncSession,
    exam_id: uuid.UUID,
    session_id: uuid.UUID,
    principal: Principal,
    data: ForceSubmitIn,
    *,
    redis: Redis | None = None,
) -> ForceSubmitOut:
    """End a student's running attempt now, as their own submit would; audited; commit.

    Every answer saved so far is kept and graded (the autosave statement's
    share lock makes a save in flight finish first or see the end).
    """
    exam = await get_owned_exam(db, exam_id, principal)
    session = await _exam_session(db, exam, session_id, lock=True)
    if session.status != "active":
        raise Conflict("This student's attempt has already ended", code="session_closed")
    now = await db_now(db)
    session.status = "submitted"
    session.submitted_at = min(now, session.deadline_at)
    job = await _enqueue_grading(db, session)
    record_audit(
        db,
        actor_id=principal.id,
        action="session.force_submit",
        subject_type="session",
        subject_id=session.id,
        exam_id=exam.id,
        reason=data.reason,
        details={"job_id": str(job.id)},
    )
    out = ForceSubmitOut(
        session_id=session.id,
        status=session.status,
        submitted_at=session.submitted_at,
        job_id=job.id,
    )
    await db.commit()
    log.info("session_force_submitted", session_id=str(session.id), job_id=str(job.id))
    await notify(redis, SessionChanged(id=session.id, change="force_submitted"))
    await publish_delta(
        redis,
        MonitorDelta(
            id=exam.id, kind="submit", session=session.id, at=out.submitted_at, status="submitted"
        ),
    )
    return out


async def announce(
    db: AsyncSession,
    exam_id: uuid.UUID,
    principal: Principal,
    data: AnnouncementIn,
    *,
    redis: Redis | None = None,
) -> AnnouncementOut:
    """Keep an announcement for the exam and push it to every student's page; audited; commit."""
    exam = await get_owned_exam(db, exam_id, principal)
    message = data.message.strip()
    announcement = Announcement(exam_id=exam.id, author_id=principal.id, message=message)
    db.add(announcement)
    await db.flush()
    record_audit(
        db,
        actor_id=principal.id,
        action="exam.announce",
        subject_type="announcement",
        subject_id=announcement.id,
        exam_id=exam.id,
        reason=None,
        details={"message": message},
    )
    await db.refresh(announcement)
    out = AnnouncementOut(
        id=announcement.id, message=announcement.message, created_at=announcement.created_at
    )
    await db.commit()
    await notify(redis, ExamBroadcast(id=exam.id, change="announcement"))
    return out


async def exam_announcements(
    db: AsyncSession, exam_id: uuid.UUID, since: datetime | None = None
) -> list[AnnouncementOut]:
    """The exam's announcements, oldest first (``since``: made at or after that moment).

    No ownership check: callers have already shown the viewer may see the exam
    (its owner, or a student with a session of it).
    """
    query = select(Announcement).where(Announcement.exam_id == exam_id)
    if since is not None:
        query = query.where(Announcement.created_at >= since)
    rows = (await db.execute(query.order_by(Announcement.created_at, Announcement.id))).scalars()
    return [AnnouncementOut(id=a.id, message=a.message, created_at=a.created_at) for a in rows]


async def exam_audit_trail(
    db: AsyncSession, exam_id: uuid.UUID, principal: Principal, *, limit: int = 200
) -> AuditTrailOut:
    """The exam's audit trail, newest first, with who acted."""
    exam = await get_owned_exam(db, exam_id, principal)
    events: list[AuditEvent] = await audit_events(db, exam_id=exam.id, limit=limit)
    actor_ids = {e.actor_id for e in events if e.actor_id is not None}
    names: dict[uuid.UUID, str] = {}
    if actor_ids:
        for uid, email, name in (
            await db.execute(select(User.id, User.email, User.name).where(User.id.in_(actor_ids)))
        ).all():
            names[uid] = name or email
    return AuditTrailOut(
        exam_id=exam.id,
        items=[
            AuditEntryOut(
                id=e.id,
                at=e.at,
                actor_id=e.actor_id,
                actor=names.get(e.actor_id) if e.actor_id else None,
                action=e.action,
                subject_type=e.subject_type,
                subject_id=e.subject_id,
                reason=e.reason,
                details=e.details,
            )
            for e in events
        ],
    )
