"""Scoring an answer: each kind's rule lives with the kind (:mod:`safexam.exams.kinds`).

Re-exported here for the grading code and its callers that import it from here.
"""

from __future__ import annotations

from safexam.exams.kinds import score_fraction
from safexam.exams.kinds.short_text import normalize_text

__all__ = ["normalize_text", "score_fraction"]
