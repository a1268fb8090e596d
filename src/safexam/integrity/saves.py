"""The answers a session saved around each of its integrity events.

``responses`` keeps only each answer's last save; ``response_history`` keeps
every applied one (written by the autosave statement itself). Beside a focus
loss or a paste, the review shows the saves within :data:`SAVE_WINDOW` before
and after it, each with the answer it replaced, so an answer changed right
after the event reads as a change ("b, was a"), not only as its final value.
"""

from __future__ import annotations

import uuid
from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Row, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from safexam.integrity.models import ActivityLog
from safexam.integrity.schemas import SaveAround
from safexam.sessions.models import ResponseHistory

__all__ = [
    "MAX_EVENTS_WITH_SAVES",
    "MAX_SAVES_EACH_SIDE",
    "RETURN_KINDS",
    "SAVE_WINDOW",
    "Around",
    "event_times",
    "saves_around",
]

SAVE_WINDOW = timedelta(minutes=2)
#: The saves nearest the event on each side; a coding draft saved every few
#: seconds would otherwise bury the page.
MAX_SAVES_EACH_SIDE = 8
#: Past this many events in one session, later ones are listed without their saves.
MAX_EVENTS_WITH_SAVES = 200
#: Events that say the student came back (or only resized the window): the
#: saves that matter are around the departure before them.
RETURN_KINDS = frozenset(
    {"focus_gained", "visibility_visible", "fullscreen_enter", "online", "resize"}
)

#: The saves listed before and after one event, and how many more each window held.
Around = tuple[list[SaveAround], list[SaveAround], int, int]


def event_times(events: Sequence[ActivityLog]) -> dict[int, datetime]:
    """When each event happened, on the server's clock (the one saves are stamped with).

    ``server_at`` is when the browser's batch arrived: up to a few seconds late,
    much later after a time offline. ``client_at`` is exact but on the student's
    clock, which may be off by any amount. The smallest ``server_at -
    client_at`` of the session is that clock's offset plus the quickest
    delivery, so ``client_at`` plus it places each event at most that quickest
    delivery late; never after its arrival.
    """
    offsets = [e.server_at - e.client_at for e in events if e.client_at is not None]
    if not offsets:
        return {e.id: e.server_at for e in events}
    offset = min(offsets)
    return {
        e.id: e.server_at if e.client_at is None else min(e.server_at, e.client_at + offset)
        for e in events
    }


def _windows(moments: Sequence[datetime]) -> list[tuple[datetime, datetime]]:
    """The events' windows, overlapping ones merged: a short OR in the query."""
    merged: list[tuple[datetime, datetime]] = []
    for at in sorted(moments):
        low, high = at - SAVE_WINDOW, at + SAVE_WINDOW
        if merged and low <= merged[-1][1]:
            merged[-1] = (merged[-1][0], high)
        else:
            merged.append((low, high))
    return merged


async def saves_around(
    db: AsyncSession,
    session_id: uuid.UUID,
    moments: Sequence[datetime],
    labels: dict[uuid.UUID, str],
) -> list[Around]:
    """For each moment (in the order given), the saves within the window around it."""
    if not moments:
        return []
    h = ResponseHistory
    # The answer each save replaced is the question's save before it, which may
    # lie outside every window: computed over the session's whole history.
    history = (
        select(
            h.question_id,
            h.client_seq,
            h.saved_at,
            h.answer,
            func.lag(h.answer)
            .over(partition_by=h.question_id, order_by=h.client_seq)
            .label("replaced"),
        )
        .where(h.session_id == session_id)
        .subquery()
    )
    rows = (
        await db.execute(
            select(history)
            .where(or_(*(history.c.saved_at.between(lo, hi) for lo, hi in _windows(moments))))
            .order_by(history.c.saved_at, history.c.client_seq)
        )
    ).all()
    times = [r.saved_at for r in rows]
    out: list[Around] = []
    for at in moments:
        first = bisect_left(times, at - SAVE_WINDOW)
        split = bisect_left(times, at)
        last = bisect_right(times, at + SAVE_WINDOW)
        shown_from = max(first, split - MAX_SAVES_EACH_SIDE)
        shown_to = min(last, split + MAX_SAVES_EACH_SIDE)
        before = [_save(r, at, labels) for r in rows[shown_from:split]]
        after = [_save(r, at, labels) for r in rows[split:shown_to]]
        out.append((before, after, split - first - len(before), last - split - len(after)))
    return out


def _save(row: Row[Any], at: datetime, labels: dict[uuid.UUID, str]) -> SaveAround:
    return SaveAround(
        question_id=row.question_id,
        label=labels.get(row.question_id, "Q?"),
        client_seq=row.client_seq,
        saved_at=row.saved_at,
        seconds=(row.saved_at - at).total_seconds(),
        answer=row.answer,
        replaced=row.replaced,
    )
