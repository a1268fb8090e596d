from __future__ import annotations

from typing import Any

import pytest

from safexam.exams.expressions import ExpressionError
from safexam.exams.kinds import decode_body, instantiate, validate_parametric
from safexam.exams.variants import (
    ParametricError,
    answer_for,
    draw_variant,
    is_parametric,
    placeholders,
    render,
)


@pytest.fixture(autouse=True)
def _clean_state() -> None:
    """These tests touch neither PostgreSQL nor Redis (overrides the database cleanup)."""


SPEED_PROMPT = "{{ who }} drives {{ d }} km in {{ t }} h. What is the average speed in km/h?"
SPEED_BODY: dict[str, Any] = {
    "parameters": [
        {"name": "who", "values": ["Ana", "Ben", "Chen"]},
        {"name": "d", "min": 60, "max": 240, "step": 10},
        {"name": "t", "min": 1.5, "max": 4, "step": 0.5},
    ],
    "answer_expression": "d / t",
    "tolerance": 0.01,
}
AREA_PROMPT = "A rectangle is {{ a }} cm by {{ b }} cm. What is its area in cm²?"
AREA_BODY: dict[str, Any] = {
    "parameters": [{"name": "a", "min": 2, "max": 12}, {"name": "b", "min": 13, "max": 25}],
    "choices": [
        {"id": "a", "text": "{{ a + b }}"},
        {"id": "b", "text": "{{ a * b }}"},
        {"id": "c", "text": "{{ 2 * (a + b) }}"},
        {"id": "d", "text": "{{ a * b + a }}"},
    ],
    "answer": ["b"],
}


def test_draw_variant_is_deterministic_and_on_the_grid() -> None:
    params = SPEED_BODY["parameters"]
    assert draw_variant(params, 42) == draw_variant(params, 42)
    assert draw_variant(params, "session-1") == draw_variant(params, "session-1")
    seen = [draw_variant(params, seed) for seed in range(200)]
    assert len({(v["who"], v["d"], v["t"]) for v in seen}) > 50
    for values in seen:
        assert values["who"] in ("Ana", "Ben", "Chen")
        assert isinstance(values["d"], int) and 60 <= values["d"] <= 240 and values["d"] % 10 == 0
        t = values["t"]
        assert isinstance(t, float) and 1.5 <= t <= 4 and (t * 2).is_integer()
    # Every grid point is reachable, the ends included.
    assert {v["d"] for v in seen} >= {60, 240}
    assert {v["t"] for v in seen} == {1.5, 2.0, 2.5, 3.0, 3.5, 4.0}


def test_parameter_streams_are_independent_of_order() -> None:
    params = SPEED_BODY["parameters"]
    assert draw_variant(params, 7)["d"] == draw_variant(list(reversed(params)), 7)["d"]


def test_decimal_default_step_follows_the_written_precision() -> None:
    values = {draw_variant([{"name": "x", "min": 0.25, "max": 0.75}], s)["x"] for s in range(300)}
    assert values <= {round(0.25 + 0.01 * k, 2) for k in range(51)}
    assert len(values) > 20


def test_render_and_answer_for() -> None:
    values = {"who": "Ana", "d": 150, "t": 2.5}
    assert render(SPEED_PROMPT, values) == (
        "Ana drives 150 km in 2.5 h. What is the average speed in km/h?"
    )
    assert render("{{ round(d / t, 1) }} km/h", {"d": 100, "t": 3}) == "33.3 km/h"
    with pytest.raises(ExpressionError, match="unknown name"):
        render("{{ unknown }}", {"d": 1})
    assert answer_for("d / t", values) == 60
    with pytest.raises(ExpressionError, match="not a number"):
        answer_for("who * 2", values)
    assert placeholders("{{ a }} and {{b+1}}") == ["a", "b+1"]


def test_numeric_instantiate_grades_per_variant() -> None:
    decode_body("numeric", SPEED_BODY)
    validate_parametric("numeric", SPEED_PROMPT, SPEED_BODY)
    assert is_parametric(SPEED_BODY)
    variants = [instantiate("numeric", SPEED_PROMPT, SPEED_BODY, seed) for seed in range(30)]
    assert len({p for p, _, _ in variants}) > 10
    for prompt, body, values in variants:
        assert "{{" not in prompt
        assert body["answer"] == pytest.approx(values["d"] / values["t"])  # type: ignore[operator]
        assert "parameters" not in body and "answer_expression" not in body
        assert body["tolerance"] == 0.01
        decode_body("numeric", body)


def test_mcq_instantiate_keeps_answer_id_and_distinct_choices() -> None:
    decode_body("mcq_single", AREA_BODY)
    validate_parametric("mcq_single", AREA_PROMPT, AREA_BODY)
    for seed in range(50):
        _prompt, body, values = instantiate("mcq_single", AREA_PROMPT, AREA_BODY, seed)
        texts = {c["id"]: c["text"] for c in body["choices"]}
        assert texts["b"] == str(values["a"] * values["b"])  # type: ignore[operator]
        assert len(set(texts.values())) == len(texts) == 4
        assert body["answer"] == ["b"]
        decode_body("mcq_single", body)


def test_mcq_colliding_distractor_is_dropped_for_that_variant() -> None:
    body = {
        "parameters": [{"name": "a", "values": [2, 3]}],
        "choices": [
            {"id": "x", "text": "{{ a + a }}"},
            {"id": "y", "text": "{{ a * a }}"},
            {"id": "z", "text": "{{ a + 10 }}"},
        ],
        "answer": ["y"],
    }
    with pytest.raises(ParametricError) as info:
        validate_parametric("mcq_single", "a = {{ a }}", body)
    assert info.value.field == "body.choices[1].text"
    for seed in range(20):
        _, concrete, values = instantiate("mcq_single", "", body, seed)
        ids = [c["id"] for c in concrete["choices"]]
        assert ids == (["y", "z"] if values["a"] == 2 else ["x", "y", "z"])


def test_plain_bodies_pass_through() -> None:
    body = {"answer": 4, "tolerance": 0}
    assert instantiate("numeric", "2 + 2?", body, 1) == ("2 + 2?", body, {})
    validate_parametric("numeric", "2 + 2?", body)
    assert not is_parametric(body)


@pytest.mark.parametrize(
    ("kind", "prompt", "body", "field", "fragment"),
    [
        (
            "numeric",
            "{{ a }}",
            {"parameters": [{"name": "a", "min": 1, "max": 3}], "answer_expression": "a.real"},
            "body.answer_expression",
            "attribute",
        ),
        (
            "numeric",
            "{{ a }}",
            {"parameters": [{"name": "a", "min": 0, "max": 3}], "answer_expression": "10 / a"},
            "body.answer_expression",
            "division by zero (for a=0)",
        ),
        (
            "numeric",
            "{{ c }}",
            {"parameters": [{"name": "a", "min": 0, "max": 3}], "answer_expression": "a"},
            "prompt",
            "unknown name 'c'",
        ),
        (
            "numeric",
            "x",
            {
                "parameters": [
                    {"name": "a", "min": 0, "max": 3},
                    {"name": "a", "min": 0, "max": 3},
                ],
                "answer_expression": "a",
            },
            "body.parameters[1].name",
            "duplicate",
        ),
        (
            "numeric",
            "x",
            {"parameters": [{"name": "w", "values": ["x", "y"]}], "answer_expression": "w + 1"},
            "body.answer_expression",
            "not numeric",
        ),
        (
            "numeric",
            "x",
            {
                "parameters": [{"name": "a", "min": 0, "max": 1e9, "step": 1e-3}],
                "answer_expression": "a",
            },
            "body.parameters[0].step",
            "steps",
        ),
        (
            "short_text",
            "x",
            {"parameters": [{"name": "a", "min": 0, "max": 1}]},
            "body.parameters",
            "only supported",
        ),
        ("numeric", "{{ a }}", {"answer": 3}, "prompt", "declares no parameters"),
        (
            "mcq_single",
            "x",
            {
                "parameters": [{"name": "a", "min": 1, "max": 3}],
                "choices": [{"id": "a", "text": "{{ a ** 9 ** 9 }}"}],
            },
            "body.choices[0].text",
            "too large",
        ),
    ],
)
def test_validation_names_the_field(
    kind: str, prompt: str, body: dict[str, Any], field: str, fragment: str
) -> None:
    with pytest.raises(ParametricError) as info:
        validate_parametric(kind, prompt, body)
    assert info.value.field == field
    assert fragment in info.value.message
    assert info.value.status_code == 422
    assert info.value.details == [{"field": field, "message": info.value.message}]
