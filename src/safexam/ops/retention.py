"""Retention: finished jobs, integrity events and answer histories past their age are deleted.

Integrity events hold students' IP addresses, the answer history (every
applied save, kept for the integrity review) grows with every autosave, and
the job ledger with every save of a coding answer, so none is kept for ever.
The answer history is integrity evidence and follows the events' retention. The maintenance
pool runs :func:`prune` on a schedule; each run deletes at most
``max_batches`` batches of ``batch_size`` rows per table, each batch in a
transaction of its own, so a backlog (the first run on an old database) is
worked off over several runs without long locks or a long transaction.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import msgspec
import structlog
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

__all__ = ["BATCH_SIZE", "MAX_BATCHES", "Pruned", "prune"]

log = structlog.get_logger(__name__)

BATCH_SIZE = 1000
MAX_BATCHES = 10

# A job created after the cutoff cannot have finished before it, so the
# (status, created_at) index narrows the search; finished_at decides.
_JOBS = """
DELETE FROM jobs WHERE id IN (
    SELECT id FROM jobs
     WHERE status IN ('succeeded', 'failed', 'dead')
       AND created_at < :cutoff AND finished_at < :cutoff
     LIMIT :batch
     FOR UPDATE SKIP LOCKED)
"""

# Ids grow with time: walking the primary key from the oldest stops at the
# first batch, without an index on server_at.
_EVENTS = """
DELETE FROM activity_logs WHERE id IN (
    SELECT id FROM activity_logs
     WHERE server_at < :cutoff
     ORDER BY id
     LIMIT :batch
     FOR UPDATE SKIP LOCKED)
"""


# The same walk as the events: ids grow with time.
_HISTORY = """
DELETE FROM response_history WHERE id IN (
    SELECT id FROM response_history
     WHERE saved_at < :cutoff
     ORDER BY id
     LIMIT :batch
     FOR UPDATE SKIP LOCKED)
"""


class Pruned(msgspec.Struct, frozen=True):
    jobs: int
    integrity_events: int
    answer_history: int = 0


async def _prune_table(
    maker: async_sessionmaker[AsyncSession],
    statement: str,
    cutoff: datetime,
    batch_size: int,
    max_batches: int,
) -> int:
    total = 0
    for _ in range(max_batches):
        async with maker() as db:
            deleted = (
                await db.execute(text(statement), {"cutoff": cutoff, "batch": batch_size})
            ).rowcount  # type: ignore[attr-defined]
            # One commit per batch, on purpose: each batch's locks end with it.
            await db.commit()
        total += int(deleted)
        if deleted < batch_size:
            break
    return total


async def prune(
    maker: async_sessionmaker[AsyncSession],
    *,
    now: datetime,
    job_retention_days: int,
    integrity_retention_days: int,
    batch_size: int = BATCH_SIZE,
    max_batches: int = MAX_BATCHES,
) -> Pruned:
    """Delete what is older than its retention (0 days: keep forever); how many rows went."""
    jobs = events = history = 0
    if job_retention_days > 0:
        cutoff = now - timedelta(days=job_retention_days)
        jobs = await _prune_table(maker, _JOBS, cutoff, batch_size, max_batches)
    if integrity_retention_days > 0:
        cutoff = now - timedelta(days=integrity_retention_days)
        events = await _prune_table(maker, _EVENTS, cutoff, batch_size, max_batches)
        history = await _prune_table(maker, _HISTORY, cutoff, batch_size, max_batches)
    if jobs or events or history:
        log.info("retention_pruned", jobs=jobs, integrity_events=events, answer_history=history)
    return Pruned(jobs=jobs, integrity_events=events, answer_history=history)
