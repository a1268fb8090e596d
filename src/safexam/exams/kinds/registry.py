"""The registry of question kinds, and what the other domains ask it.

Authoring decodes bodies, sessions decode answers and show the student's
view, grading scores, review shows the answer key, and every one of them
turns a parametric question into the student's own variant: each through one
function here that looks the kind up in :data:`KINDS`, so none of them names
a kind.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import msgspec

from safexam.core.errors import Unprocessable
from safexam.exams.kinds.base import Kind
from safexam.exams.variants import (
    ParametricError,
    Value,
    draw_variant,
    field_of,
    render,
    variant_values,
)

__all__ = [
    "KINDS",
    "QuestionKind",
    "concrete_body",
    "concrete_question",
    "correct_answer",
    "decode_answer",
    "decode_body",
    "instantiate",
    "kind_of",
    "public_view",
    "register",
    "score_fraction",
    "validate_parametric",
]

# The kinds the API accepts; each is a module of this package, registered below.
QuestionKind = Literal["mcq_single", "mcq_multi", "numeric", "short_text", "coding"]

KINDS: dict[str, Kind] = {}


def register(kind: Kind) -> Kind:
    """Add ``kind`` to the registry under its name (once)."""
    if kind.name in KINDS:
        raise ValueError(f"question kind {kind.name!r} is registered twice")
    KINDS[kind.name] = kind
    return kind


def kind_of(name: str) -> Kind:
    """The kind called ``name``; ``ValueError`` for an unknown one."""
    kind = KINDS.get(name)
    if kind is None:
        raise ValueError(f"unknown question kind {name!r}")
    return kind


# ---------------------------------------------------------------- decoding


def _path_of(message: str) -> str | None:
    match = re.search(r"at `\$\.?([^`]*)`", message)
    path = match.group(1) if match else None
    # msgspec names an unknown or missing field in the message, not in the path;
    # append it so the 422 points at the field itself.
    named = re.match(r"Object (?:contains unknown|missing required) field `([^`]+)`", message)
    if named:
        path = f"{path}.{named.group(1)}" if path else named.group(1)
    return path


def decode_body(kind: str, raw: Any, *, field: str = "body", strict: bool = True) -> Any:
    """The typed body for ``kind``, or a 422 whose field names the offending part.

    Bodies are decoded strictly (unknown fields rejected); the rules that span
    fields run in the body's ``__post_init__``, so every path that builds a
    body (the API, the generator, a regrade) gets the same checks and the
    same 422 naming the field. ``strict=False`` lets text stand for numbers and
    booleans, as a page's form sends them.
    """
    known = KINDS.get(kind)
    if known is None:
        raise Unprocessable(f"unknown question kind {kind!r}", field="kind")
    try:
        return msgspec.convert(raw, known.body_type, strict=strict)
    except msgspec.ValidationError as exc:
        message = str(exc)
        inner = _path_of(message)
        text = message.split(" - at `")[0]
        # Cross-field rules say "<field>: problem" (or "<field>[i]: problem");
        # point the error at that field.
        rule = re.match(r"^([a-z_]+(?:\[\d+\])?): (.*)$", text)
        if rule:
            inner = f"{inner}.{rule.group(1)}" if inner else rule.group(1)
            text = f"{rule.group(1)}: {rule.group(2)}"
        where = f"{field}.{inner}" if inner else field
        raise Unprocessable(text, field=where) from None


def decode_answer(kind: str, body: Any, raw: Any, *, field: str = "answer") -> Any:
    """Validate a student's answer against the question's kind and body (422 naming the field)."""
    known = KINDS[kind]
    try:
        answer = msgspec.convert(raw, known.answer_type)
    except msgspec.ValidationError as exc:
        message = str(exc)
        inner = _path_of(message)
        raise Unprocessable(
            message.split(" - at `")[0], field=f"{field}.{inner}" if inner else field
        ) from None
    known.check_answer(body, answer, field)
    return answer


# ---------------------------------------------------------------- student, review, grading


def public_view(
    kind: str, body: Mapping[str, Any], choice_order: Sequence[str] | None = None
) -> dict[str, Any]:
    """What a student may see of a question body before results are released."""
    known = KINDS.get(kind)
    return {} if known is None else known.public_view(body, choice_order)


def correct_answer(kind: str, body: Mapping[str, Any]) -> dict[str, Any] | None:
    """The answer key as a student sees it in review, after release."""
    known = KINDS.get(kind)
    return None if known is None else known.correct_answer(body)


def score_fraction(kind: str, body: Mapping[str, Any], answer: Any) -> float:
    """The fraction of the points an answer earns (0 for no answer or a malformed one).

    Shared by grading and bulk regrades so both always agree; the fraction is
    multiplied by what the question is worth on the student's paper.
    """
    known = KINDS.get(kind)
    if known is None or not known.scored_from_answer:
        raise ValueError(f"{kind} questions are not scored from the answer")
    # dict first: the Mapping ABC check alone would cost more than most rules.
    if not isinstance(answer, dict | Mapping):
        return 0.0
    return known.score(body, answer)


# ---------------------------------------------------------------- variants


def validate_parametric(kind: str, prompt: str, body: Any) -> None:
    """Check the parametric part of a question; raises ``ParametricError`` (422).

    ``body`` is the decoded body (a kind's struct) or a plain dict. Bodies
    without parameters pass, unless their prompt uses placeholders where the
    kind reads them as parameters.
    """
    known = kind_of(kind)
    if field_of(body, "parameters") and not known.parametric:
        supported = " and ".join(name for name, k in KINDS.items() if k.parametric)
        raise ParametricError(f"parameters are only supported for {supported}", "body.parameters")
    known.validate_variants(prompt, body)


def instantiate(
    kind: str, prompt: str, body: Mapping[str, Any], seed: int | str | bytes
) -> tuple[str, dict[str, Any], dict[str, Value]]:
    """The concrete ``(prompt, body, values)`` the student with ``seed`` gets.

    A body without parameters is returned as is (with values ``{}``); a
    parametric one becomes an ordinary body of its kind that grades exactly
    like a hand-written question.
    """
    parameters = body.get("parameters")
    if not parameters:
        return prompt, dict(body), {}
    values = draw_variant(parameters, seed)
    return render(prompt, values), kind_of(kind).variant(body, values), values


def concrete_question(
    kind: str, prompt: str, body: dict[str, Any], variant: Any, seed: str
) -> tuple[str, dict[str, Any]]:
    """The prompt and body one paper shows: a parametric question's own variant.

    ``variant`` is the paper entry's (stored values or seed, usually none) and
    ``seed`` the paper's seed for this question (``variants.variant_seed``),
    the same for the view, grading and review, so the values shown are the
    values graded.
    """
    parameters = body.get("parameters")
    if not parameters:
        return prompt, body
    values = variant_values(parameters, variant, seed)
    return render(prompt, values), kind_of(kind).variant(body, values)


def concrete_body(kind: str, body: dict[str, Any], variant: Any, seed: str) -> dict[str, Any]:
    """The body one paper's answer is scored against (see :func:`concrete_question`)."""
    parameters = body.get("parameters")
    if not parameters:
        return body
    return kind_of(kind).variant(body, variant_values(parameters, variant, seed))
