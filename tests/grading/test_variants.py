"""Parametric variants differ between students and grade correctly (with the grading rules)."""

from __future__ import annotations

import uuid
from typing import Any

from safexam.exams.kinds import instantiate, validate_parametric
from safexam.grading.scoring import score_fraction
from safexam.grading.service import QuestionRow, concrete_body

PROMPT = "A train covers {{ d }} km in {{ t }} hours. What is its average speed in km/h?"
BODY: dict[str, Any] = {
    "parameters": [
        {"name": "d", "min": 60, "max": 480, "step": 20},
        {"name": "t", "min": 2, "max": 8},
    ],
    "answer_expression": "d / t",
    "tolerance": 0.01,
}


def test_students_get_different_variants_and_each_is_graded_on_their_own() -> None:
    validate_parametric("numeric", PROMPT, BODY)
    question = QuestionRow(id=uuid.uuid4(), kind="numeric", prompt=PROMPT, body=BODY)
    entry = {"question_id": str(question.id)}
    seeds = range(1, 41)
    bodies = {seed: concrete_body(question, entry, seed) for seed in seeds}
    answers = {seed: body["answer"] for seed, body in bodies.items()}
    assert len(set(answers.values())) > 20  # a shared answer is useless to most students
    for seed, body in bodies.items():
        # What the session showed this student is the same variant the grader uses.
        prompt, shown, values = instantiate("numeric", PROMPT, BODY, f"{seed}:{question.id}")
        assert shown["answer"] == body["answer"] == values["d"] / values["t"]
        assert f"{values['d']} km" in prompt
        assert score_fraction("numeric", body, {"value": round(body["answer"], 2)}) == 1.0
    a, b = next((x, y) for x in seeds for y in seeds if answers[x] != answers[y])
    assert score_fraction("numeric", bodies[a], {"value": answers[b]}) == 0.0
    # Regrades recompute from the same seed: the same variant.
    assert concrete_body(question, entry, a) == bodies[a]


def test_stored_variant_values_win_over_the_seed() -> None:
    question = QuestionRow(id=uuid.uuid4(), kind="numeric", prompt=PROMPT, body=BODY)
    entry = {"question_id": str(question.id), "variant": {"values": {"d": 300, "t": 4}}}
    body = concrete_body(question, entry, 99)
    assert body["answer"] == 75
    assert score_fraction("numeric", body, {"value": 75}) == 1.0
