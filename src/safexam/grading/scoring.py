"""Per-kind scoring rules: an answer and a concrete question body give a fraction in [0, 1].

Pure functions, shared by ``grade_session`` and bulk regrades so both always
agree. The fraction is multiplied by what the question is worth on the
student's paper (the exam item's points).

- ``mcq_single``: the chosen id is the answer id.
- ``mcq_multi``: the chosen set equals the answer set; with ``partial_credit``
  the fraction is (right picks - wrong picks) / number of right answers,
  floored at zero.
- ``numeric``: within ``tolerance`` (absolute) of the answer.
- ``short_text``: any accepted answer after trimming, collapsing runs of
  whitespace and case-folding (unless ``case_sensitive``).
- ``coding``: not scored here; its submissions carry the score.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

__all__ = ["normalize_text", "score_fraction"]

_WHITESPACE = re.compile(r"\s+")


def normalize_text(value: str, *, case_sensitive: bool) -> str:
    collapsed = _WHITESPACE.sub(" ", value.strip())
    return collapsed if case_sensitive else collapsed.casefold()


def _mcq_single(body: Mapping[str, Any], answer: Mapping[str, Any]) -> float:
    key = body.get("answer") or []
    return 1.0 if key and answer.get("choice") == key[0] else 0.0


def _mcq_multi(body: Mapping[str, Any], answer: Mapping[str, Any]) -> float:
    right = set(body.get("answer") or [])
    picked = answer.get("choices")
    if not right or not isinstance(picked, list):
        return 0.0
    chosen = {c for c in picked if isinstance(c, str)}
    if not body.get("partial_credit"):
        return 1.0 if chosen == right else 0.0
    hits = len(chosen & right)
    misses = len(chosen - right)
    return max(0.0, (hits - misses) / len(right))


def _numeric(body: Mapping[str, Any], answer: Mapping[str, Any]) -> float:
    expected = body.get("answer")
    value = answer.get("value")
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0.0
    if isinstance(expected, bool) or not isinstance(expected, int | float):
        return 0.0
    if not (math.isfinite(value) and math.isfinite(expected)):
        return 0.0
    tolerance = float(body.get("tolerance") or 0.0)
    # A hair of slack so 0.1 + 0.2 style representation errors never cost a point.
    slack = 1e-9 * max(1.0, abs(expected))
    return 1.0 if abs(value - expected) <= tolerance + slack else 0.0


def _short_text(body: Mapping[str, Any], answer: Mapping[str, Any]) -> float:
    text = answer.get("text")
    if not isinstance(text, str):
        return 0.0
    case_sensitive = bool(body.get("case_sensitive"))
    given = normalize_text(text, case_sensitive=case_sensitive)
    if not given:
        return 0.0
    accepted = {
        normalize_text(a, case_sensitive=case_sensitive)
        for a in body.get("answers") or []
        if isinstance(a, str)
    }
    return 1.0 if given in accepted else 0.0


_RULES = {
    "mcq_single": _mcq_single,
    "mcq_multi": _mcq_multi,
    "numeric": _numeric,
    "short_text": _short_text,
}


def score_fraction(kind: str, body: Mapping[str, Any], answer: Any) -> float:
    """The fraction of the points an answer earns (0 for no answer or a malformed one)."""
    rule = _RULES.get(kind)
    if rule is None:
        raise ValueError(f"{kind} questions are not scored from the answer")
    if not isinstance(answer, Mapping):
        return 0.0
    return rule(body, answer)
