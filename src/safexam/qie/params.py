"""Parametric questions: per-student variants drawn from declared parameters.

The body shapes are those of :mod:`safexam.exams.kinds`. A parameter is a
numeric range (``min``, ``max``, optional ``step``) or a list of ``values``
(numbers or words)::

    {"kind": "numeric",
     "prompt": "{{ who }} drives {{ d }} km in {{ t }} h. Average speed in km/h?",
     "body": {"parameters": [{"name": "who", "values": ["Ana", "Ben"]},
                             {"name": "d", "min": 60, "max": 240, "step": 10},
                             {"name": "t", "min": 1.5, "max": 4, "step": 0.5}],
              "answer_expression": "d / t", "tolerance": 0.01}}

A range whose ``min``, ``max`` and ``step`` are whole numbers draws integers
(the default step is 1); otherwise it draws decimals on the step grid (the
default step is one unit in the last decimal place of ``min``/``max``).

Placeholders ``{{ ... }}`` in the prompt and, for ``mcq_single``, in choice
texts hold a parameter name or any expression of :mod:`safexam.qie.expressions`
(``{{ round(d / t, 1) }}``). For a parametric ``mcq_single`` the ``answer`` id
stays fixed and choice texts are templates: the correct choice is typically
``{{ a * b }}`` and the distractors ``{{ a + b }}``, ``{{ a * b + a }}``.

Functions for the other domains (pure and deterministic):

- :func:`validate_parametric` (authoring): raises :class:`ParametricError`, a
  422 :class:`~safexam.core.errors.Unprocessable` naming the field
  (``body.answer_expression``, ``body.choices[1].text``, ``prompt`` ...).
  It also draws a sample of variants, so an expression that divides by zero
  for some students, or MCQ choices that coincide, are refused up front.
- :func:`draw_variant` (session start): ``(parameters, seed) -> {name: value}``.
  The same seed always yields the same values, so resume, grading, review and
  regrades all see the variant the student saw; persist the seed (or values).
- :func:`render`: substitutes the placeholders of a prompt or choice text.
- :func:`answer_for`: the numeric value of an expression for a variant.
- :func:`instantiate` (sessions, grading, review): turns a parametric question
  and a seed into an ordinary concrete ``(prompt, body, values)`` that the
  per-kind graders already understand (numeric ``answer``; MCQ ``choices``).
  Parametric MCQ distractors that render to the same text as the answer or an
  earlier choice are dropped for that variant, so there is never a second
  correct-looking choice; validation makes that rare.
"""

from __future__ import annotations

import ast
import hashlib
import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import msgspec

from safexam.core.errors import Unprocessable
from safexam.exams.kinds import Parameter
from safexam.qie.expressions import (
    CompiledExpression,
    ExpressionError,
    Number,
    compile_expression,
    format_number,
)

__all__ = [
    "ParametricError",
    "Value",
    "answer_for",
    "draw_variant",
    "instantiate",
    "is_parametric",
    "placeholders",
    "render",
    "validate_parametric",
]

Value = int | float | str

MAX_PARAMETERS = 20
MAX_STEPS = 10_000_000
# Seeds tried at authoring time; cheap, and catches failures only some
# variants would hit (a zero divisor, two MCQ choices that coincide).
VALIDATION_DRAWS = 40
_PLACEHOLDER = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)
_SOURCE_PLACEHOLDER = "SOURCE"


class ParametricError(Unprocessable):
    """A parametric question is invalid; a 422 whose ``field`` names the problem."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message, field=field)
        self.field = field


@dataclass(frozen=True)
class _Range:
    name: str
    start: Decimal
    step: Decimal
    count: int
    integral: bool


@dataclass(frozen=True)
class _Choices:
    name: str
    values: tuple[Value, ...]


def _as_value(value: float | str) -> Value:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _places(value: float) -> int:
    exponent = Decimal(repr(value)).normalize().as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


def _normalize(param: Parameter | Mapping[str, Any], where: str) -> _Range | _Choices:
    if not isinstance(param, Parameter):
        try:
            param = msgspec.convert(param, Parameter)
        except msgspec.ValidationError as exc:
            raise ParametricError(str(exc).split(" - at `")[0], where) from None
    if param.values is not None:
        return _Choices(param.name, tuple(_as_value(v) for v in param.values))
    assert param.min is not None and param.max is not None
    lo, hi = param.min, param.max
    integral = lo.is_integer() and hi.is_integer() and (param.step or 1.0).is_integer()
    if param.step is not None:
        step = Decimal(repr(param.step))
    elif integral:
        step = Decimal(1)
    else:
        step = Decimal(1).scaleb(-max(_places(lo), _places(hi)))
    span = Decimal(repr(hi)) - Decimal(repr(lo))
    count = int(span / step) + 1
    if count > MAX_STEPS:
        raise ParametricError(f"range has more than {MAX_STEPS} steps", f"{where}.step")
    return _Range(param.name, Decimal(repr(lo)), step, count, integral)


def _seed_int(seed: int | str | bytes, name: str) -> int:
    # One stream per parameter: adding or reordering parameters does not
    # change the values drawn for the others.
    raw = seed if isinstance(seed, bytes) else str(seed).encode()
    return int.from_bytes(hashlib.sha256(raw + b"\x00" + name.encode()).digest()[:8], "big")


def _draw(params: Sequence[_Range | _Choices], seed: int | str | bytes) -> dict[str, Value]:
    values: dict[str, Value] = {}
    for param in params:
        rng = random.Random(_seed_int(seed, param.name))  # noqa: S311 - variants, not secrets
        if isinstance(param, _Choices):
            values[param.name] = param.values[rng.randrange(len(param.values))]
            continue
        exact = param.start + param.step * rng.randrange(param.count)
        values[param.name] = int(exact) if param.integral else float(exact)
    return values


def draw_variant(
    parameters: Sequence[Parameter | Mapping[str, Any]], seed: int | str | bytes
) -> dict[str, Value]:
    """The parameter values for one seed: deterministic, uniform over each range's grid."""
    return _draw([_normalize(p, f"body.parameters[{i}]") for i, p in enumerate(parameters)], seed)


def placeholders(text: str) -> list[str]:
    """The expressions inside ``{{ ... }}`` of a prompt or choice text, in order."""
    return [m.strip() for m in _PLACEHOLDER.findall(text)]


def _compile_placeholders(text: str, names: Sequence[str], where: str) -> list[CompiledExpression]:
    compiled = []
    for source in placeholders(text):
        if source == _SOURCE_PLACEHOLDER:
            continue
        try:
            compiled.append(compile_expression(source, names))
        except ExpressionError as exc:
            raise ParametricError(f"{{{{ {source} }}}}: {exc.message}", where) from None
    return compiled


def _show(value: Value) -> str:
    return value if isinstance(value, str) else format_number(value)


def render(text: str, values: Mapping[str, Value]) -> str:
    """Replace each ``{{ expression }}`` with its value for this variant.

    A bare parameter name shows the value as drawn (words included); any other
    expression is evaluated over the numeric parameters. Raises
    :class:`ExpressionError` for an expression that does not evaluate.
    """

    def replace(match: re.Match[str]) -> str:
        source = match.group(1).strip()
        if source in values:
            return _show(values[source])
        if source == _SOURCE_PLACEHOLDER:
            return match.group(0)
        return format_number(answer_for(source, values))

    return _PLACEHOLDER.sub(replace, text)


def answer_for(expression: str, values: Mapping[str, Value]) -> Number:
    """Evaluate ``expression`` for one variant; word parameters are not numbers."""
    compiled = compile_expression(expression, values.keys())
    words = sorted(n for n in compiled.names if isinstance(values[n], str))
    if words:
        raise ExpressionError(f"parameter {words[0]!r} is not a number")
    return compiled.evaluate(values)


def _get(body: Any, name: str) -> Any:
    return body.get(name) if isinstance(body, Mapping) else getattr(body, name, None)


def is_parametric(body: Any) -> bool:
    """Whether a question body declares parameters (and so varies per student)."""
    return bool(_get(body, "parameters"))


def _choice_field(choice: Any, name: str) -> str:
    return str(choice[name] if isinstance(choice, Mapping) else getattr(choice, name))


def validate_parametric(kind: str, prompt: str, body: Any) -> None:
    """Check the parametric part of a question; raises :class:`ParametricError` (422).

    ``body`` is the decoded body (a kinds Struct) or a plain dict. Bodies
    without parameters pass, unless their prompt uses placeholders.
    """
    raw_params = _get(body, "parameters") or []
    if not raw_params:
        if placeholders(prompt):
            raise ParametricError("the prompt uses {{ ... }} but declares no parameters", "prompt")
        return
    if kind not in ("numeric", "mcq_single"):
        raise ParametricError(
            "parameters are only supported for numeric and mcq_single", "body.parameters"
        )
    if len(raw_params) > MAX_PARAMETERS:
        raise ParametricError(f"at most {MAX_PARAMETERS} parameters", "body.parameters")
    params = [_normalize(p, f"body.parameters[{i}]") for i, p in enumerate(raw_params)]
    names = [p.name for p in params]
    for i, name in enumerate(names):
        if name in names[:i]:
            raise ParametricError(f"duplicate parameter {name!r}", f"body.parameters[{i}].name")
    checks: list[tuple[str, list[CompiledExpression]]] = [
        ("prompt", _compile_placeholders(prompt, names, "prompt"))
    ]
    if kind == "numeric":
        expression = _get(body, "answer_expression")
        if expression is not None:
            try:
                checks.append(("body.answer_expression", [compile_expression(expression, names)]))
            except ExpressionError as exc:
                raise ParametricError(exc.message, "body.answer_expression") from None
    choices = list(_get(body, "choices") or []) if kind == "mcq_single" else []
    for i, choice in enumerate(choices):
        where = f"body.choices[{i}].text"
        checks.append((where, _compile_placeholders(_choice_field(choice, "text"), names, where)))
    words = {
        p.name
        for p in params
        if isinstance(p, _Choices) and any(isinstance(v, str) for v in p.values)
    }
    for where, compiled_list in checks:
        for compiled in compiled_list:
            # A bare word parameter is fine in text; in arithmetic it is not.
            if isinstance(compiled.tree, ast.Name) and where != "body.answer_expression":
                continue
            used_words = sorted(compiled.names & words)
            if used_words:
                raise ParametricError(f"parameter {used_words[0]!r} is not numeric", where)
    for seed in range(VALIDATION_DRAWS):
        values = _draw(params, seed)
        numeric_values = {k: v for k, v in values.items() if not isinstance(v, str)}
        for where, compiled_list in checks:
            for compiled in compiled_list:
                if isinstance(compiled.tree, ast.Name):
                    continue
                try:
                    compiled.evaluate(numeric_values)
                except ExpressionError as exc:
                    shown = ", ".join(f"{k}={_show(v)}" for k, v in values.items())
                    raise ParametricError(f"{exc.message} (for {shown})", where) from None
        if choices:
            texts = [render(_choice_field(c, "text"), values).strip().casefold() for c in choices]
            for i, text in enumerate(texts):
                if text in texts[:i]:
                    shown = ", ".join(f"{k}={_show(v)}" for k, v in values.items())
                    raise ParametricError(
                        f"two choices show the same text {text!r} (for {shown})",
                        f"body.choices[{i}].text",
                    )


def instantiate(
    kind: str, prompt: str, body: Mapping[str, Any], seed: int | str | bytes
) -> tuple[str, dict[str, Any], dict[str, Value]]:
    """The concrete ``(prompt, body, values)`` the student with ``seed`` gets.

    A body without parameters is returned as is (with values ``{}``). The
    concrete body keeps every other key (``tolerance``, ``answer`` ids ...)
    and drops ``parameters`` and ``answer_expression``, so it grades exactly
    like a hand-written question.
    """
    raw_params = body.get("parameters")
    if not raw_params:
        return prompt, dict(body), {}
    values = draw_variant(raw_params, seed)
    concrete = {k: v for k, v in body.items() if k not in ("parameters", "answer_expression")}
    if kind == "numeric" and body.get("answer_expression"):
        concrete["answer"] = answer_for(body["answer_expression"], values)
    if kind == "mcq_single":
        answer_ids = set(body.get("answer") or [])
        rendered = [
            {**choice, "text": render(choice["text"], values)} for choice in body["choices"]
        ]
        correct = {c["text"].strip().casefold() for c in rendered if c["id"] in answer_ids}
        kept: list[dict[str, Any]] = []
        seen: set[str] = set()
        for choice in rendered:
            key = choice["text"].strip().casefold()
            is_answer = choice["id"] in answer_ids
            if not is_answer and (key in correct or key in seen):
                continue
            seen.add(key)
            kept.append(choice)
        concrete["choices"] = kept
    return render(prompt, values), concrete, values
