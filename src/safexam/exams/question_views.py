"""A bank question as others meet it: the student's view, and a parametric
question's sample variants.

Both go through the same registry functions the student's paper and grading
use (:func:`instantiate`, :func:`public_view`, :func:`correct_answer`), so what
the author previews is what a student gets and what is graded.
"""

from __future__ import annotations

from typing import Any

import msgspec

from safexam.exams.kinds import correct_answer, instantiate, public_view
from safexam.exams.models import Question
from safexam.exams.variants import Value
from safexam.sessions.schemas import PaperQuestion

__all__ = [
    "MAX_SAMPLES",
    "PREVIEW_SEED",
    "VariantOut",
    "is_parametric",
    "sample_variants",
    "student_view",
]

# The seed of the author's preview: the same variant at every visit.
PREVIEW_SEED = "preview"
MAX_SAMPLES = 10


class VariantOut(msgspec.Struct, kw_only=True):
    """One draw of a parametric question: its values, the prompt and key they give."""

    seed: str
    values: dict[str, Value]
    prompt: str
    body: dict[str, Any]
    answer: dict[str, Any] | None


def is_parametric(question: Question) -> bool:
    return bool(question.body.get("parameters"))


def student_view(question: Question, seed: str = PREVIEW_SEED) -> PaperQuestion:
    """The question as it would stand on a student's paper (choices in the author's order)."""
    prompt, body, _values = instantiate(question.kind, question.prompt, question.body, seed)
    view = public_view(question.kind, body)
    return PaperQuestion(
        id=question.id,
        kind=question.kind,
        prompt=prompt,
        points=float(question.points),
        choices=view.get("choices"),
        multiple=view.get("multiple"),
        languages=view.get("languages"),
        starter_code=view.get("starter_code"),
        visible_tests=view.get("visible_tests"),
        limits=view.get("limits"),
    )


def sample_variants(question: Question, count: int = 3) -> list[VariantOut]:
    """``count`` variants of a parametric question (none for a plain one), each with
    its key; distinct ones when the parameters have that many."""
    if not is_parametric(question):
        return []
    wanted = min(count, MAX_SAMPLES)
    samples: list[VariantOut] = []
    seen: list[dict[str, Value]] = []
    # Different values where the parameters allow them: a few more draws than asked.
    for index in range(1, wanted * 4 + 1):
        if len(samples) == wanted:
            break
        seed = f"sample-{index}"
        prompt, body, values = instantiate(question.kind, question.prompt, question.body, seed)
        if values in seen and index <= wanted * 3:
            continue
        seen.append(values)
        samples.append(
            VariantOut(
                seed=seed,
                values=values,
                prompt=prompt,
                body=body,
                answer=correct_answer(question.kind, body),
            )
        )
    return samples
