"""A short text: right when it is one of the accepted answers.

Both sides are compared after trimming, collapsing runs of whitespace and
case-folding (unless ``case_sensitive``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Annotated, Any

import msgspec

from safexam.exams.kinds.base import Kind, Strict

__all__ = ["ShortText", "ShortTextAnswer", "ShortTextBody", "normalize_text"]

_WHITESPACE = re.compile(r"\s+")


class ShortTextBody(Strict):
    answers: Annotated[
        list[Annotated[str, msgspec.Meta(min_length=1, max_length=500)]],
        msgspec.Meta(min_length=1, max_length=50),
    ]
    case_sensitive: bool = False


class ShortTextAnswer(Strict):
    text: Annotated[str, msgspec.Meta(max_length=2_000)]


def normalize_text(value: str, *, case_sensitive: bool) -> str:
    collapsed = _WHITESPACE.sub(" ", value.strip())
    return collapsed if case_sensitive else collapsed.casefold()


class ShortText(Kind):
    name = "short_text"
    body_type = ShortTextBody
    answer_type = ShortTextAnswer

    def public_view(
        self, body: Mapping[str, Any], choice_order: Sequence[str] | None
    ) -> dict[str, Any]:
        return {}

    def correct_answer(self, body: Mapping[str, Any]) -> dict[str, Any] | None:
        return {"answers": list(body.get("answers") or [])}

    def score(self, body: Mapping[str, Any], answer: Mapping[str, Any]) -> float:
        text = answer.get("text")
        if not isinstance(text, str):
            return 0.0
        case_sensitive = bool(body.get("case_sensitive"))
        given = normalize_text(text, case_sensitive=case_sensitive)
        if not given:
            return 0.0
        accepted = {
            normalize_text(a, case_sensitive=case_sensitive)
            for a in body.get("answers") or []
            if isinstance(a, str)
        }
        return 1.0 if given in accepted else 0.0

    def answer_texts(self, body: Mapping[str, Any]) -> list[str]:
        return [str(a) for a in body.get("answers") or []]
