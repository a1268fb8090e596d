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
    "ClusterOut",
    "Decision",
    "DecisionIn",
    "EventBatch",
    "EventsAccepted",
    "FlaggedSession",
    "IntegrityReviewOut",
    "PairOut",
    "PairSummary",
    "RegionOut",
    "ReviewThresholds",
    "SaveAround",
    "SessionTimelineOut",
    "SimilarityJobOut",
    "SimilarityRequested",
    "StudentRef",
    "TimelineItem",
    "TimelineQuestion",
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


# --- The integrity review ---------------------------------------------------------------------

Decision = Literal["open", "reviewed", "dismissed", "escalated"]


class ReviewThresholds(msgspec.Struct, forbid_unknown_fields=True):
    """When evidence counts as a flag, per exam (stored in the exam's integrity settings)."""

    # Pairs of programs at or above this similarity are listed (0.1 to 1).
    similarity_threshold: Annotated[float, msgspec.Meta(ge=0.1, le=1.0)] = 0.5
    # A focus loss is a flag only when the window stayed away this long.
    focus_lost_min_seconds: Annotated[int, msgspec.Meta(ge=0, le=86_400)] = 0
    # A paste is a flag only when it brought in this many characters.
    paste_min_chars: Annotated[int, msgspec.Meta(ge=0, le=1_000_000)] = 0


class DecisionIn(msgspec.Struct, forbid_unknown_fields=True):
    decision: Decision
    note: Annotated[str, msgspec.Meta(max_length=5_000)] = ""


class StudentRef(msgspec.Struct, kw_only=True):
    session_id: uuid.UUID
    name: str
    email: str


class RegionOut(msgspec.Struct, kw_only=True):
    a_first: int
    a_last: int
    b_first: int
    b_last: int
    tokens: int


class PairSummary(msgspec.Struct, kw_only=True):
    id: uuid.UUID
    question_id: uuid.UUID
    question: str
    language: str
    score: float
    a_coverage: float
    b_coverage: float
    a: StudentRef
    b: StudentRef
    decision: Decision
    note: str | None
    decided_at: datetime | None


class PairOut(PairSummary, kw_only=True):
    a_source: str
    b_source: str
    regions: list[RegionOut]


class ClusterOut(msgspec.Struct, kw_only=True):
    id: uuid.UUID
    question_id: uuid.UUID
    question: str
    language: str
    top_score: float
    sessions: list[StudentRef]


class FlaggedSession(msgspec.Struct, kw_only=True):
    student: StudentRef
    flags: int
    counts: dict[str, int]
    decision: Decision
    note: str | None


class SimilarityJobOut(msgspec.Struct, kw_only=True):
    id: uuid.UUID
    status: str
    question_id: str | None
    created_at: datetime


class IntegrityReviewOut(msgspec.Struct, kw_only=True):
    exam_id: uuid.UUID
    title: str
    thresholds: ReviewThresholds
    flag_kinds: list[str]
    pairs: list[PairSummary]
    clusters: list[ClusterOut]
    sessions: list[FlaggedSession]
    jobs: list[SimilarityJobOut]


class SaveAround(msgspec.Struct, kw_only=True):
    """One applied save of an answer near an integrity event."""

    question_id: uuid.UUID
    #: The question as the results pages name it (``Q2``).
    label: str
    client_seq: int
    saved_at: datetime
    #: From the event to the save: negative before it.
    seconds: float
    answer: dict[str, Any]
    #: The answer this save replaced; null for the question's first save (or one
    #: whose earlier saves are past retention).
    replaced: dict[str, Any] | None = None


class TimelineItem(msgspec.Struct, kw_only=True):
    at: datetime
    kind: str
    text: str
    flagged: bool = False
    # For a focus loss: how long the window stayed away (null: it never came back).
    seconds: float | None = None
    #: For an integrity event: when it happened, on the server's clock. ``at`` is when
    #: the browser's batch arrived, which may be seconds later (or, offline, more).
    happened_at: datetime | None = None
    #: True for an event the saves around were looked up for: one that takes the
    #: student away (not a return to the exam), among the session's first 200.
    saves_listed: bool = False
    #: Then the answers saved within the window before and after it
    #: (``save_window_seconds``), the nearest ones, in time order.
    saves_before: list[SaveAround] = []
    saves_after: list[SaveAround] = []
    #: Saves in the window beyond those listed.
    more_before: int = 0
    more_after: int = 0


class TimelineQuestion(msgspec.Struct, kw_only=True):
    """A question of the session's paper, for reading its saved answers."""

    question_id: uuid.UUID
    label: str
    kind: str
    prompt: str
    #: The choices in the order this student saw them (choice questions only).
    choices: list[dict[str, Any]] | None = None


class SessionTimelineOut(msgspec.Struct, kw_only=True):
    exam_id: uuid.UUID
    student: StudentRef
    status: str
    started_at: datetime
    deadline_at: datetime
    submitted_at: datetime | None
    flags: int
    decision: Decision
    note: str | None
    items: list[TimelineItem]
    questions: list[TimelineQuestion] = []
    save_window_seconds: int = 0


class SimilarityRequested(msgspec.Struct, kw_only=True):
    job_ids: list[uuid.UUID]
