"""Multiple choice: one right choice (``mcq_single``) or a set of them (``mcq_multi``).

Scoring: ``mcq_single`` earns everything when the chosen id is the answer id.
``mcq_multi`` earns everything when the chosen set equals the answer set; with
``partial_credit`` it earns (right picks - wrong picks) / number of right
answers, floored at zero.

A parametric ``mcq_single`` keeps its ``answer`` id fixed and makes its choice
texts templates: the correct choice is typically ``{{ a * b }}`` and the
distractors ``{{ a + b }}``, ``{{ a * b + a }}``. A distractor that renders to
the same text as the answer or an earlier choice is dropped for that variant,
so there is never a second correct-looking choice; authoring-time validation
makes that rare.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Annotated, Any, ClassVar

import msgspec

from safexam.core.errors import Unprocessable
from safexam.exams.kinds.base import ChoiceId, Kind, Strict, Text
from safexam.exams.variants import (
    Parameter,
    ParametricError,
    Value,
    check_parameters,
    describe,
    field_of,
    render,
)

__all__ = [
    "Choice",
    "McqMulti",
    "McqMultiAnswer",
    "McqMultiBody",
    "McqSingle",
    "McqSingleAnswer",
    "McqSingleBody",
]


class Choice(Strict):
    id: ChoiceId
    text: Text


Choices = Annotated[list[Choice], msgspec.Meta(min_length=2, max_length=26)]


def _check_choices(choices: list[Choice], answer: list[str]) -> None:
    ids = [c.id for c in choices]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise ValueError(f"choices: duplicate choice ids {', '.join(duplicates)}")
    texts = [c.text.strip().casefold() for c in choices]
    if len(set(texts)) != len(texts):
        raise ValueError("choices: two choices have the same text")
    unknown = [a for a in answer if a not in ids]
    if unknown:
        raise ValueError(f"answer: {', '.join(unknown)} is not among the choices")
    if len(set(answer)) != len(answer):
        raise ValueError("answer: lists a choice twice")


class McqSingleBody(Strict):
    choices: Choices
    answer: Annotated[list[ChoiceId], msgspec.Meta(min_length=1, max_length=1)]
    parameters: list[Parameter] | None = None

    def __post_init__(self) -> None:
        _check_choices(self.choices, self.answer)


class McqMultiBody(Strict):
    choices: Choices
    answer: Annotated[list[ChoiceId], msgspec.Meta(min_length=1, max_length=26)]
    # Partial credit: (right picks - wrong picks) / right answers, floored at zero.
    partial_credit: bool = False

    def __post_init__(self) -> None:
        _check_choices(self.choices, self.answer)


class McqSingleAnswer(Strict):
    choice: ChoiceId


class McqMultiAnswer(Strict):
    choices: Annotated[list[ChoiceId], msgspec.Meta(max_length=26)]


def _choice_ids(body: Any) -> set[str]:
    # Once per autosave of a choice question: kept to plain dict checks.
    return {c["id"] if isinstance(c, dict) else c.id for c in field_of(body, "choices") or []}


class _ChoiceKind(Kind):
    has_choices = True
    multiple: ClassVar[bool]

    def public_view(
        self, body: Mapping[str, Any], choice_order: Sequence[str] | None
    ) -> dict[str, Any]:
        choices = [{"id": c["id"], "text": c["text"]} for c in body["choices"]]
        if choice_order:
            by_id = {c["id"]: c for c in choices}
            choices = [by_id[i] for i in choice_order if i in by_id]
        return {"choices": choices, "multiple": self.multiple}

    def correct_answer(self, body: Mapping[str, Any]) -> dict[str, Any] | None:
        return {"choices": list(body.get("answer") or [])}

    def answer_texts(self, body: Mapping[str, Any]) -> list[str]:
        keys = set(body.get("answer") or [])
        return [c["text"] for c in body.get("choices") or [] if c.get("id") in keys]


class McqSingle(_ChoiceKind):
    name = "mcq_single"
    body_type = McqSingleBody
    answer_type = McqSingleAnswer
    parametric = True
    multiple = False

    def check_answer(self, body: Any, answer: McqSingleAnswer, field: str) -> None:
        if answer.choice not in _choice_ids(body):
            raise Unprocessable(
                f"choice {answer.choice!r} is not one of the question's choices",
                field=f"{field}.choice",
            )

    def score(self, body: Mapping[str, Any], answer: Mapping[str, Any]) -> float:
        key = body.get("answer") or []
        return 1.0 if key and answer.get("choice") == key[0] else 0.0

    def validate_variants(self, prompt: str, body: Any) -> None:
        parameters = field_of(body, "parameters")
        if not parameters:
            return super().validate_variants(prompt, body)
        texts = [
            (f"body.choices[{i}].text", str(field_of(choice, "text")))
            for i, choice in enumerate(field_of(body, "choices") or [])
        ]

        def distinct(values: dict[str, Value]) -> None:
            shown = [render(text, values).strip().casefold() for _, text in texts]
            for i, text in enumerate(shown):
                if text in shown[:i]:
                    raise ParametricError(
                        f"two choices show the same text {text!r} (for {describe(values)})",
                        f"body.choices[{i}].text",
                    )

        check_parameters(prompt, parameters, texts=texts, check_draw=distinct)

    def variant(self, body: Mapping[str, Any], values: Mapping[str, Value]) -> dict[str, Any]:
        concrete = super().variant(body, values)
        answer_ids = set(body.get("answer") or [])
        rendered = [
            {**choice, "text": render(choice["text"], values)} for choice in body["choices"]
        ]
        correct = {c["text"].strip().casefold() for c in rendered if c["id"] in answer_ids}
        kept: list[dict[str, Any]] = []
        seen: set[str] = set()
        for choice in rendered:
            key = choice["text"].strip().casefold()
            if choice["id"] not in answer_ids and (key in correct or key in seen):
                continue
            seen.add(key)
            kept.append(choice)
        concrete["choices"] = kept
        return concrete


class McqMulti(_ChoiceKind):
    name = "mcq_multi"
    body_type = McqMultiBody
    answer_type = McqMultiAnswer
    multiple = True

    def check_answer(self, body: Any, answer: McqMultiAnswer, field: str) -> None:
        known = _choice_ids(body)
        unknown = [c for c in answer.choices if c not in known]
        if unknown:
            raise Unprocessable(
                f"choices {', '.join(unknown)} are not among the question's choices",
                field=f"{field}.choices",
            )
        if len(set(answer.choices)) != len(answer.choices):
            raise Unprocessable("a choice is listed twice", field=f"{field}.choices")

    def score(self, body: Mapping[str, Any], answer: Mapping[str, Any]) -> float:
        right = set(body.get("answer") or [])
        picked = answer.get("choices")
        if not right or not isinstance(picked, list):
            return 0.0
        chosen = {c for c in picked if isinstance(c, str)}
        if not body.get("partial_credit"):
            return 1.0 if chosen == right else 0.0
        hits = len(chosen & right)
        misses = len(chosen - right)
        return max(0.0, (hits - misses) / len(right))
