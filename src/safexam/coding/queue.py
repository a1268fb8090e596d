"""Where a queued run or submission stands in the judge queue, and how long it may wait.

Every run and submission goes to the one ``judge`` queue, served in order of
arrival, so a queued submission's position is one more than the number of
queued submissions created before it. The wait is that position divided by
the pool's recent throughput: the submissions judged at once (those running
now: while anything is queued, every judge that is up is busy) over the mean
judging time of the last ones finished. With nothing finished lately there is
no throughput to go by, and the estimate is None rather than a guess.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from safexam.coding.models import CodingSubmission

__all__ = ["QueueEstimate", "QueuePlace", "queue_place"]

#: Only judgings this recent tell what the pool does now.
RECENT = timedelta(minutes=15)
#: Enough finished judgings for a steady mean, few enough to follow a change of load.
SAMPLE = 50
#: A submission "running" longer than this is stuck (dead worker), not occupying a judge.
RUNNING_FOR_AT_MOST = timedelta(minutes=5)
#: The pool's figures are the same for every queued submission: each process
#: measures them at most this often, however many students watch their place
#: (each open stream of a queued submission re-reads it every few seconds).
ESTIMATE_TTL_S = 1.0

_cached: tuple[float, QueueEstimate] | None = None


@dataclass(frozen=True)
class QueueEstimate:
    """The pool as recently measured: judgings at once, and seconds per judging."""

    parallel: int
    mean_seconds: float | None

    def wait_seconds(self, position: int) -> int | None:
        """Seconds until a submission at ``position`` (1: next) has started, rounded up."""
        if self.mean_seconds is None:
            return None
        return max(1, math.ceil(position * self.mean_seconds / self.parallel))


@dataclass(frozen=True)
class QueuePlace:
    position: int
    estimated_wait_seconds: int | None


async def _estimate(db: AsyncSession, now: datetime) -> QueueEstimate:
    global _cached
    if _cached is not None and time.monotonic() - _cached[0] < ESTIMATE_TTL_S:
        return _cached[1]
    estimate = await _measure(db, now)
    _cached = (time.monotonic(), estimate)
    return estimate


async def _measure(db: AsyncSession, now: datetime) -> QueueEstimate:
    running = (
        await db.execute(
            select(func.count())
            .select_from(CodingSubmission)
            .where(
                CodingSubmission.status == "running",
                CodingSubmission.started_at > now - RUNNING_FOR_AT_MOST,
            )
        )
    ).scalar_one()
    recent = (
        select(
            func.extract("epoch", CodingSubmission.finished_at - CodingSubmission.started_at).label(
                "seconds"
            )
        )
        .where(
            CodingSubmission.status == "done",
            CodingSubmission.started_at.is_not(None),
            CodingSubmission.finished_at > now - RECENT,
        )
        .order_by(CodingSubmission.finished_at.desc())
        .limit(SAMPLE)
        .subquery()
    )
    mean = (await db.execute(select(func.avg(recent.c.seconds)))).scalar_one()
    return QueueEstimate(
        parallel=max(1, int(running)), mean_seconds=None if mean is None else float(mean)
    )


async def queue_place(db: AsyncSession, submission: CodingSubmission) -> QueuePlace | None:
    """The place of ``submission`` in the judge queue, or None when it is not queued."""
    if submission.status != "queued":
        return None
    ahead = (
        await db.execute(
            select(func.count())
            .select_from(CodingSubmission)
            .where(
                CodingSubmission.status == "queued",
                or_(
                    CodingSubmission.created_at < submission.created_at,
                    and_(
                        CodingSubmission.created_at == submission.created_at,
                        CodingSubmission.id < submission.id,
                    ),
                ),
            )
        )
    ).scalar_one()
    now = (await db.execute(select(func.now()))).scalar_one()
    position = int(ahead) + 1
    estimate = await _estimate(db, now)
    return QueuePlace(position=position, estimated_wait_seconds=estimate.wait_seconds(position))
