"""Wire and internal structs of question generation."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec

from safexam.exams.schemas import QuestionOut

__all__ = [
    "GENERATABLE_KINDS",
    "MAX_COUNT",
    "MAX_SOURCE_CHARS",
    "Candidate",
    "Difficulty",
    "GeneratedBatch",
    "GenerationDrafts",
    "GenerationJobCreate",
    "GenerationJobList",
    "GenerationJobOut",
    "GenerationJobView",
    "GenerationRequest",
    "GeneratorName",
    "JobRequestSummary",
]

GENERATABLE_KINDS = ("mcq_single", "mcq_multi", "short_text", "numeric")
MAX_SOURCE_CHARS = 50_000
MAX_TOPIC_CHARS = 200
MAX_COUNT = 50

GeneratableKind = Literal["mcq_single", "mcq_multi", "short_text", "numeric"]
Difficulty = Literal["easy", "medium", "hard"]
GeneratorName = Literal["embedded", "llm"]
# The question bank's tag grammar (exams.schemas.Tag): a comma would split one
# tag into two where tags are written as a list, and a draft keeps its tags.
Tag = Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=r"^[^,]*[^,\s][^,]*$")]


class GenerationJobCreate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """``POST /api/v1/qie/jobs``: what the educator asks for."""

    source_text: str | None = None
    topic: str | None = None
    count: int = 10
    kinds: list[GeneratableKind] = msgspec.field(
        default_factory=lambda: ["mcq_single", "short_text"]
    )
    difficulty: Difficulty | None = None
    tags: Annotated[list[Tag], msgspec.Meta(max_length=20)] = []
    # None: the LLM generator when SAFEXAM_LLM_BASE_URL is set, else the embedded one.
    generator: GeneratorName | None = None
    seed: Annotated[int, msgspec.Meta(ge=0, le=2**31 - 1)] = 0


class GenerationJobOut(msgspec.Struct):
    job_id: uuid.UUID
    status: str


class GenerationRequest(msgspec.Struct, frozen=True, kw_only=True):
    """A validated generation request, as the worker receives it."""

    source_text: str | None = None
    topic: str | None = None
    count: int = 10
    kinds: tuple[str, ...] = ("mcq_single", "short_text")
    difficulty: Difficulty | None = None
    tags: tuple[str, ...] = ()
    seed: int = 0
    generator: GeneratorName | None = None


class Candidate(msgspec.Struct, kw_only=True):
    """A generated question before validation and filtering, with its provenance."""

    kind: str
    prompt: str
    body: dict[str, Any]
    generator: str
    points: float = 1.0
    model: str | None = None
    passage: str | None = None
    # Generator-specific details kept in the provenance (term, template, ...).
    meta: dict[str, Any] = {}


class GeneratedBatch(msgspec.Struct, kw_only=True):
    """What a generator returns: candidates, and items it dropped itself, by reason."""

    candidates: list[Candidate]
    dropped: dict[str, int] = {}


class JobRequestSummary(msgspec.Struct, kw_only=True):
    """What the educator asked for, without the source text itself."""

    topic: str | None
    has_source_text: bool
    count: int
    kinds: list[str]
    tags: list[str]


class GenerationJobView(msgspec.Struct, kw_only=True):
    """A generation job as its educator follows it (``created``: drafts made)."""

    id: uuid.UUID
    status: str
    progress_done: int
    progress_total: int
    error: str | None
    created: int
    request: JobRequestSummary
    created_at: datetime
    finished_at: datetime | None


class GenerationJobList(msgspec.Struct, kw_only=True):
    """``GET /api/v1/qie/jobs``: the educator's most recent generation jobs."""

    items: list[GenerationJobView]


class GenerationDrafts(msgspec.Struct, kw_only=True):
    """``GET /api/v1/qie/jobs/{job_id}/drafts``: the job, and every question it made
    with its status now (``draft`` waiting, ``active`` approved, ``archived`` rejected)."""

    job: GenerationJobView
    items: list[QuestionOut]
