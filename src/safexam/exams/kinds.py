"""Question kinds: the educator's body and the student's answer, per DESIGN section 5.

Bodies are decoded strictly with msgspec (unknown fields rejected); the rules
that span fields (answer among the choices, unique choice ids, a template that
has a place for the source) run in ``__post_init__`` so every path that builds
a body, the API, the generator or a regrade, gets the same checks and the
same 422 naming the field.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

import msgspec

from safexam.core.errors import Unprocessable

__all__ = [
    "ANSWER_TYPES",
    "BODY_TYPES",
    "LANGUAGES",
    "Choice",
    "CodingAnswer",
    "CodingBody",
    "CodingLimits",
    "CodingTest",
    "McqMultiAnswer",
    "McqMultiBody",
    "McqSingleAnswer",
    "McqSingleBody",
    "NumericAnswer",
    "NumericBody",
    "QuestionKind",
    "ShortTextAnswer",
    "ShortTextBody",
    "decode_answer",
    "decode_body",
    "public_view",
]

QuestionKind = Literal["mcq_single", "mcq_multi", "numeric", "short_text", "coding"]
LANGUAGES = ("python", "c", "cpp", "java", "javascript")
Language = Literal["python", "c", "cpp", "java", "javascript"]
SOURCE_PLACEHOLDER = "{{ SOURCE }}"

ChoiceId = Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
Text = Annotated[str, msgspec.Meta(min_length=1, max_length=5_000)]
NonNegative = Annotated[float, msgspec.Meta(ge=0)]
# As much as a whole exam item may be worth (exams.schemas.Points).
TestPoints = Annotated[float, msgspec.Meta(ge=0, le=10_000)]
_COMPARISON = re.compile(r"^(exact|trimmed|tokens|float:(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?)$")


class _Strict(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=False):
    pass


class Choice(_Strict):
    id: ChoiceId
    text: Text


class Parameter(_Strict):
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


class McqSingleBody(_Strict):
    choices: Annotated[list[Choice], msgspec.Meta(min_length=2, max_length=26)]
    answer: Annotated[list[ChoiceId], msgspec.Meta(min_length=1, max_length=1)]
    parameters: list[Parameter] | None = None

    def __post_init__(self) -> None:
        _check_choices(self.choices, self.answer)


class McqMultiBody(_Strict):
    choices: Annotated[list[Choice], msgspec.Meta(min_length=2, max_length=26)]
    answer: Annotated[list[ChoiceId], msgspec.Meta(min_length=1, max_length=26)]
    # Partial credit: (right picks - wrong picks) / right answers, floored at zero.
    partial_credit: bool = False

    def __post_init__(self) -> None:
        _check_choices(self.choices, self.answer)


class NumericBody(_Strict):
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


class ShortTextBody(_Strict):
    answers: Annotated[
        list[Annotated[str, msgspec.Meta(min_length=1, max_length=500)]],
        msgspec.Meta(min_length=1, max_length=50),
    ]
    case_sensitive: bool = False


class CodingTest(_Strict):
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
    expected_output: Annotated[str, msgspec.Meta(max_length=1_000_000)]
    stdin: Annotated[str, msgspec.Meta(max_length=1_000_000)] = ""
    points: TestPoints = 1.0
    hidden: bool = False


class CodingLimits(_Strict):
    cpu_time_s: Annotated[float, msgspec.Meta(gt=0, le=30)] = 2.0
    wall_time_s: Annotated[float, msgspec.Meta(gt=0, le=60)] = 5.0
    memory_mb: Annotated[int, msgspec.Meta(ge=16, le=4096)] = 256
    output_kb: Annotated[int, msgspec.Meta(ge=1, le=4096)] = 64


class CodingBody(_Strict):
    languages: Annotated[list[Language], msgspec.Meta(min_length=1, max_length=5)]
    tests: Annotated[list[CodingTest], msgspec.Meta(min_length=1, max_length=100)]
    starter_code: dict[Language, Annotated[str, msgspec.Meta(max_length=100_000)]] = {}
    template: dict[Language, Annotated[str, msgspec.Meta(max_length=100_000)]] = {}
    comparison: str = "trimmed"
    limits: CodingLimits = msgspec.field(default_factory=CodingLimits)
    # Which submission counts: the last one before the deadline, or the best.
    scoring: Literal["last", "best"] = "last"

    def __post_init__(self) -> None:
        if len(set(self.languages)) != len(self.languages):
            raise ValueError("languages: a language is listed twice")
        for lang in (*self.starter_code, *self.template):
            if lang not in self.languages:
                raise ValueError(
                    f"languages: starter_code/template for {lang}, which is not in languages"
                )
        for lang, text in self.template.items():
            if SOURCE_PLACEHOLDER not in text:
                raise ValueError(
                    f"template: the {lang} template has no {SOURCE_PLACEHOLDER} placeholder"
                )
        names = [t.name for t in self.tests]
        if len(set(names)) != len(names):
            raise ValueError("tests: two tests share a name")
        if not _COMPARISON.match(self.comparison):
            raise ValueError("comparison: must be exact, trimmed, tokens or float:EPS")


BODY_TYPES: dict[str, type[_Strict]] = {
    "mcq_single": McqSingleBody,
    "mcq_multi": McqMultiBody,
    "numeric": NumericBody,
    "short_text": ShortTextBody,
    "coding": CodingBody,
}


class McqSingleAnswer(_Strict):
    choice: ChoiceId


class McqMultiAnswer(_Strict):
    choices: Annotated[list[ChoiceId], msgspec.Meta(max_length=26)]


class NumericAnswer(_Strict):
    value: float


class ShortTextAnswer(_Strict):
    text: Annotated[str, msgspec.Meta(max_length=2_000)]


class CodingAnswer(_Strict):
    """A draft of the student's code, autosaved; grading goes through submissions."""

    language: Language
    source: Annotated[str, msgspec.Meta(max_length=64_000)]


ANSWER_TYPES: dict[str, type[_Strict]] = {
    "mcq_single": McqSingleAnswer,
    "mcq_multi": McqMultiAnswer,
    "numeric": NumericAnswer,
    "short_text": ShortTextAnswer,
    "coding": CodingAnswer,
}


def _path_of(message: str) -> str | None:
    match = re.search(r"at `\$\.?([^`]*)`", message)
    path = match.group(1) if match else None
    # msgspec names an unknown or missing field in the message, not in the path;
    # append it so the 422 points at the field itself.
    named = re.match(r"Object (?:contains unknown|missing required) field `([^`]+)`", message)
    if named:
        path = f"{path}.{named.group(1)}" if path else named.group(1)
    return path


def decode_body(kind: str, raw: Any, *, field: str = "body") -> Any:
    """The typed body for ``kind``, or a 422 whose field names the offending part."""
    body_type = BODY_TYPES.get(kind)
    if body_type is None:
        raise Unprocessable(f"unknown question kind {kind!r}", field="kind")
    try:
        return msgspec.convert(raw, body_type)
    except msgspec.ValidationError as exc:
        message = str(exc)
        inner = _path_of(message)
        text = message.split(" - at `")[0]
        # Cross-field rules say "<field>: problem"; point the error at that field.
        rule = re.match(r"^([a-z_]+): (.*)$", text)
        if rule:
            inner = f"{inner}.{rule.group(1)}" if inner else rule.group(1)
            text = f"{rule.group(1)}: {rule.group(2)}"
        where = f"{field}.{inner}" if inner else field
        raise Unprocessable(text, field=where) from None


def decode_answer(kind: str, body: Any, raw: Any, *, field: str = "answer") -> Any:
    """Validate a student's answer against the question's kind and choices."""
    answer_type = ANSWER_TYPES[kind]
    try:
        answer = msgspec.convert(raw, answer_type)
    except msgspec.ValidationError as exc:
        message = str(exc)
        inner = _path_of(message)
        raise Unprocessable(
            message.split(" - at `")[0], field=f"{field}.{inner}" if inner else field
        ) from None
    choice_ids = {c["id"] if isinstance(c, dict) else c.id for c in _get(body, "choices") or []}
    if isinstance(answer, McqSingleAnswer) and answer.choice not in choice_ids:
        raise Unprocessable(
            f"choice {answer.choice!r} is not one of the question's choices",
            field=f"{field}.choice",
        )
    if isinstance(answer, McqMultiAnswer):
        unknown = [c for c in answer.choices if c not in choice_ids]
        if unknown:
            raise Unprocessable(
                f"choices {', '.join(unknown)} are not among the question's choices",
                field=f"{field}.choices",
            )
        if len(set(answer.choices)) != len(answer.choices):
            raise Unprocessable("a choice is listed twice", field=f"{field}.choices")
    if isinstance(answer, CodingAnswer):
        languages = _get(body, "languages") or []
        if answer.language not in languages:
            raise Unprocessable(
                f"language {answer.language} is not allowed for this question",
                field=f"{field}.language",
            )
    return answer


def _get(body: Any, name: str) -> Any:
    return body.get(name) if isinstance(body, dict) else getattr(body, name, None)


def public_view(
    kind: str, body: dict[str, Any], choice_order: list[str] | None = None
) -> dict[str, Any]:
    """What a student may see of a question body before results are released.

    An allow-list, not a deny-list: a field added to a body later stays secret
    until someone decides to show it.
    """
    view: dict[str, Any] = {}
    if kind in ("mcq_single", "mcq_multi"):
        choices = [{"id": c["id"], "text": c["text"]} for c in body["choices"]]
        if choice_order:
            by_id = {c["id"]: c for c in choices}
            choices = [by_id[i] for i in choice_order if i in by_id]
        view["choices"] = choices
        view["multiple"] = kind == "mcq_multi"
    elif kind == "coding":
        view["languages"] = list(body["languages"])
        view["starter_code"] = dict(body.get("starter_code") or {})
        view["visible_tests"] = [
            {
                "name": t["name"],
                "stdin": t.get("stdin", ""),
                "expected_output": t["expected_output"],
            }
            for t in body["tests"]
            if not t.get("hidden", False)
        ]
        limits = body.get("limits") or {}
        view["limits"] = {
            k: limits[k]
            for k in ("cpu_time_s", "wall_time_s", "memory_mb", "output_kb")
            if k in limits
        }
    return view
