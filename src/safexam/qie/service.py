"""Question generation as a service: validate a request, queue it, run it into drafts.

- :func:`request_generation` (API): checks the educator's input (422 naming
  the field) and records a ``qie`` job through :func:`safexam.jobs.service.enqueue`.
- :func:`run_generation` (``qie`` worker): generates candidates, validates and
  filters them (:mod:`safexam.qie.quality`) against the educator's bank and the
  batch, and adds the survivors as ``draft`` questions with ``source = qie``
  and provenance. It flushes but does not commit: the job runner commits the
  questions together with the job's ``succeeded`` status, so a retried job
  never leaves half a batch behind.
"""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

import msgspec
import structlog
from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from safexam.core.errors import Unprocessable
from safexam.core.settings import Settings
from safexam.exams.models import Question
from safexam.exams.questions_service import add_question
from safexam.jobs.kinds import GENERATE_QUESTIONS
from safexam.jobs.models import Job
from safexam.jobs.service import enqueue
from safexam.qie.embedded import TEMPLATES, EmbeddedGenerator
from safexam.qie.generators import Generator, GeneratorUnavailable
from safexam.qie.llm import LLMGenerator
from safexam.qie.quality import QualityFilter
from safexam.qie.schemas import (
    MAX_COUNT,
    MAX_SOURCE_CHARS,
    MAX_TOPIC_CHARS,
    GenerationJobCreate,
    GenerationRequest,
)

__all__ = [
    "BANK_LIMIT",
    "choose_generator",
    "input_sha256",
    "request_from_args",
    "request_generation",
    "run_generation",
]

log = structlog.get_logger(__name__)

TEMPLATE_KINDS = frozenset(t.kind for t in TEMPLATES)
# Compare against the most recent questions of the bank; enough for any real
# bank, and bounds the filter's work.
BANK_LIMIT = 5_000


def _validated(data: GenerationJobCreate, settings: Settings) -> GenerationRequest:
    source = (data.source_text or "").strip() or None
    topic = (data.topic or "").strip() or None
    if source is not None and len(source) > MAX_SOURCE_CHARS:
        raise Unprocessable(
            f"source_text is longer than {MAX_SOURCE_CHARS} characters", field="source_text"
        )
    if topic is not None and len(topic) > MAX_TOPIC_CHARS:
        raise Unprocessable(f"topic is longer than {MAX_TOPIC_CHARS} characters", field="topic")
    if source is None and topic is None:
        raise Unprocessable("give a source_text or a topic", field="source_text")
    if not 1 <= data.count <= MAX_COUNT:
        raise Unprocessable(f"count must be between 1 and {MAX_COUNT}", field="count")
    if not data.kinds:
        raise Unprocessable("ask for at least one kind", field="kinds")
    if len(set(data.kinds)) != len(data.kinds):
        raise Unprocessable("a kind is listed twice", field="kinds")
    if data.generator == "llm" and not settings.llm_base_url:
        raise Unprocessable("the LLM generator is not configured on this server", field="generator")
    effective = data.generator or ("llm" if settings.llm_base_url else "embedded")
    # The embedded generator needs text, except for its parametric templates.
    if effective == "embedded" and source is None and not TEMPLATE_KINDS & set(data.kinds):
        raise Unprocessable(
            "the embedded generator needs a source_text"
            f" (without one it only makes {' and '.join(sorted(TEMPLATE_KINDS))} questions)",
            field="source_text",
        )
    return GenerationRequest(
        source_text=source,
        topic=topic,
        count=data.count,
        kinds=tuple(data.kinds),
        difficulty=data.difficulty,
        tags=tuple(dict.fromkeys(data.tags)),
        seed=data.seed,
        generator=data.generator,
    )


async def request_generation(
    db: AsyncSession, data: GenerationJobCreate, owner_id: uuid.UUID, settings: Settings
) -> Job:
    """Validate the request and queue a ``qie`` job for it; commits."""
    request = _validated(data, settings)
    args: dict[str, Any] = {
        "request": msgspec.to_builtins(request),
        "owner_id": str(owner_id),
    }
    job = await enqueue(
        db,
        GENERATE_QUESTIONS,
        args=args,
        requested_by=owner_id,
    )
    await db.commit()
    log.info("qie_job_queued", job_id=str(job.id), count=request.count, kinds=request.kinds)
    return job


def request_from_args(args: dict[str, Any]) -> tuple[GenerationRequest, uuid.UUID]:
    """Decode a job's args back into the request and the owner (worker side)."""
    request = msgspec.convert(args["request"], GenerationRequest)
    return request, uuid.UUID(str(args["owner_id"]))


def choose_generator(request: GenerationRequest, settings: Settings) -> Generator:
    """The request's generator; by default the LLM when configured, else the embedded one."""
    wanted = request.generator or ("llm" if settings.llm_base_url else "embedded")
    if wanted == "llm":
        return LLMGenerator.from_settings(settings)
    return EmbeddedGenerator()


def input_sha256(request: GenerationRequest) -> str:
    """The fingerprint of what the educator gave: source text and topic."""
    material = f"{request.source_text or ''}\x00{request.topic or ''}"
    return hashlib.sha256(material.encode()).hexdigest()


async def _bank_prompts(db: AsyncSession, owner_id: uuid.UUID) -> list[str]:
    # A draft the educator rejected is archived but still counts: a later run
    # must not offer the same question again.
    rejected = Question.provenance["review"]["decision"].astext == "rejected"
    rows = await db.scalars(
        select(Question.prompt)
        .where(Question.owner_id == owner_id, or_(Question.status != "archived", rejected))
        .order_by(Question.created_at.desc())
        .limit(BANK_LIMIT)
    )
    return list(rows)


async def run_generation(
    db: AsyncSession,
    request: GenerationRequest,
    owner_id: uuid.UUID,
    *,
    settings: Settings,
    generator: Generator | None = None,
    job_id: uuid.UUID | None = None,
) -> dict[str, Any]:
    """Generate, validate, filter and add up to ``request.count`` drafts; returns the summary.

    Raises :class:`GeneratorUnavailable` only when the chosen generator is
    down and there is no source text for the embedded generator to fall back
    on. Flushes, never commits (see the module docstring).
    """
    generator = generator or choose_generator(request, settings)
    summary: dict[str, Any] = {}
    try:
        batch = await generator.generate(request)
    except GeneratorUnavailable as exc:
        if generator.name == "embedded" or not request.source_text:
            raise
        log.warning("qie_generator_fallback", generator=generator.name, error=str(exc))
        summary["fallback"] = {"from": generator.name, "error": str(exc)}
        generator = EmbeddedGenerator()
        batch = await generator.generate(request)
    quality = QualityFilter.for_bank(await _bank_prompts(db, owner_id))
    digest = input_sha256(request)
    created: list[uuid.UUID] = []
    offered = 0
    for candidate in batch.candidates:
        if len(created) >= request.count:
            break
        offered += 1
        if not quality.admit(candidate):
            continue
        provenance: dict[str, Any] = {
            # Generator details first, so they can never mask the fields below.
            **candidate.meta,
            "generator": candidate.generator,
            "model": candidate.model,
            "input_sha256": digest,
            "passage": candidate.passage,
            "job_id": str(job_id) if job_id else None,
            "seed": request.seed,
            **({"topic": request.topic} if request.topic else {}),
        }
        # The same path as a hand-written question: validation, normalized
        # body and tags; flushed only, the job runner commits.
        try:
            question = await add_question(
                db,
                owner_id=owner_id,
                kind=candidate.kind,
                prompt=candidate.prompt,
                body=candidate.body,
                points=candidate.points,
                tags=request.tags,
                status="draft",
                source="qie",
                provenance=provenance,
            )
        except Unprocessable as exc:
            # The filter already ran the same body checks; this is a rule of
            # the bank itself (e.g. a tag limit): skip the item, not the job.
            log.warning("qie_candidate_refused", error=exc.message)
            quality.rejected["invalid"] = quality.rejected.get("invalid", 0) + 1
            continue
        created.append(question.id)
    summary.update(
        {
            "generator": generator.name,
            "model": generator.model,
            "requested": request.count,
            "created": len(created),
            "question_ids": [str(q) for q in created],
            "candidates": len(batch.candidates),
            "examined": offered,
            "rejected": dict(sorted(quality.rejected.items())),
            "dropped": dict(sorted(batch.dropped.items())),
            "input_sha256": digest,
        }
    )
    log.info(
        "qie_generated",
        generator=generator.name,
        created=len(created),
        rejected=sum(quality.rejected.values()),
    )
    return summary
