"""The one interface every question generator implements."""

from __future__ import annotations

from typing import Protocol

from safexam.qie.schemas import GeneratedBatch, GenerationRequest

__all__ = ["Generator", "GeneratorUnavailable"]


class GeneratorUnavailable(RuntimeError):
    """The generator cannot produce anything (e.g. the LLM is down after its retries).

    ``retryable`` says whether trying again later may help (an outage) or not
    (a refused API key, a generator that is not configured).
    """

    def __init__(self, message: str, *, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable


class Generator(Protocol):
    """Turns a request into candidate questions; never raises except GeneratorUnavailable."""

    name: str
    model: str | None

    async def generate(self, request: GenerationRequest) -> GeneratedBatch: ...
