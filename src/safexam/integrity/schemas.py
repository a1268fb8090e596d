"""Wire shapes of the integrity log."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec

__all__ = [
    "CLIENT_EVENT_KINDS",
    "ActivityEvent",
    "ActivityOut",
    "ClientEvent",
    "EventBatch",
    "EventsAccepted",
]

MAX_BATCH = 100

ClientEventKind = Literal[
    "focus_lost",
    "focus_gained",
    "visibility_hidden",
    "visibility_visible",
    "fullscreen_exit",
    "fullscreen_enter",
    "copy",
    "paste",
    "context_menu",
    "devtools_opened",
    "offline",
    "online",
    "resize",
    "multiple_screens",
]
# Kinds a browser may send; the server adds ``ip_changed`` itself.
CLIENT_EVENT_KINDS: tuple[str, ...] = ClientEventKind.__args__  # type: ignore[attr-defined]


# A browser clock may be years off (a dead battery says 1970), but not centuries:
# near year 1 or 9999 the conversion to UTC overflows.
FIRST_CLIENT_YEAR, LAST_CLIENT_YEAR = 1970, 2199


class ClientEvent(msgspec.Struct, forbid_unknown_fields=True):
    kind: ClientEventKind
    # With its offset: a time without one means nothing on a page in another zone.
    at: Annotated[datetime, msgspec.Meta(tz=True)]
    details: dict[str, Any] = {}

    def __post_init__(self) -> None:
        if not FIRST_CLIENT_YEAR <= self.at.year <= LAST_CLIENT_YEAR:
            raise ValueError(
                f"at must lie between the years {FIRST_CLIENT_YEAR} and {LAST_CLIENT_YEAR}"
            )


class EventBatch(msgspec.Struct, forbid_unknown_fields=True):
    events: Annotated[list[ClientEvent], msgspec.Meta(min_length=1, max_length=MAX_BATCH)]


class EventsAccepted(msgspec.Struct):
    accepted: int


class ActivityEvent(msgspec.Struct, kw_only=True):
    id: int
    kind: str
    client_at: datetime | None
    server_at: datetime
    details: dict[str, Any]
    flagged: bool


class ActivityOut(msgspec.Struct, kw_only=True):
    session_id: uuid.UUID
    exam_id: uuid.UUID
    user_id: uuid.UUID
    ip_address: str | None
    user_agent: str | None
    flag_kinds: list[str]
    counts: dict[str, int]
    flagged_total: int
    events: list[ActivityEvent]
    # Pass as ``after_id`` to read the next page; null when this page is the last.
    next_after_id: int | None
