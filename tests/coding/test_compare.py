"""Comparison modes and template substitution, without running anything."""

from __future__ import annotations

import pytest

from safexam.coding.compare import outputs_match, parse_comparison, render_program
from safexam.coding.execution import TestResult, overall_verdict, score_of


@pytest.fixture(autouse=True)
def _clean_state() -> None:
    """These tests touch neither PostgreSQL nor Redis (overrides the database cleanup)."""


@pytest.mark.parametrize(
    ("mode", "expected", "actual", "match"),
    [
        ("exact", "3\n", "3\n", True),
        ("exact", "3\n", "3", False),
        ("exact", "3\n", "3 \n", False),
        ("trimmed", "3\n", "3", True),
        ("trimmed", "a b\nc\n", "a b  \r\nc\n\n\n", True),
        ("trimmed", "a b\n", "a  b\n", False),
        ("trimmed", "a\n\nb\n", "a\nb\n", False),
        ("trimmed", "", "\n\n", True),
        ("tokens", "1 2 3", "1\n2\t3\n", True),
        ("tokens", "1 2 3", "1 2", False),
        ("tokens", "1.0", "1", False),
        ("float:0.001", "3.14159", "3.1416", True),
        ("float:0.001", "3.14159 x", "3.1416 y", False),
        ("float:0.001", "1000000", "1000500", True),  # relative tolerance
        ("float:0.000001", "3.14159", "3.1416", False),
        ("float:0.1", "nan", "nan", True),  # identical tokens match
        ("float:0.1", "1", "nan", False),
        ("float:0.1", "inf", "inf", True),
        ("float:0.1", "inf", "1e308", False),
        ("float:0", "2", "2.0", True),
        ("float:0.01", "1 2", "1 2 3", False),
    ],
)
def test_comparison_modes(mode: str, expected: str, actual: str, match: bool) -> None:
    assert outputs_match(expected, actual, mode) is match


@pytest.mark.parametrize("mode", ["", "fuzzy", "float:", "float:abc", "float:-1", "float:inf"])
def test_bad_comparison_modes_are_refused(mode: str) -> None:
    with pytest.raises(ValueError):
        parse_comparison(mode)


def test_template_replaces_the_placeholder_literally() -> None:
    source = "def f():\n    return r'\\1 \\g<0> {{ SOURCE }}'\n"
    program = render_program("# header\n{{ SOURCE }}\nprint(f())\n", source)
    assert program == f"# header\n{source}\nprint(f())\n"
    assert render_program("{{SOURCE}}", "x") == "x"
    assert render_program(None, "x") == "x"
    assert render_program("", "x") == "x"
    with pytest.raises(ValueError):
        render_program("no placeholder here", "x")


def _result(verdict: str, points: float) -> TestResult:
    return TestResult(
        name="t",
        hidden=False,
        verdict=verdict,  # type: ignore[arg-type]
        time_ms=1,
        points=points if verdict == "accepted" else 0,
        max_points=points,
    )


def test_score_is_the_sum_of_points_of_passed_tests() -> None:
    tests = [_result("accepted", 2), _result("wrong_answer", 3), _result("accepted", 5)]
    assert score_of(tests) == 7
    assert overall_verdict(tests) == "wrong_answer"
    assert overall_verdict([_result("accepted", 1)]) == "accepted"
    assert overall_verdict([]) == "accepted"
