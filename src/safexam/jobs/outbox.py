"""Transactional outbox: job messages leave only after their row is committed.

:func:`register` (called by ``enqueue``) remembers the job on the database
session; an ``after_commit`` hook hands the committed jobs to a background
task on the running event loop, which sends one Dramatiq message per job
(message id = job id) through this process's broker and then marks the rows
``queued``. A rollback forgets them. Nothing here blocks the caller: the send
runs in a thread after the response is on its way, and a broker that is down
only leaves the jobs ``pending``.

:func:`sweep` is the safety net, run periodically by the maintenance workers
(and callable directly): it re-sends jobs that are still pending (the send
failed or the process died), jobs whose worker vanished (running with a stale
heartbeat), and queued jobs whose message seems lost.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import dramatiq
import structlog
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session

from safexam.core.broker import current_broker
from safexam.core.db import utcnow
from safexam.jobs.models import Job
from safexam.jobs.models import stale_after as _stale_after

__all__ = ["OutboxEntry", "SweepReport", "drain", "register", "send_entries", "sweep"]

log = structlog.get_logger(__name__)

_ENTRIES = "safexam.outbox.entries"
_ENGINE = "safexam.outbox.engine"

#: After a failed send, skip sending for this long (the sweep catches up), so
#: a broker that is down does not cost every request a connection attempt.
BREAKER_SECONDS = 2.0
PENDING_AFTER = timedelta(seconds=2)
LOST_AFTER = timedelta(minutes=5)


@dataclass(frozen=True)
class OutboxEntry:
    job_id: uuid.UUID
    queue: str
    actor: str
    args: dict[str, Any]
    run_at: datetime | None = None

    def message(self, now: datetime | None = None) -> tuple[dramatiq.Message[Any], int | None]:
        kwargs = {**self.args, "job_id": str(self.job_id)}
        message: dramatiq.Message[Any] = dramatiq.Message(
            queue_name=self.queue,
            actor_name=self.actor,
            args=(),
            kwargs=kwargs,
            options={},
            message_id=str(self.job_id),
        )
        delay = None
        if self.run_at is not None:
            remaining = (self.run_at - (now or utcnow())).total_seconds()
            delay = int(remaining * 1000) if remaining > 0 else None
        return message, delay


def register(db: AsyncSession, job: Job) -> None:
    """Send ``job``'s message once the transaction that inserted it commits."""
    info = db.sync_session.info
    info.setdefault(_ENTRIES, {})[job.id] = OutboxEntry(
        job_id=job.id, queue=job.queue, actor=job.actor, args=dict(job.args), run_at=job.run_at
    )
    if isinstance(db.bind, AsyncEngine):
        info[_ENGINE] = db.bind


_tasks: set[asyncio.Task[None]] = set()


@event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    entries: dict[uuid.UUID, OutboxEntry] | None = session.info.pop(_ENTRIES, None)
    engine: AsyncEngine | None = session.info.get(_ENGINE)
    if not entries:
        return
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        log.info("outbox_no_loop", jobs=len(entries))
        return
    task = loop.create_task(_send_committed(list(entries.values()), engine))
    _tasks.add(task)
    task.add_done_callback(_tasks.discard)


@event.listens_for(Session, "after_rollback")
def _after_rollback(session: Session) -> None:
    session.info.pop(_ENTRIES, None)


async def drain(wait_seconds: float = 10.0) -> None:
    """Wait for the in-flight after-commit sends (tests and shutdown)."""
    pending = [t for t in _tasks if not t.done()]
    if pending:
        await asyncio.wait(pending, timeout=wait_seconds)


_down_until = 0.0


def send_entries(broker: dramatiq.Broker, entries: list[OutboxEntry]) -> list[uuid.UUID]:
    """Send messages (blocking; run it in a thread); returns the ids that left."""
    global _down_until
    sent: list[uuid.UUID] = []
    now = utcnow()
    for entry in entries:
        message, delay = entry.message(now)
        try:
            broker.enqueue(message, delay=delay)
        except Exception as exc:
            _down_until = time.monotonic() + BREAKER_SECONDS
            log.warning(
                "job_send_failed",
                job_id=str(entry.job_id),
                error=f"{type(exc).__name__}: {exc}",
                unsent=len(entries) - len(sent),
            )
            break
        sent.append(entry.job_id)
    return sent


async def _mark_queued(engine: AsyncEngine, ids: list[uuid.UUID]) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "UPDATE jobs SET status = 'queued', queued_at = now()"
                " WHERE id = ANY(:ids) AND status = 'pending'"
            ),
            {"ids": ids},
        )


async def _send_committed(entries: list[OutboxEntry], engine: AsyncEngine | None) -> None:
    broker = current_broker()
    if broker is None or time.monotonic() < _down_until:
        return
    try:
        sent = await asyncio.to_thread(send_entries, broker, entries)
        if sent and engine is not None:
            await _mark_queued(engine, sent)
    except Exception:
        # The jobs stay pending; the sweep sends them.
        log.warning("outbox_flush_failed", exc_info=True)


@dataclass
class SweepReport:
    pending: list[uuid.UUID] = field(default_factory=list)
    abandoned: list[uuid.UUID] = field(default_factory=list)
    lost: list[uuid.UUID] = field(default_factory=list)
    unsent: int = 0

    @property
    def sent(self) -> int:
        return len(self.pending) + len(self.abandoned) + len(self.lost)


async def sweep(
    sessionmaker: async_sessionmaker[AsyncSession],
    broker: dramatiq.Broker | None = None,
    *,
    pending_after: timedelta = PENDING_AFTER,
    stale_after: timedelta | None = None,
    lost_after: timedelta = LOST_AFTER,
    limit: int = 1000,
) -> SweepReport:
    """Re-send jobs whose message never left, whose worker vanished, or whose message was lost.

    Safe to run anywhere and concurrently (rows are taken with SKIP LOCKED)
    and to over-send: workers ignore messages for jobs they cannot claim.
    ``stale_after`` defaults to the deployment's ``SAFEXAM_JOB_STALE_AFTER_SECONDS``.
    """
    broker = broker or current_broker()
    report = SweepReport()
    if broker is None:
        return report
    async with sessionmaker() as db:
        rows = (
            await db.execute(
                text(
                    """
                    SELECT id, queue, actor, args, run_at, status FROM jobs
                     WHERE (status = 'pending'
                            AND created_at < now() - CAST(:pending_after AS interval))
                        OR (status = 'running' AND heartbeat_at < now() - CAST(:stale AS interval))
                        OR (status = 'queued'
                            AND greatest(queued_at, run_at) < now() - CAST(:lost_after AS interval))
                     ORDER BY created_at
                     LIMIT :limit
                     FOR UPDATE SKIP LOCKED
                    """
                ),
                {
                    "pending_after": pending_after,
                    "stale": stale_after if stale_after is not None else _stale_after(),
                    "lost_after": lost_after,
                    "limit": limit,
                },
            )
        ).all()
        if not rows:
            await db.rollback()
            return report
        entries = [
            OutboxEntry(
                job_id=r.id, queue=r.queue, actor=r.actor, args=dict(r.args), run_at=r.run_at
            )
            for r in rows
        ]
        sent = set(await asyncio.to_thread(send_entries, broker, entries))
        report.unsent = len(rows) - len(sent)
        for r in rows:
            if r.id not in sent:
                continue
            {"pending": report.pending, "running": report.abandoned}.get(
                r.status, report.lost
            ).append(r.id)
        if sent:
            # An abandoned job goes back to queued: if its old worker comes
            # back, its fenced final write fails and it rolls back.
            await db.execute(
                text(
                    "UPDATE jobs SET status = 'queued', queued_at = now()"
                    " WHERE id = ANY(:ids) AND status IN ('pending', 'running', 'queued')"
                ),
                {"ids": list(sent)},
            )
        await db.commit()
    if report.sent or report.unsent:
        log.info(
            "outbox_sweep",
            pending=len(report.pending),
            abandoned=len(report.abandoned),
            lost=len(report.lost),
            unsent=report.unsent,
        )
    return report
