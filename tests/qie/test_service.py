"""Generation into the educator's bank: drafts, provenance, duplicates, generator fallback."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import msgspec
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from safexam.core.settings import Settings
from safexam.exams.models import Question
from safexam.qie.generators import GeneratorUnavailable
from safexam.qie.llm import LLMGenerator
from safexam.qie.schemas import GenerationRequest
from safexam.qie.service import input_sha256, run_generation
from tests.helpers import login, make_user
from tests.qie.llm_server import Reply, local_llm, questions

PASSAGE = (Path(__file__).parent / "data" / "steam_engine.txt").read_text()
KINDS = ("mcq_single", "mcq_multi", "short_text", "numeric")


async def _count(db: AsyncSession, owner: uuid.UUID) -> int:
    return int(await db.scalar(select(func.count()).where(Question.owner_id == owner)) or 0)


async def test_embedded_run_adds_validated_drafts_with_provenance(
    db: AsyncSession, settings: Settings, client: Any
) -> None:
    educator = await make_user(db, "educator")
    request = GenerationRequest(source_text=PASSAGE, count=20, kinds=KINDS, tags=("steam",))
    summary = await run_generation(db, request, educator.id, settings=settings)
    await db.commit()
    assert summary["generator"] == "embedded" and summary["model"] is None
    assert summary["created"] == 20 == len(summary["question_ids"])
    assert summary["input_sha256"] == input_sha256(request)
    rows = (await db.scalars(select(Question).where(Question.owner_id == educator.id))).all()
    assert len(rows) == 20
    assert {q.kind for q in rows} == set(KINDS)
    for q in rows:
        assert (q.status, q.source, q.tags) == ("draft", "qie", ["steam"])
        assert q.provenance is not None
        assert q.provenance["generator"] == "embedded"
        assert q.provenance["input_sha256"] == summary["input_sha256"]
        if not q.provenance.get("template"):
            assert q.provenance["passage"] in " ".join(PASSAGE.split())
    # The question CRUD lists them like any other draft.
    await login(client, educator.email)
    listed = await client.get("/api/v1/questions", params={"status": "draft", "source": "qie"})
    assert listed.status_code == 200, listed.text
    assert listed.json()["total"] == 20


async def test_second_run_skips_near_duplicates_of_the_bank(
    db: AsyncSession, settings: Settings
) -> None:
    educator = await make_user(db, "educator")
    request = GenerationRequest(source_text=PASSAGE, count=10, kinds=("short_text",))
    first = await run_generation(db, request, educator.id, settings=settings)
    await db.commit()
    second = await run_generation(db, request, educator.id, settings=settings)
    await db.commit()
    assert first["created"] == 10
    assert second["rejected"].get("near_duplicate_bank", 0) >= 10
    # The passage has more to offer: the second job moves on to new questions.
    assert 0 < second["created"] <= 10
    created_prompts = (
        await db.scalars(select(Question.prompt).where(Question.owner_id == educator.id))
    ).all()
    assert len(set(created_prompts)) == len(created_prompts)
    # Another educator's bank does not count against this one.
    other = await make_user(db, "educator")
    third = await run_generation(db, request, other.id, settings=settings)
    assert third["created"] == 10 and "near_duplicate_bank" not in third["rejected"]


async def test_llm_run_records_model_and_drops_bad_items(
    db: AsyncSession, settings: Settings
) -> None:
    educator = await make_user(db, "educator")
    good = {
        "kind": "short_text",
        "prompt": "Which engineer added a separate condenser to the steam engine?",
        "body": {"answers": ["James Watt", "Watt"]},
        "source_passage": "Watt added a separate condenser.",
    }
    giveaway = {**good, "prompt": "Was it Watt who added a separate condenser?"}
    items = [good, {"kind": "numeric", "prompt": "x"}, giveaway]
    with local_llm([questions(items)]) as server:
        generator = LLMGenerator(server.url, "test-model", timeout_s=2, max_attempts=1)
        request = GenerationRequest(source_text=PASSAGE, count=5, kinds=KINDS, generator="llm")
        summary = await run_generation(
            db, request, educator.id, settings=settings, generator=generator
        )
    assert summary["generator"] == "llm" and summary["model"] == "test-model"
    assert summary["created"] == 1
    assert summary["dropped"] == {"malformed_item": 1}
    assert summary["rejected"] == {"answer_in_stem": 1}
    (question,) = (await db.scalars(select(Question).where(Question.owner_id == educator.id))).all()
    assert question.provenance is not None
    assert question.provenance["model"] == "test-model"
    assert question.provenance["passage"] == "Watt added a separate condenser."


async def test_broken_llm_falls_back_to_embedded_when_text_is_given(
    db: AsyncSession, settings: Settings
) -> None:
    educator = await make_user(db, "educator")
    with local_llm([Reply(status=503)]) as server:
        generator = LLMGenerator(server.url, "m", timeout_s=2, max_attempts=2, backoff_s=0.01)
        request = GenerationRequest(source_text=PASSAGE, count=5, kinds=("mcq_single",))
        summary = await run_generation(
            db, request, educator.id, settings=settings, generator=generator
        )
        assert summary["generator"] == "embedded" and summary["created"] == 5
        assert summary["fallback"]["from"] == "llm"
        assert "HTTP 503" in summary["fallback"]["error"]
        no_text = GenerationRequest(topic="steam", count=5, kinds=("mcq_single",))
        with pytest.raises(GeneratorUnavailable):
            await run_generation(db, no_text, educator.id, settings=settings, generator=generator)


async def test_llm_is_chosen_by_configuration(db: AsyncSession, settings: Settings) -> None:
    educator = await make_user(db, "educator")
    item = {
        "kind": "numeric",
        "prompt": "How many legs does a spider have?",
        "body": {"answer": 8, "tolerance": 0},
    }
    with local_llm([questions([item])]) as server:
        configured = msgspec.structs.replace(
            settings, llm_base_url=server.url, llm_model="local-model", llm_api_key="k"
        )
        request = GenerationRequest(topic="spiders", count=1, kinds=("numeric",))
        summary = await run_generation(db, request, educator.id, settings=configured)
    assert summary["generator"] == "llm" and summary["model"] == "local-model"
    assert summary["created"] == 1
    assert await _count(db, educator.id) == 1
