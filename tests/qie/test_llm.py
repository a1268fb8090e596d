"""The LLM generator against a local OpenAI-compatible server: success and every failure mode."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from safexam.qie.generators import GeneratorUnavailable
from safexam.qie.llm import LLMGenerator
from safexam.qie.schemas import GenerationRequest
from tests.qie.llm_server import Reply, completion, local_llm, questions

REQUEST = GenerationRequest(
    source_text="Water boils at 100 degrees Celsius at sea level.",
    topic="physics",
    count=3,
    kinds=("mcq_single", "short_text", "numeric"),
    difficulty="easy",
)
MCQ = {
    "kind": "mcq_single",
    "prompt": "At what temperature does water boil at sea level?",
    "body": {
        "choices": [{"id": "a", "text": "90 °C"}, {"id": "b", "text": "100 °C"}],
        "answer": ["b"],
    },
    "source_passage": "Water boils at 100 degrees Celsius at sea level.",
}
SHORT = {
    "kind": "short_text",
    "prompt": "Which liquid boils at 100 °C at sea level?",
    "body": {"answers": ["water"], "case_sensitive": False},
}
NUMERIC = {
    "kind": "numeric",
    "prompt": "At how many degrees Celsius does water boil at sea level?",
    "body": {"answer": 100, "tolerance": 0},
    "points": 2,
}


def _generator(url: str, **kwargs: Any) -> tuple[LLMGenerator, list[float]]:
    delays: list[float] = []

    async def sleep(seconds: float) -> None:
        delays.append(seconds)

    options: dict[str, Any] = {"timeout_s": 2.0, "max_attempts": 3, "backoff_s": 0.01}
    options.update(kwargs)
    return LLMGenerator(url, "test-model", "sk-test", sleep=sleep, **options), delays


async def test_well_formed_items_become_candidates() -> None:
    with local_llm([questions([MCQ, SHORT, NUMERIC])]) as server:
        generator, delays = _generator(server.url)
        batch = await generator.generate(REQUEST)
    assert [c.kind for c in batch.candidates] == ["mcq_single", "short_text", "numeric"]
    assert batch.dropped == {}
    assert delays == []
    mcq = batch.candidates[0]
    assert mcq.body["answer"] == ["b"] and mcq.generator == "llm" and mcq.model == "test-model"
    assert mcq.passage == MCQ["source_passage"]
    assert mcq.meta["passage_verified"] is True
    assert "passage_verified" not in batch.candidates[1].meta  # it quoted nothing
    assert batch.candidates[2].points == 2
    (sent,) = server.requests
    assert sent["path"] == "/v1/chat/completions"
    assert sent["model"] == "test-model"
    assert sent["response_format"] == {"type": "json_object"}
    user = sent["messages"][1]["content"]
    assert "Write 3 exam questions." in user and "Water boils at 100" in user
    assert "mcq_single, short_text, numeric" in user and "easy" in user
    assert server.headers[0]["Authorization"] == "Bearer sk-test"


async def test_malformed_and_invalid_items_are_dropped_with_reasons() -> None:
    items = [
        MCQ,
        {"kind": "mcq_single", "body": {}},  # no prompt
        "just a string",
        {"kind": "essay", "prompt": "Discuss.", "body": {}},  # not a kind we know
        {**SHORT, "kind": "mcq_multi", "body": MCQ["body"]},  # a kind nobody asked for
        {**MCQ, "body": {"choices": MCQ["body"]["choices"], "answer": ["z"]}},  # key not a choice
        {**NUMERIC, "body": {"tolerance": -1}},  # no answer, negative tolerance
        {**SHORT, "prompt": "   "},
    ]
    # Fenced JSON, as chat models like to send it.
    fenced = completion("```json\n" + json.dumps({"questions": items}) + "\n```")
    with local_llm([fenced]) as server:
        generator, _ = _generator(server.url)
        batch = await generator.generate(REQUEST)
    assert [c.prompt for c in batch.candidates] == [MCQ["prompt"]]
    assert batch.dropped == {"malformed_item": 3, "unrequested_kind": 1, "invalid_item": 3}


async def test_429_then_success_honours_retry_after() -> None:
    script = [Reply(status=429, headers={"Retry-After": "0.5"}), questions([MCQ])]
    with local_llm(script) as server:
        generator, delays = _generator(server.url)
        batch = await generator.generate(REQUEST)
    assert len(server.requests) == 2
    assert len(batch.candidates) == 1
    assert delays == [0.5]


async def test_5xx_are_retried_with_backoff_then_unavailable() -> None:
    with local_llm([Reply(status=500), Reply(status=503), Reply(status=502)]) as server:
        generator, delays = _generator(server.url, max_attempts=3, backoff_s=0.25)
        with pytest.raises(GeneratorUnavailable) as info:
            await generator.generate(REQUEST)
    assert len(server.requests) == 3
    assert delays == [0.25, 0.5]  # exponential, and no sleep after the last attempt
    assert "HTTP 500, HTTP 503, HTTP 502" in str(info.value)


async def test_500_then_success() -> None:
    with local_llm([Reply(status=500), questions([SHORT])]) as server:
        generator, _ = _generator(server.url)
        batch = await generator.generate(REQUEST)
    assert [c.kind for c in batch.candidates] == ["short_text"]


async def test_timeout_is_retried() -> None:
    script = [Reply(delay_s=1.5, body=b"{}"), questions([NUMERIC])]
    with local_llm(script) as server:
        generator, _ = _generator(server.url, timeout_s=0.3)
        batch = await generator.generate(REQUEST)
    assert len(server.requests) == 2
    assert [c.kind for c in batch.candidates] == ["numeric"]


async def test_persistent_timeouts_end_unavailable() -> None:
    with local_llm([Reply(delay_s=1.0, body=b"{}")]) as server:
        generator, _ = _generator(server.url, timeout_s=0.2, max_attempts=2)
        with pytest.raises(GeneratorUnavailable, match="timeout, timeout"):
            await generator.generate(REQUEST)


async def test_malformed_reply_is_retried() -> None:
    script = [
        Reply(body=b"<html>gateway</html>"),
        completion("Sure! Here are your questions: ..."),
        questions([MCQ]),
    ]
    with local_llm(script) as server:
        generator, _ = _generator(server.url, max_attempts=3)
        batch = await generator.generate(REQUEST)
    assert len(server.requests) == 3
    assert len(batch.candidates) == 1


async def test_client_errors_are_not_retried() -> None:
    with local_llm([Reply(status=401, body=b'{"error": "bad key"}')]) as server:
        generator, delays = _generator(server.url)
        with pytest.raises(GeneratorUnavailable, match="HTTP 401"):
            await generator.generate(REQUEST)
    assert len(server.requests) == 1 and delays == []


async def test_connection_refused_is_unavailable() -> None:
    with local_llm([questions([])]) as server:
        url = server.url
    generator, _ = _generator(url, max_attempts=2)
    with pytest.raises(GeneratorUnavailable, match="connection error"):
        await generator.generate(REQUEST)


async def test_server_without_json_mode_is_asked_again_without_it() -> None:
    script = [
        Reply(status=400, body=b'{"error": "response_format not supported"}'),
        questions([MCQ]),
    ]
    with local_llm(script) as server:
        generator, delays = _generator(server.url)
        batch = await generator.generate(REQUEST)
    assert len(batch.candidates) == 1 and delays == []
    first, second = server.requests
    assert "response_format" in first and "response_format" not in second
    # and it stays off for the next calls of this generator
    with local_llm([questions([MCQ])]) as again:
        generator.base_url = again.url
        await generator.generate(REQUEST)
    assert "response_format" not in again.requests[0]


async def test_a_400_that_is_not_about_json_mode_is_not_retried() -> None:
    with local_llm([Reply(status=400)]) as server:
        generator, _ = _generator(server.url)
        with pytest.raises(GeneratorUnavailable, match="HTTP 400"):
            await generator.generate(REQUEST)
    assert len(server.requests) == 2


def _numeric_items(start: int, n: int) -> list[dict[str, Any]]:
    return [
        {
            "kind": "numeric",
            "prompt": f"What is {i} times 3?",
            "body": {"answer": i * 3, "tolerance": 0},
        }
        for i in range(start, start + n)
    ]


async def test_large_requests_are_split_into_calls() -> None:
    script = [
        questions(_numeric_items(0, 10)),
        questions(_numeric_items(10, 10)),
        Reply(status=500),
    ]
    request = GenerationRequest(topic="times tables", count=25, kinds=("numeric",), seed=5)
    with local_llm(script) as server:
        generator, _ = _generator(server.url, max_attempts=2)
        batch = await generator.generate(request)
    # Two good calls, then the third fails after its retries: keep what came back.
    assert len(batch.candidates) == 20
    assert batch.dropped == {"unavailable_call": 1}
    asked = [r["messages"][1]["content"] for r in server.requests]
    assert [a.splitlines()[0] for a in asked] == [
        "Write 10 exam questions.",
        "Write 10 exam questions.",
        "Write 5 exam questions.",
        "Write 5 exam questions.",
    ]
    assert "What is 0 times 3?" not in asked[0]
    assert "- What is 9 times 3?" in asked[1]  # earlier prompts are not to be repeated
    assert [r["seed"] for r in server.requests] == [5, 6, 7, 7]


async def test_the_time_budget_bounds_all_retries() -> None:
    with local_llm([Reply(delay_s=0.3, status=503)]) as server:
        generator, _ = _generator(server.url, max_attempts=50, budget_s=1.0)
        started = time.monotonic()
        with pytest.raises(GeneratorUnavailable, match="time budget spent"):
            await generator.generate(REQUEST)
        assert time.monotonic() - started < 2.0
    assert 2 <= len(server.requests) <= 5


async def test_invented_quotes_are_flagged() -> None:
    invented = {**MCQ, "source_passage": "Water boils at 90 degrees on Mars."}
    with local_llm([questions([invented])]) as server:
        generator, _ = _generator(server.url)
        batch = await generator.generate(REQUEST)
    assert batch.candidates[0].meta["passage_verified"] is False
