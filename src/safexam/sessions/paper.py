"""The student's paper: which questions, in which order, with which choice order.

A paper is fixed once, at session start, from a seed stored in the session row,
and then kept in ``exam_sessions.paper``. Building it is a pure function of
the seed and its inputs, so the same seed over the same exam gives the same
paper (tests rely on that, and so does anyone auditing a disputed paper).
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from safexam.exams.kinds import KINDS

__all__ = ["ItemSpec", "QuestionSpec", "build_paper", "paper_question_ids"]


@dataclass(frozen=True)
class ItemSpec:
    """One exam item: a fixed question, or a draw of ``draw_count`` from ``draw_tag``."""

    position: int
    points: float
    question_id: uuid.UUID | None = None
    draw_tag: str | None = None
    draw_count: int | None = None


@dataclass(frozen=True)
class QuestionSpec:
    """What the paper needs to know of a question: its kind and its choice ids."""

    id: uuid.UUID
    kind: str
    choice_ids: tuple[str, ...] = ()


def build_paper(
    seed: int,
    items: Sequence[ItemSpec],
    questions: Mapping[uuid.UUID, QuestionSpec],
    pools: Mapping[str, Sequence[uuid.UUID]],
    *,
    shuffle_questions: bool,
    shuffle_choices: bool,
) -> list[dict[str, Any]]:
    """The paper for ``seed``: ``[{question_id, points, position, choice_order, variant}]``.

    ``pools`` maps a draw tag to the candidate question ids; candidates are
    sorted before sampling so the database's row order cannot change a draw.
    A question already on the paper (fixed or drawn earlier) is never drawn
    again. A pool smaller than its draw gives every candidate it has.
    """
    # Reproducible by design; the seed itself comes from `secrets` and is never shown.
    rng = random.Random(seed)  # noqa: S311
    fixed = {item.question_id for item in items if item.question_id is not None}
    used: set[uuid.UUID] = set(fixed)
    entries: list[dict[str, Any]] = []
    for item in sorted(items, key=lambda i: i.position):
        if item.question_id is not None:
            picked = [item.question_id]
        else:
            candidates = sorted(
                (q for q in pools.get(item.draw_tag or "", ()) if q not in used), key=str
            )
            picked = rng.sample(candidates, min(item.draw_count or 0, len(candidates)))
            used.update(picked)
        for question_id in picked:
            entries.append(
                {
                    "question_id": str(question_id),
                    "points": float(item.points),
                    "position": item.position,
                    "choice_order": None,
                    "variant": None,
                }
            )
    if shuffle_questions:
        rng.shuffle(entries)
    for entry in entries:
        spec = questions.get(uuid.UUID(entry["question_id"]))
        if spec is not None and spec.choice_ids and KINDS[spec.kind].has_choices:
            order = list(spec.choice_ids)
            if shuffle_choices:
                rng.shuffle(order)
            entry["choice_order"] = order
    return entries


def paper_question_ids(paper: Sequence[Mapping[str, Any]]) -> list[uuid.UUID]:
    return [uuid.UUID(str(entry["question_id"])) for entry in paper]
