"""What every question kind declares, and the field shapes kinds share.

A kind is one module with a :class:`Kind` subclass: the shape of its body (the
educator's, with the answer key) and of a student's answer, both strict
msgspec structs whose ``__post_init__`` holds the rules that span fields; the
rules that join an answer to its question; what a student may see; the answer
key shown in review; the score of an answer; and how a parametric body becomes
one student's variant. Bodies and answers arrive here as stored, plain dicts:
scoring runs once per response of a closing exam and must not decode them.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, ClassVar

import msgspec

from safexam.exams.variants import Value, check_plain_prompt

__all__ = ["ChoiceId", "Kind", "Strict", "Text"]

ChoiceId = Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
Text = Annotated[str, msgspec.Meta(min_length=1, max_length=5_000)]


class Strict(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=False):
    """Bodies and answers: an unknown field is an error, and defaults are stored."""


class Kind(ABC):
    """One kind of question; its instance is registered under :attr:`name`."""

    name: ClassVar[str]
    body_type: ClassVar[type[Strict]]
    answer_type: ClassVar[type[Strict]]
    # False when the score comes from elsewhere (a coding question's submissions).
    scored_from_answer: ClassVar[bool] = True
    # Whether a body may declare parameters, giving each student a variant.
    parametric: ClassVar[bool] = False
    # Whether the body has choices the paper puts in an order (shuffled on request).
    has_choices: ClassVar[bool] = False

    def check_answer(self, body: Any, answer: Any, field: str) -> None:
        """Refuse an answer that fits the shape but not this question (422 naming the field).

        ``answer`` is a decoded :attr:`answer_type`; ``body`` a dict or a decoded body.
        Most kinds have nothing to add to the answer's shape.
        """
        return None

    @abstractmethod
    def public_view(
        self, body: Mapping[str, Any], choice_order: Sequence[str] | None
    ) -> dict[str, Any]:
        """What a student may see of the body before results are released.

        An allow-list, not a deny-list: a field added to a body later stays
        secret until someone decides to show it. ``choice_order`` is the
        paper's order of the choices, for kinds that have them.
        """

    @abstractmethod
    def correct_answer(self, body: Mapping[str, Any]) -> dict[str, Any] | None:
        """The answer key as a student sees it in review, after release."""

    @abstractmethod
    def score(self, body: Mapping[str, Any], answer: Mapping[str, Any]) -> float:
        """The fraction of the points ``answer`` earns, in [0, 1]; 0 for a malformed one.

        ``body`` is the concrete body (a variant's own); ``answer`` is the
        stored answer, not decoded again.
        """

    def answer_texts(self, body: Mapping[str, Any]) -> list[str]:
        """How the answer could be spelled out in a prompt (a generated stem must not)."""
        return []

    def validate_variants(self, prompt: str, body: Any) -> None:
        """Check the parametric part of a question (422 naming the field).

        Called only for bodies without parameters unless :attr:`parametric`.
        """
        check_plain_prompt(prompt)

    def variant(self, body: Mapping[str, Any], values: Mapping[str, Value]) -> dict[str, Any]:
        """The concrete body for one draw of a parametric body's parameters.

        It grades like a hand-written body of the kind: no ``parameters`` left.
        """
        return {k: v for k, v in body.items() if k != "parameters"}
