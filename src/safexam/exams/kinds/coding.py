"""A program: judged against the question's tests by the coding domain's runners.

The answer stored by autosave is only a draft; the score comes from the
submission that counts (the last before the deadline, or the best with
``scoring: best``), so this kind does not score answers. The languages are
those of :mod:`safexam.coding.languages`, and the comparison modes and the
template's source placeholder those of :mod:`safexam.coding.compare`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Literal

import msgspec

from safexam.coding.compare import SOURCE_PLACEHOLDER, parse_comparison
from safexam.coding.languages import LANGUAGES
from safexam.core.errors import Unprocessable
from safexam.exams.kinds.base import Kind, Strict
from safexam.exams.variants import field_of

__all__ = ["Coding", "CodingAnswer", "CodingBody", "CodingLimits", "CodingTest"]

# Checked against the known languages in CodingBody, so an unknown one is named.
LanguageName = Annotated[str, msgspec.Meta(min_length=1, max_length=32)]
Code = Annotated[str, msgspec.Meta(max_length=100_000)]
# As much as a whole exam item may be worth (exams.schemas.Points).
TestPoints = Annotated[float, msgspec.Meta(ge=0, le=10_000)]


class CodingTest(Strict):
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
    expected_output: Annotated[str, msgspec.Meta(max_length=1_000_000)]
    stdin: Annotated[str, msgspec.Meta(max_length=1_000_000)] = ""
    points: TestPoints = 1.0
    hidden: bool = False


class CodingLimits(Strict):
    cpu_time_s: Annotated[float, msgspec.Meta(gt=0, le=30)] = 2.0
    wall_time_s: Annotated[float, msgspec.Meta(gt=0, le=60)] = 5.0
    memory_mb: Annotated[int, msgspec.Meta(ge=16, le=4096)] = 256
    output_kb: Annotated[int, msgspec.Meta(ge=1, le=4096)] = 64


class CodingBody(Strict):
    languages: Annotated[list[LanguageName], msgspec.Meta(min_length=1, max_length=len(LANGUAGES))]
    tests: Annotated[list[CodingTest], msgspec.Meta(min_length=1, max_length=100)]
    starter_code: dict[LanguageName, Code] = {}
    template: dict[LanguageName, Code] = {}
    comparison: str = "trimmed"
    limits: CodingLimits = msgspec.field(default_factory=CodingLimits)
    # Which submission counts: the last one before the deadline, or the best.
    scoring: Literal["last", "best"] = "last"

    def __post_init__(self) -> None:
        for index, lang in enumerate(self.languages):
            if lang not in LANGUAGES:
                raise ValueError(
                    f"languages[{index}]: {lang!r} is not one of {', '.join(LANGUAGES)}"
                )
        if len(set(self.languages)) != len(self.languages):
            raise ValueError("languages: a language is listed twice")
        for lang in (*self.starter_code, *self.template):
            if lang not in self.languages:
                raise ValueError(
                    f"languages: starter_code/template for {lang}, which is not in languages"
                )
        for lang, text in self.template.items():
            if not SOURCE_PLACEHOLDER.search(text):
                raise ValueError(
                    f"template: the {lang} template has no {{{{ SOURCE }}}} placeholder"
                )
        names = [t.name for t in self.tests]
        if len(set(names)) != len(names):
            raise ValueError("tests: two tests share a name")
        try:
            parse_comparison(self.comparison)
        except ValueError:
            raise ValueError("comparison: must be exact, trimmed, tokens or float:EPS") from None


class CodingAnswer(Strict):
    """A draft of the student's code, autosaved; grading goes through submissions."""

    language: LanguageName
    source: Annotated[str, msgspec.Meta(max_length=64_000)]


class Coding(Kind):
    name = "coding"
    body_type = CodingBody
    answer_type = CodingAnswer
    scored_from_answer = False

    def check_answer(self, body: Any, answer: CodingAnswer, field: str) -> None:
        if answer.language not in (field_of(body, "languages") or []):
            raise Unprocessable(
                f"language {answer.language} is not allowed for this question",
                field=f"{field}.language",
            )

    def public_view(
        self, body: Mapping[str, Any], choice_order: Sequence[str] | None
    ) -> dict[str, Any]:
        limits = body.get("limits") or {}
        return {
            "languages": list(body["languages"]),
            "starter_code": dict(body.get("starter_code") or {}),
            "visible_tests": [
                {
                    "name": t["name"],
                    "stdin": t.get("stdin", ""),
                    "expected_output": t["expected_output"],
                }
                for t in body["tests"]
                if not t.get("hidden", False)
            ],
            "limits": {
                k: limits[k]
                for k in ("cpu_time_s", "wall_time_s", "memory_mb", "output_kb")
                if k in limits
            },
        }

    def correct_answer(self, body: Mapping[str, Any]) -> dict[str, Any] | None:
        # Even after release, hidden tests keep their data: a question bank is reused
        # across exams, and hidden inputs are what stop hard-coded outputs.
        return {
            "tests": [
                {"name": t.get("name"), "points": t.get("points", 1.0), "hidden": True}
                if t.get("hidden")
                else {
                    "name": t.get("name"),
                    "points": t.get("points", 1.0),
                    "hidden": False,
                    "stdin": t.get("stdin", ""),
                    "expected_output": t.get("expected_output"),
                }
                for t in body.get("tests") or []
            ]
        }

    def score(self, body: Mapping[str, Any], answer: Mapping[str, Any]) -> float:
        raise ValueError("coding questions are not scored from the answer")

    def validate_variants(self, prompt: str, body: Any) -> None:
        """Nothing to check: ``{{ ... }}`` in a coding prompt is template text, not a parameter."""
