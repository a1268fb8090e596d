"""The one interface every question generator implements."""

from __future__ import annotations

from typing import Protocol

from safexam.qie.schemas import GeneratedBatch, GenerationRequest

__all__ = ["Generator", "GeneratorUnavailable"]


class GeneratorUnavailable(RuntimeError):
    """The generator cannot produce anything right now (e.g. the LLM is down after retries)."""


class Generator(Protocol):
    """Turns a request into candidate questions; never raises except GeneratorUnavailable."""

    name: str
    model: str | None

    async def generate(self, request: GenerationRequest) -> GeneratedBatch: ...
