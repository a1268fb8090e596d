"""The quality filter every generated question passes before it becomes a draft.

Checks, in order; the first failure is the rejection reason counted in the
job result:

- ``invalid``: the body does not pass the same validation as a hand-written
  question (:func:`safexam.exams.kinds.decode_body`, and
  :func:`safexam.exams.kinds.validate_parametric` for parametric ones).
- ``answer_not_in_choices`` / ``duplicate_choices``: MCQ keys must name
  choices, and no two choices may read the same.
- ``answer_in_stem``: the stem must not give the answer away.
- ``near_duplicate_bank`` / ``near_duplicate_batch``: the question reads
  almost like one already in the educator's bank or accepted earlier in the
  same batch. Similarity is over normalized text (the quoted passage when the
  prompt quotes one): token-set Jaccard >= 0.8, or difflib ratio >= 0.9.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from safexam.core.errors import Unprocessable
from safexam.exams.kinds import KINDS, decode_body, validate_parametric
from safexam.exams.variants import is_parametric
from safexam.qie.schemas import Candidate
from safexam.qie.text import normalize

__all__ = ["JACCARD_THRESHOLD", "RATIO_THRESHOLD", "QualityFilter", "similar", "stem_core"]

JACCARD_THRESHOLD = 0.8
RATIO_THRESHOLD = 0.9
MAX_PROMPT_CHARS = 5_000
_QUOTED = re.compile(r"[“\"]([^”\"]{12,})[”\"]")


def stem_core(prompt: str) -> str:
    """The part of a prompt that identifies the question, normalized.

    Generated cloze prompts share their lead-in ("Fill in the blank ..."), so
    the quoted passage is what tells two of them apart.
    """
    quoted = _QUOTED.findall(prompt)
    text = max(quoted, key=len) if quoted else prompt
    return normalize(text.replace("_", " "))


@dataclass(frozen=True)
class _Stem:
    text: str
    tokens: frozenset[str]

    @classmethod
    def of(cls, prompt: str) -> _Stem:
        core = stem_core(prompt)
        return cls(core, frozenset(core.split()))


# Below this token overlap the character ratio is not worth computing: it
# keeps a 5,000-question bank cheap to compare against.
_JACCARD_FLOOR = 0.5


def _similar(a: _Stem, b: _Stem) -> bool:
    if a.text == b.text:
        return True
    if not a.tokens or not b.tokens:
        return False
    small, large = sorted((len(a.tokens), len(b.tokens)))
    if small / large < _JACCARD_FLOOR:
        return False
    jaccard = len(a.tokens & b.tokens) / len(a.tokens | b.tokens)
    if jaccard >= JACCARD_THRESHOLD:
        return True
    if jaccard < _JACCARD_FLOOR:
        return False
    matcher = difflib.SequenceMatcher(None, a.text, b.text, autojunk=False)
    return (
        matcher.real_quick_ratio() >= RATIO_THRESHOLD
        and matcher.quick_ratio() >= RATIO_THRESHOLD
        and matcher.ratio() >= RATIO_THRESHOLD
    )


def similar(a: str, b: str) -> bool:
    """Whether two prompts are near-duplicates (compared by :func:`stem_core`)."""
    return _similar(_Stem.of(a), _Stem.of(b))


def _has_phrase(text: str, phrase: str) -> bool:
    phrase = normalize(phrase)
    return bool(phrase) and re.search(rf"(?<![\w-]){re.escape(phrase)}(?![\w-])", text) is not None


@dataclass
class QualityFilter:
    """Stateful over one batch: remembers accepted stems to catch in-batch duplicates."""

    bank: list[_Stem] = field(default_factory=list)
    accepted: list[_Stem] = field(default_factory=list)
    rejected: dict[str, int] = field(default_factory=dict)

    @classmethod
    def for_bank(cls, prompts: Iterable[str]) -> QualityFilter:
        """A filter that also rejects near-duplicates of these (the educator's) prompts."""
        return cls(bank=[_Stem.of(p) for p in prompts])

    def check(self, candidate: Candidate) -> str | None:
        """The rejection reason, or None if the candidate is fine (nothing is recorded)."""
        kind, body, prompt = candidate.kind, candidate.body, candidate.prompt
        if not prompt.strip() or len(prompt) > MAX_PROMPT_CHARS:
            return "invalid"
        try:
            decode_body(kind, body)
            validate_parametric(kind, prompt, body)
        except Unprocessable:
            return "invalid"
        if KINDS[kind].has_choices:
            ids = [c["id"] for c in body["choices"]]
            if not body["answer"] or any(a not in ids for a in body["answer"]):
                return "answer_not_in_choices"
            texts = [normalize(c["text"]) for c in body["choices"]]
            if len(set(texts)) != len(texts) or len(set(ids)) != len(ids) or "" in texts:
                return "duplicate_choices"
        if not is_parametric(body):
            text = normalize(prompt)
            if any(_has_phrase(text, answer) for answer in KINDS[kind].answer_texts(body)):
                return "answer_in_stem"
        core = _Stem.of(prompt)
        if any(_similar(core, other) for other in self.bank):
            return "near_duplicate_bank"
        if any(_similar(core, other) for other in self.accepted):
            return "near_duplicate_batch"
        return None

    def admit(self, candidate: Candidate) -> bool:
        """Check and record: True if accepted, else the reason is counted."""
        reason = self.check(candidate)
        if reason is None:
            self.accepted.append(_Stem.of(candidate.prompt))
            return True
        self.rejected[reason] = self.rejected.get(reason, 0) + 1
        return False
