"""Wire shapes of the question bank, exams and enrollments (field names are a public contract).

Request structs reject unknown fields. Update structs default every field to
``UNSET`` so a PATCH changes only what it names. A question's ``body`` arrives
as raw JSON and is decoded against its kind by :func:`safexam.exams.kinds.decode_body`,
which names the offending field in its 422.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec
from msgspec import UNSET, UnsetType

from safexam.exams.kinds import QuestionKind
from safexam.exams.models import ExamStatus, QuestionStatus
from safexam.integrity.schemas import ClientEventKind

__all__ = [
    "DEFAULT_FLAG_KINDS",
    "EVENT_KINDS",
    "BankCreate",
    "BankOut",
    "BankPage",
    "BankSharing",
    "BankUpdate",
    "DrawIn",
    "EnrolledOut",
    "EnrollmentIn",
    "EnrollmentOut",
    "EnrollmentPage",
    "EnrollmentsPut",
    "ExamCounts",
    "ExamCreate",
    "ExamItemIn",
    "ExamItemOut",
    "ExamOut",
    "ExamPage",
    "ExamStatus",
    "ExamUpdate",
    "IntegritySettings",
    "QuestionBankPut",
    "QuestionBrief",
    "QuestionCreate",
    "QuestionOut",
    "QuestionPage",
    "QuestionStatus",
    "QuestionUpdate",
    "ReleasePolicy",
]

ReleasePolicy = Literal["immediate", "after_close", "manual"]
QuestionSource = Literal["manual", "qie"]

# The browser events of the integrity log plus the server's own ip_changed;
# the browser's list lives with the integrity log, once.
EventKind = Literal[ClientEventKind, "ip_changed"]
EVENT_KINDS: tuple[str, ...] = EventKind.__args__  # type: ignore[attr-defined]
# What an educator most likely wants highlighted when they set nothing.
DEFAULT_FLAG_KINDS: tuple[EventKind, ...] = (
    "focus_lost",
    "visibility_hidden",
    "fullscreen_exit",
    "paste",
    "devtools_opened",
    "multiple_screens",
    "ip_changed",
)

Prompt = Annotated[str, msgspec.Meta(min_length=1, max_length=20_000)]
Points = Annotated[float, msgspec.Meta(ge=0, le=10_000)]
# Tags are stored stripped and lower-cased; no commas so they can travel in a query string.
Tag = Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=r"^[^,]*[^,\s][^,]*$")]
Tags = Annotated[list[Tag], msgspec.Meta(max_length=20)]
Title = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
Description = Annotated[str, msgspec.Meta(max_length=20_000)]
Moment = Annotated[datetime, msgspec.Meta(tz=True)]
Duration = Annotated[int, msgspec.Meta(ge=1, le=60 * 24 * 14)]
Attempts = Annotated[int, msgspec.Meta(ge=1, le=100)]
# Surrounding spaces are allowed (pasted rosters) and stripped by the service.
Email = Annotated[
    str, msgspec.Meta(min_length=3, max_length=320, pattern=r"^\s*[^@\s]+@[^@\s]+\s*$")
]


class _Request(msgspec.Struct, forbid_unknown_fields=True):
    pass


# ---------------------------------------------------------------- questions


class QuestionCreate(_Request):
    kind: QuestionKind
    prompt: Prompt
    body: dict[str, Any]
    points: Points = 1.0
    tags: Tags = []
    status: Literal["draft", "active"] = "draft"


class QuestionUpdate(_Request):
    """Only the fields present change; ``kind`` may be repeated but never changed."""

    kind: QuestionKind | UnsetType = UNSET
    prompt: Prompt | UnsetType = UNSET
    body: dict[str, Any] | UnsetType = UNSET
    points: Points | UnsetType = UNSET
    tags: Tags | UnsetType = UNSET
    status: QuestionStatus | UnsetType = UNSET


class QuestionOut(msgspec.Struct):
    id: uuid.UUID
    owner_id: uuid.UUID
    kind: str
    prompt: str
    body: dict[str, Any]
    points: float
    tags: list[str]
    status: str
    source: str
    provenance: dict[str, Any] | None
    created_at: datetime
    updated_at: datetime
    # The bank the question is in; None: its owner's alone.
    bank_id: uuid.UUID | None = None


class QuestionPage(msgspec.Struct):
    items: list[QuestionOut]
    total: int
    limit: int
    offset: int


# ---------------------------------------------------------------- banks

BankName = Annotated[str, msgspec.Meta(min_length=1, max_length=120)]
BankSharing = Literal["private", "org_read", "org_edit"]


class BankCreate(_Request):
    name: BankName
    sharing: BankSharing = "private"


class BankUpdate(_Request):
    """Only the fields present change."""

    name: BankName | UnsetType = UNSET
    sharing: BankSharing | UnsetType = UNSET


class BankOut(msgspec.Struct):
    id: uuid.UUID
    owner_id: uuid.UUID
    name: str
    sharing: str
    questions: int
    # What the caller may do with its questions: "owner" (everything),
    # "edit" (edit them) or "read" (find, preview and use them in exams).
    access: str
    created_at: datetime
    updated_at: datetime


class BankPage(msgspec.Struct):
    items: list[BankOut]
    total: int


class QuestionBankPut(_Request):
    """The bank a question goes into; null takes it out (its owner's alone again)."""

    bank_id: uuid.UUID | None


# ---------------------------------------------------------------- exams


class DrawIn(_Request):
    tag: Tag
    count: Annotated[int, msgspec.Meta(ge=1, le=500)]


class ExamItemIn(_Request):
    """Either ``question_id`` or ``draw``. ``points`` is per question (each drawn one too);
    a fixed question defaults to its own points, a draw must say."""

    question_id: uuid.UUID | None = None
    draw: DrawIn | None = None
    points: Points | None = None


class IntegritySettings(msgspec.Struct, forbid_unknown_fields=True):
    require_fullscreen: bool = False
    flag_kinds: Annotated[list[EventKind], msgspec.Meta(max_length=32)] = msgspec.field(
        default_factory=lambda: list(DEFAULT_FLAG_KINDS)
    )


class ExamCreate(_Request):
    title: Title
    opens_at: Moment
    closes_at: Moment
    duration_minutes: Duration
    description: Description = ""
    attempts_allowed: Attempts = 1
    shuffle_questions: bool = False
    shuffle_choices: bool = False
    release_policy: ReleasePolicy = "manual"
    integrity: IntegritySettings = msgspec.field(default_factory=IntegritySettings)
    items: Annotated[list[ExamItemIn], msgspec.Meta(max_length=500)] = []


class ExamUpdate(_Request):
    """Only the fields present change. Once published, only title, description,
    a later ``closes_at``, release policy and integrity settings may change."""

    title: Title | UnsetType = UNSET
    description: Description | UnsetType = UNSET
    opens_at: Moment | UnsetType = UNSET
    closes_at: Moment | UnsetType = UNSET
    duration_minutes: Duration | UnsetType = UNSET
    attempts_allowed: Attempts | UnsetType = UNSET
    shuffle_questions: bool | UnsetType = UNSET
    shuffle_choices: bool | UnsetType = UNSET
    release_policy: ReleasePolicy | UnsetType = UNSET
    integrity: IntegritySettings | UnsetType = UNSET
    items: Annotated[list[ExamItemIn], msgspec.Meta(max_length=500)] | UnsetType = UNSET


class DrawOut(msgspec.Struct):
    tag: str
    count: int


class QuestionBrief(msgspec.Struct):
    id: uuid.UUID
    kind: str
    prompt: str
    status: str
    tags: list[str]


class ExamItemOut(msgspec.Struct):
    position: int
    question_id: uuid.UUID | None
    draw: DrawOut | None
    points: float
    question: QuestionBrief | None


class ExamCounts(msgspec.Struct):
    items: int
    questions_per_student: int
    enrolled: int
    sessions: int
    submitted: int


class ExamOut(msgspec.Struct):
    id: uuid.UUID
    owner_id: uuid.UUID
    title: str
    description: str
    opens_at: datetime
    closes_at: datetime
    duration_minutes: int
    attempts_allowed: int
    shuffle_questions: bool
    shuffle_choices: bool
    release_policy: str
    integrity: IntegritySettings
    status: str
    published_at: datetime | None
    released_at: datetime | None
    grading_version: int
    items: list[ExamItemOut]
    max_score: float
    counts: ExamCounts
    created_at: datetime
    updated_at: datetime


class ExamPage(msgspec.Struct):
    items: list[ExamOut]
    total: int
    limit: int
    offset: int


# ---------------------------------------------------------------- enrollments


class EnrollmentIn(_Request):
    """One student; an omitted accommodation keeps its current value (0 / 1.0 when new)."""

    email: Email
    extra_minutes: Annotated[int, msgspec.Meta(ge=0, le=10_000)] | UnsetType = UNSET
    time_multiplier: Annotated[float, msgspec.Meta(ge=1, le=10)] | UnsetType = UNSET


class EnrollmentsPut(_Request):
    students: Annotated[list[EnrollmentIn], msgspec.Meta(min_length=1, max_length=5_000)]


class EnrolledOut(msgspec.Struct):
    enrolled: int


class EnrollmentOut(msgspec.Struct):
    email: str
    user_id: uuid.UUID | None
    name: str | None
    linked: bool
    extra_minutes: int
    time_multiplier: float
    created_at: datetime


class EnrollmentPage(msgspec.Struct):
    items: list[EnrollmentOut]
    total: int
