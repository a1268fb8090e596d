"""Question kinds: one module per kind, behind one registry.

Each kind (:class:`~safexam.exams.kinds.base.Kind`) declares its body and
answer shapes with their validation, the student's view, the answer key shown
in review, the scoring of an answer and how a parametric body becomes one
student's variant. Authoring, sessions, grading, review and question
generation ask the registry (:mod:`safexam.exams.kinds.registry`), never a
kind by name. A new kind is a new module here, registered below, plus its
name in :data:`QuestionKind`.
"""

from __future__ import annotations

from safexam.coding.languages import LANGUAGES
from safexam.exams.kinds.base import Kind, Strict
from safexam.exams.kinds.coding import Coding, CodingAnswer, CodingBody, CodingLimits, CodingTest
from safexam.exams.kinds.mcq import (
    Choice,
    McqMulti,
    McqMultiAnswer,
    McqMultiBody,
    McqSingle,
    McqSingleAnswer,
    McqSingleBody,
)
from safexam.exams.kinds.numeric import Numeric, NumericAnswer, NumericBody
from safexam.exams.kinds.registry import (
    KINDS,
    QuestionKind,
    concrete_body,
    concrete_question,
    correct_answer,
    decode_answer,
    decode_body,
    instantiate,
    kind_of,
    public_view,
    register,
    score_fraction,
    validate_parametric,
)
from safexam.exams.kinds.short_text import ShortText, ShortTextAnswer, ShortTextBody
from safexam.exams.variants import Parameter

__all__ = [
    "ANSWER_TYPES",
    "BODY_TYPES",
    "KINDS",
    "LANGUAGES",
    "Choice",
    "CodingAnswer",
    "CodingBody",
    "CodingLimits",
    "CodingTest",
    "Kind",
    "McqMultiAnswer",
    "McqMultiBody",
    "McqSingleAnswer",
    "McqSingleBody",
    "NumericAnswer",
    "NumericBody",
    "Parameter",
    "QuestionKind",
    "ShortTextAnswer",
    "ShortTextBody",
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

for _kind in (McqSingle(), McqMulti(), Numeric(), ShortText(), Coding()):
    register(_kind)

BODY_TYPES: dict[str, type[Strict]] = {name: k.body_type for name, k in KINDS.items()}
ANSWER_TYPES: dict[str, type[Strict]] = {name: k.answer_type for name, k in KINDS.items()}
