"""The per-kind scoring rules, as pure functions."""

from __future__ import annotations

import pytest

from safexam.grading.scoring import normalize_text, score_fraction

CHOICES = [{"id": c, "text": c} for c in "abcde"]


@pytest.mark.parametrize(
    ("answer", "expected"),
    [({"choice": "b"}, 1.0), ({"choice": "a"}, 0.0), ({}, 0.0), (None, 0.0), ({"choice": 3}, 0.0)],
)
def test_mcq_single(answer: object, expected: float) -> None:
    assert score_fraction("mcq_single", {"choices": CHOICES, "answer": ["b"]}, answer) == expected


@pytest.mark.parametrize(
    ("picked", "all_or_nothing", "partial"),
    [
        (["a", "c"], 1.0, 1.0),
        (["c", "a"], 1.0, 1.0),
        (["a"], 0.0, 0.5),
        (["a", "b"], 0.0, 0.0),  # one right, one wrong: (1 - 1) / 2
        (["a", "c", "d"], 0.0, 0.5),  # (2 - 1) / 2
        (["b", "d", "e"], 0.0, 0.0),  # floored at zero, never negative
        ([], 0.0, 0.0),
    ],
)
def test_mcq_multi(picked: list[str], all_or_nothing: float, partial: float) -> None:
    body = {"choices": CHOICES, "answer": ["a", "c"]}
    assert score_fraction("mcq_multi", body, {"choices": picked}) == all_or_nothing
    partial_body = {**body, "partial_credit": True}
    assert score_fraction("mcq_multi", partial_body, {"choices": picked}) == pytest.approx(partial)


def test_mcq_multi_partial_three_right() -> None:
    body = {"choices": CHOICES, "answer": ["a", "b", "c"], "partial_credit": True}
    assert score_fraction("mcq_multi", body, {"choices": ["a", "b", "e"]}) == pytest.approx(1 / 3)


@pytest.mark.parametrize(
    ("value", "expected"),
    [(3.5, 1.0), (3.6, 1.0), (3.4, 1.0), (3.61, 0.0), (-3.5, 0.0), ("3.5", 0.0), (True, 0.0)],
)
def test_numeric_tolerance(value: object, expected: float) -> None:
    assert (
        score_fraction("numeric", {"answer": 3.5, "tolerance": 0.1}, {"value": value}) == expected
    )


def test_numeric_exact_with_float_representation() -> None:
    assert score_fraction("numeric", {"answer": 0.3, "tolerance": 0}, {"value": 0.1 + 0.2}) == 1.0
    assert score_fraction("numeric", {"answer": 0.3, "tolerance": 0}, {"value": 0.31}) == 0.0


@pytest.mark.parametrize(
    ("text", "case_sensitive", "expected"),
    [
        ("Paris", False, 1.0),
        ("  paris  ", False, 1.0),
        ("PARIS", False, 1.0),
        ("New   York\tCity", False, 1.0),
        ("new york city", False, 1.0),
        ("Pariss", False, 0.0),
        ("", False, 0.0),
        ("paris", True, 0.0),
        (" Paris ", True, 1.0),
        ("STRASSE", False, 1.0),  # case folding, not just lower(): ß folds to ss
    ],
)
def test_short_text(text: str, case_sensitive: bool, expected: float) -> None:
    body = {"answers": ["Paris", "New York  City", "straße"], "case_sensitive": case_sensitive}
    assert score_fraction("short_text", body, {"text": text}) == expected


def test_normalize_text() -> None:
    assert normalize_text("  A \n b  ", case_sensitive=False) == "a b"
    assert normalize_text("  A \n b  ", case_sensitive=True) == "A b"


def test_coding_is_not_scored_from_the_answer() -> None:
    with pytest.raises(ValueError, match="coding"):
        score_fraction("coding", {}, {"language": "python", "source": ""})
