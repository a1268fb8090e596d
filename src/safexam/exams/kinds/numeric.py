"""A number: right when within ``tolerance`` (absolute) of the answer.

A parametric numeric question has ``answer_expression`` instead of a fixed
``answer``; each student's answer is that expression over their variant.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Annotated, Any

import msgspec

from safexam.exams.expressions import format_number
from safexam.exams.kinds.base import Kind, Strict
from safexam.exams.variants import Parameter, Value, answer_for, check_parameters, field_of

__all__ = ["Numeric", "NumericAnswer", "NumericBody"]

NonNegative = Annotated[float, msgspec.Meta(ge=0)]


class NumericBody(Strict):
    answer: float | None = None
    tolerance: NonNegative = 0.0
    # Parametric variant: the answer is computed per student from these.
    parameters: list[Parameter] | None = None
    answer_expression: Annotated[str, msgspec.Meta(min_length=1, max_length=500)] | None = None

    def __post_init__(self) -> None:
        if self.answer is None and self.answer_expression is None:
            raise ValueError("answer: required (or answer_expression with parameters)")
        if self.answer_expression is not None and not self.parameters:
            raise ValueError("parameters: answer_expression needs parameters")


class NumericAnswer(Strict):
    value: float


class Numeric(Kind):
    name = "numeric"
    body_type = NumericBody
    answer_type = NumericAnswer
    parametric = True

    def public_view(
        self, body: Mapping[str, Any], choice_order: Sequence[str] | None
    ) -> dict[str, Any]:
        return {}

    def correct_answer(self, body: Mapping[str, Any]) -> dict[str, Any] | None:
        if body.get("answer") is None:
            return None
        return {"value": body["answer"], "tolerance": body.get("tolerance", 0.0)}

    def score(self, body: Mapping[str, Any], answer: Mapping[str, Any]) -> float:
        expected = body.get("answer")
        value = answer.get("value")
        if isinstance(value, bool) or not isinstance(value, int | float):
            return 0.0
        if isinstance(expected, bool) or not isinstance(expected, int | float):
            return 0.0
        if not (math.isfinite(value) and math.isfinite(expected)):
            return 0.0
        tolerance = float(body.get("tolerance") or 0.0)
        # A hair of slack so 0.1 + 0.2 style representation errors never cost a point.
        slack = 1e-9 * max(1.0, abs(expected))
        return 1.0 if abs(value - expected) <= tolerance + slack else 0.0

    def answer_texts(self, body: Mapping[str, Any]) -> list[str]:
        value = body.get("answer")
        if not isinstance(value, int | float):
            return []
        texts = [format_number(value)]
        if isinstance(value, int) or float(value).is_integer():
            texts.append(f"{int(value):,}")
        return texts

    def validate_variants(self, prompt: str, body: Any) -> None:
        parameters = field_of(body, "parameters")
        if not parameters:
            return super().validate_variants(prompt, body)
        expression = field_of(body, "answer_expression")
        expressions = [] if expression is None else [("body.answer_expression", expression)]
        check_parameters(prompt, parameters, expressions=expressions)

    def variant(self, body: Mapping[str, Any], values: Mapping[str, Value]) -> dict[str, Any]:
        concrete = {k: v for k, v in body.items() if k not in ("parameters", "answer_expression")}
        expression = body.get("answer_expression")
        if expression:
            concrete["answer"] = answer_for(expression, values)
        return concrete
