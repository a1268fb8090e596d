"""Per-student variants: parameters, their draws, and placeholders, whatever the kind.

A parametric question declares parameters in its body: a numeric range
(``min``, ``max``, optional ``step``) or a list of ``values`` (numbers or
words)::

    {"kind": "numeric",
     "prompt": "{{ who }} drives {{ d }} km in {{ t }} h. Average speed in km/h?",
     "body": {"parameters": [{"name": "who", "values": ["Ana", "Ben"]},
                             {"name": "d", "min": 60, "max": 240, "step": 10},
                             {"name": "t", "min": 1.5, "max": 4, "step": 0.5}],
              "answer_expression": "d / t", "tolerance": 0.01}}

A range whose ``min``, ``max`` and ``step`` are whole numbers draws integers
(the default step is 1); otherwise it draws decimals on the step grid (the
default step is one unit in the last decimal place of ``min``/``max``).

Placeholders ``{{ ... }}`` hold a parameter name or any expression of
:mod:`safexam.exams.expressions` (``{{ round(d / t, 1) }}``). What a kind
templates besides the prompt (an answer expression, choice texts) and how a
variant of its body is made is the kind's own business
(:mod:`safexam.exams.kinds`); this module is the part they share:

- :func:`draw_variant`: ``(parameters, seed) -> {name: value}``. The same seed
  always yields the same values, so resume, grading, review and regrades all
  see the variant the student saw.
- :func:`render`: substitutes the placeholders of a prompt or choice text.
- :func:`answer_for`: the numeric value of an expression for a variant.
- :func:`check_parameters`: authoring-time validation, raising
  :class:`ParametricError` (a 422 naming the field). It also draws a sample of
  variants, so an expression that divides by zero for some students is
  refused up front.
"""

from __future__ import annotations

import ast
import hashlib
import random
import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Annotated, Any

import msgspec

from safexam.coding.compare import SOURCE_PLACEHOLDER
from safexam.core.errors import Unprocessable
from safexam.exams.expressions import (
    CompiledExpression,
    ExpressionError,
    Number,
    compile_expression,
    format_number,
)

__all__ = [
    "Parameter",
    "ParametricError",
    "Value",
    "answer_for",
    "check_parameters",
    "check_plain_prompt",
    "describe",
    "draw_variant",
    "field_of",
    "is_parametric",
    "placeholders",
    "render",
    "variant_seed",
    "variant_values",
]

Value = int | float | str

MAX_PARAMETERS = 20
MAX_STEPS = 10_000_000
# Seeds tried at authoring time; cheap, and catches failures only some
# variants would hit (a zero divisor, two MCQ choices that coincide).
VALIDATION_DRAWS = 40
_PLACEHOLDER = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)


class Parameter(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=False):
    """A parameter of a per-student variant: a numeric range with step, or a list of values."""

    name: Annotated[str, msgspec.Meta(pattern=r"^[a-z_][a-z0-9_]{0,31}$")]
    min: float | None = None
    max: float | None = None
    step: float | None = None
    values: list[float | str] | None = None

    def __post_init__(self) -> None:
        ranged = self.min is not None and self.max is not None
        if ranged == (self.values is not None):
            raise ValueError("a parameter has either min/max (with optional step) or values")
        if ranged and self.max < self.min:  # type: ignore[operator]
            raise ValueError("parameter max must be >= min")
        if self.step is not None and self.step <= 0:
            raise ValueError("parameter step must be positive")
        if self.values is not None and not self.values:
            raise ValueError("parameter values must not be empty")


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


def field_of(body: Any, name: str) -> Any:
    """A field of a body, whether a plain dict (as stored) or a decoded struct."""
    # dict first: checking against the Mapping ABC costs more, on every autosave.
    return body.get(name) if isinstance(body, dict | Mapping) else getattr(body, name, None)


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


def variant_seed(session_seed: int, question_id: uuid.UUID) -> str:
    """The seed of one question's variant on one paper; the view, grading and review share it."""
    return f"{session_seed}:{question_id}"


def variant_values(
    parameters: Sequence[Parameter | Mapping[str, Any]], stored: Any, seed: str
) -> dict[str, Value]:
    """The values of a paper's variant: those stored on the paper entry, or drawn.

    ``stored`` is the entry's ``variant``: values (``{"values": {...}}`` or the
    bare mapping), a seed of its own, or nothing (then ``seed`` is drawn).
    """
    if isinstance(stored, Mapping):
        return dict(stored.get("values", stored))
    return draw_variant(parameters, stored if isinstance(stored, int | str) else seed)


def placeholders(text: str) -> list[str]:
    """The expressions inside ``{{ ... }}`` of a prompt or choice text, in order."""
    return [m.strip() for m in _PLACEHOLDER.findall(text)]


def _compile_placeholders(text: str, names: Sequence[str], where: str) -> list[CompiledExpression]:
    compiled = []
    for match in _PLACEHOLDER.finditer(text):
        if SOURCE_PLACEHOLDER.fullmatch(match.group(0)):
            continue
        source = match.group(1).strip()
        try:
            compiled.append(compile_expression(source, names))
        except ExpressionError as exc:
            raise ParametricError(f"{{{{ {source} }}}}: {exc.message}", where) from None
    return compiled


def _show(value: Value) -> str:
    return value if isinstance(value, str) else format_number(value)


def describe(values: Mapping[str, Value]) -> str:
    """``a=2, who=Ana``: the variant an authoring error happened for."""
    return ", ".join(f"{k}={_show(v)}" for k, v in values.items())


def render(text: str, values: Mapping[str, Value]) -> str:
    """Replace each ``{{ expression }}`` with its value for this variant.

    A bare parameter name shows the value as drawn (words included); any other
    expression is evaluated over the numeric parameters. A coding template's
    source placeholder is left as it is. Raises :class:`ExpressionError` for
    an expression that does not evaluate.
    """

    def replace(match: re.Match[str]) -> str:
        source = match.group(1).strip()
        if source in values:
            return _show(values[source])
        if SOURCE_PLACEHOLDER.fullmatch(match.group(0)):
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


def is_parametric(body: Any) -> bool:
    """Whether a question body declares parameters (and so varies per student)."""
    return bool(field_of(body, "parameters"))


def check_plain_prompt(prompt: str) -> None:
    """A question without parameters has nothing to put in ``{{ ... }}``."""
    if placeholders(prompt):
        raise ParametricError("the prompt uses {{ ... }} but declares no parameters", "prompt")


def check_parameters(
    prompt: str,
    parameters: Sequence[Parameter | Mapping[str, Any]],
    *,
    expressions: Sequence[tuple[str, str]] = (),
    texts: Sequence[tuple[str, str]] = (),
    check_draw: Callable[[dict[str, Value]], None] | None = None,
) -> None:
    """Check parameters and every place that uses them; raises :class:`ParametricError`.

    ``expressions`` are ``(field, expression)`` pairs that must give a number
    (an answer expression); ``texts`` are ``(field, text)`` pairs with
    placeholders besides the prompt (choice texts). Every one is compiled
    against the declared names and evaluated for a sample of draws, after
    which ``check_draw`` sees the draw's values (a kind's own rule, such as
    choices that must stay distinct).
    """
    if len(parameters) > MAX_PARAMETERS:
        raise ParametricError(f"at most {MAX_PARAMETERS} parameters", "body.parameters")
    params = [_normalize(p, f"body.parameters[{i}]") for i, p in enumerate(parameters)]
    names = [p.name for p in params]
    for i, name in enumerate(names):
        if name in names[:i]:
            raise ParametricError(f"duplicate parameter {name!r}", f"body.parameters[{i}].name")
    checks: list[tuple[str, list[CompiledExpression]]] = [
        ("prompt", _compile_placeholders(prompt, names, "prompt"))
    ]
    for where, expression in expressions:
        try:
            checks.append((where, [compile_expression(expression, names)]))
        except ExpressionError as exc:
            raise ParametricError(exc.message, where) from None
    for where, text in texts:
        checks.append((where, _compile_placeholders(text, names, where)))
    numeric_only = {where for where, _ in expressions}
    words = {
        p.name
        for p in params
        if isinstance(p, _Choices) and any(isinstance(v, str) for v in p.values)
    }
    for where, compiled_list in checks:
        for compiled in compiled_list:
            # A bare word parameter is fine in text; in arithmetic it is not.
            if isinstance(compiled.tree, ast.Name) and where not in numeric_only:
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
                    raise ParametricError(
                        f"{exc.message} (for {describe(values)})", where
                    ) from None
        if check_draw is not None:
            check_draw(values)
