"""The LLM generator: any OpenAI-compatible chat-completions endpoint, over httpx.

The model is asked for JSON in our own question schema (the bodies of
``safexam.exams.kinds``); the reply is decoded with msgspec and every item is checked with the
same body validation as a hand-written question. Items that are malformed,
of a kind nobody asked for, or invalid are dropped and counted by reason.

Transport failures are expected, not exceptional: 429 and 5xx answers,
timeouts, connection errors and unparseable replies are retried with
exponential backoff (honouring ``Retry-After``, capped) up to
``max_attempts``; after that, or on a non-retryable answer (401, 404 ...),
:class:`~safexam.qie.generators.GeneratorUnavailable` is raised. Nothing else
escapes, so a broken model cannot crash the job or the worker.
"""

from __future__ import annotations

import asyncio
import math
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any, Literal

import httpx
import msgspec
import structlog

from safexam.core.errors import Unprocessable
from safexam.core.settings import Settings
from safexam.exams.kinds import decode_body
from safexam.qie.generators import GeneratorUnavailable
from safexam.qie.schemas import Candidate, GeneratedBatch, GenerationRequest
from safexam.qie.text import normalize

__all__ = ["LLMGenerator", "build_messages"]

log = structlog.get_logger(__name__)

GENERATOR = "llm"
_RETRYABLE_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504})
_MAX_SOURCE_IN_PROMPT = 20_000
_MAX_AVOID = 50
_FENCE = re.compile(r"^\s*```(?:json)?\s*(.*?)\s*```\s*$", re.DOTALL)


class _Message(msgspec.Struct):
    content: str | None = None


class _Choice(msgspec.Struct):
    message: _Message


class _Completion(msgspec.Struct):
    choices: list[_Choice]


class _Item(msgspec.Struct, forbid_unknown_fields=False):
    kind: Literal["mcq_single", "mcq_multi", "short_text", "numeric"]
    prompt: str
    body: dict[str, Any]
    points: float = 1.0
    source_passage: str | None = None


class _Reply(msgspec.Struct):
    questions: list[msgspec.Raw]


_SCHEMA_HELP = """Reply with one JSON object and nothing else:
{"questions": [{"kind": ..., "prompt": "...", "body": {...}, "source_passage": "..."}]}
Bodies by kind:
- mcq_single: {"choices": [{"id": "a", "text": "..."}, ...], "answer": ["<one choice id>"]}
- mcq_multi: {"choices": [...], "answer": ["<choice ids>"], "partial_credit": true}
- short_text: {"answers": ["<accepted answer>", ...], "case_sensitive": false}
- numeric: {"answer": <number>, "tolerance": <number >= 0>}
Rules: 3 to 5 distinct choices; the answer must be among the choices; the prompt
must not contain the answer; every answer must be correct according to the
source text when one is given; source_passage quotes the sentence used."""


def build_messages(
    request: GenerationRequest, avoid: list[str] | None = None
) -> list[dict[str, str]]:
    """The chat messages for one call; ``avoid`` lists prompts already written."""
    parts = [
        f"Write {request.count} exam questions.",
        f"Allowed kinds: {', '.join(request.kinds)}.",
        f"Difficulty: {request.difficulty or 'medium'}.",
    ]
    if request.topic:
        parts.append(f"Topic: {request.topic}")
    if request.source_text:
        parts.append("Source text:\n<<<\n" + request.source_text[:_MAX_SOURCE_IN_PROMPT] + "\n>>>")
    if avoid:
        parts.append("Do not repeat these questions:\n" + "\n".join(f"- {p}" for p in avoid))
    return [
        {"role": "system", "content": "You write exam questions. " + _SCHEMA_HELP},
        {"role": "user", "content": "\n".join(parts)},
    ]


class _Retry(Exception):
    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


class LLMGenerator:
    """Questions from an OpenAI-compatible ``/chat/completions`` endpoint."""

    name = GENERATOR

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: str | None = None,
        *,
        timeout_s: float = 120.0,
        max_attempts: int = 4,
        backoff_s: float = 1.0,
        max_backoff_s: float = 30.0,
        chunk_size: int = 10,
        budget_s: float = 600.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.model: str | None = model
        self.api_key = api_key
        self.timeout_s = timeout_s
        self.max_attempts = max(1, max_attempts)
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        # Several small calls rather than one big one: replies stay well inside
        # a model's output limit, and one bad reply costs only its part.
        self.chunk_size = max(1, chunk_size)
        # The whole generation, retries included, ends within this; it stays
        # below the qie actor's time limit so the job records a clean outcome.
        self.budget_s = budget_s
        self._json_mode = True
        self._sleep = sleep

    @classmethod
    def from_settings(cls, settings: Settings) -> LLMGenerator:
        if not settings.llm_base_url:
            raise GeneratorUnavailable(
                "the LLM generator is not configured (SAFEXAM_LLM_BASE_URL)", retryable=False
            )
        return cls(
            settings.llm_base_url,
            settings.llm_model or "gpt-4o-mini",
            settings.llm_api_key,
        )

    async def generate(self, request: GenerationRequest) -> GeneratedBatch:
        """Ask in calls of at most :attr:`chunk_size` questions, each with its own retries.

        A call that fails after earlier calls succeeded ends the generation
        with what was obtained (counted as ``unavailable_call``); only when
        nothing at all came back is :class:`GeneratorUnavailable` raised.
        """
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        candidates: list[Candidate] = []
        dropped: dict[str, int] = {}
        deadline = time.monotonic() + self.budget_s
        async with httpx.AsyncClient(timeout=self.timeout_s, headers=headers) as client:
            for call in range(math.ceil(request.count / self.chunk_size)):
                wanted = min(self.chunk_size, request.count - call * self.chunk_size)
                part = msgspec.structs.replace(request, count=wanted, seed=request.seed + call)
                avoid = [c.prompt for c in candidates][-_MAX_AVOID:]
                try:
                    batch = await self._call(client, part, avoid, deadline)
                except GeneratorUnavailable:
                    if call == 0:
                        raise
                    dropped["unavailable_call"] = dropped.get("unavailable_call", 0) + 1
                    break
                candidates.extend(batch.candidates)
                for reason, n in batch.dropped.items():
                    dropped[reason] = dropped.get(reason, 0) + n
        return GeneratedBatch(candidates=candidates, dropped=dropped)

    async def _call(
        self,
        client: httpx.AsyncClient,
        request: GenerationRequest,
        avoid: list[str],
        deadline: float,
    ) -> GeneratedBatch:
        payload: dict[str, Any] = {
            "model": self.model,
            "messages": build_messages(request, avoid),
            "temperature": 0.2,
            "seed": request.seed,
        }
        if self._json_mode:
            payload["response_format"] = {"type": "json_object"}
        url = f"{self.base_url}/chat/completions"
        failures: list[str] = []
        for attempt in range(1, self.max_attempts + 1):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                failures.append("time budget spent")
                break
            try:
                return await self._attempt(client, url, payload, request, remaining)
            except _Retry as retry:
                failures.append(retry.reason)
                log.warning("qie_llm_retry", attempt=attempt, reason=retry.reason, model=self.model)
                if attempt == self.max_attempts:
                    break
                delay = min(self.max_backoff_s, self.backoff_s * 2 ** (attempt - 1))
                if retry.retry_after is not None:
                    delay = min(self.max_backoff_s, max(delay, retry.retry_after))
                if time.monotonic() + delay >= deadline:
                    failures.append("time budget spent")
                    break
                await self._sleep(delay)
        raise GeneratorUnavailable(
            f"the LLM did not answer usefully after {len(failures)} attempts: "
            + ", ".join(failures)
        )

    async def _attempt(
        self,
        client: httpx.AsyncClient,
        url: str,
        payload: dict[str, Any],
        request: GenerationRequest,
        remaining_s: float,
    ) -> GeneratedBatch:
        limit_s = max(0.05, min(self.timeout_s, remaining_s))
        response = await self._post(client, url, payload, limit_s)
        if response.status_code == 400 and "response_format" in payload:
            # Some compatible servers do not know JSON mode; the prompt asks
            # for JSON anyway, so ask again without it (and keep it off).
            del payload["response_format"]
            self._json_mode = False
            log.info("qie_llm_without_json_mode", model=self.model)
            response = await self._post(client, url, payload, limit_s)
        if response.status_code in _RETRYABLE_STATUS:
            raise _Retry(f"HTTP {response.status_code}", _retry_after(response))
        if response.status_code >= 400:
            raise GeneratorUnavailable(
                f"the LLM endpoint refused the request: HTTP {response.status_code}",
                retryable=False,
            )
        try:
            completion = msgspec.json.decode(response.content, type=_Completion)
            content = completion.choices[0].message.content or ""
            fenced = _FENCE.match(content)
            reply = msgspec.json.decode(
                (fenced.group(1) if fenced else content).encode(), type=_Reply
            )
        except (msgspec.DecodeError, IndexError):
            raise _Retry("malformed reply") from None
        return self._items(reply, request)

    @staticmethod
    async def _post(
        client: httpx.AsyncClient, url: str, payload: dict[str, Any], limit_s: float
    ) -> httpx.Response:
        try:
            # httpx's own per-request timeout: it covers connect, write and read.
            return await client.post(url, json=payload, timeout=limit_s)
        except httpx.TimeoutException:
            raise _Retry("timeout") from None
        except httpx.TransportError as exc:
            raise _Retry(f"connection error ({type(exc).__name__})") from None

    def _items(self, reply: _Reply, request: GenerationRequest) -> GeneratedBatch:
        dropped: dict[str, int] = {}

        def drop(reason: str) -> None:
            dropped[reason] = dropped.get(reason, 0) + 1

        candidates: list[Candidate] = []
        source = normalize(request.source_text) if request.source_text else None
        for raw in reply.questions:
            try:
                item = msgspec.json.decode(raw, type=_Item)
            except msgspec.DecodeError:
                drop("malformed_item")
                continue
            if item.kind not in request.kinds:
                drop("unrequested_kind")
                continue
            try:
                decode_body(item.kind, item.body)
            except Unprocessable:
                drop("invalid_item")
                continue
            if not item.prompt.strip():
                drop("invalid_item")
                continue
            meta: dict[str, Any] = {"difficulty": request.difficulty or "medium"}
            if item.source_passage and source is not None:
                # Models paraphrase and invent quotes; tell the reviewer which.
                meta["passage_verified"] = normalize(item.source_passage) in source
            candidates.append(
                Candidate(
                    kind=item.kind,
                    prompt=item.prompt.strip(),
                    body=item.body,
                    points=item.points if 0 < item.points <= 100 else 1.0,
                    generator=GENERATOR,
                    model=self.model,
                    passage=item.source_passage,
                    meta=meta,
                )
            )
        return GeneratedBatch(candidates=candidates, dropped=dropped)
