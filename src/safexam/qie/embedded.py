"""The embedded question generator: rules over the educator's text, no model, no network.

It builds questions whose answer keys can be checked against the source:

- ``short_text`` cloze: a sentence of the passage with one key term blanked
  (every stand-alone occurrence of it); the answer is the term.
- ``mcq_single``: the same cloze with the term among other key terms of the
  same kind from the same text (names with names, years with years,
  quantities with the same unit first ...). A distractor never appears in the
  sentence, never overlaps the answer, and never turns the cloze into another
  sentence of the passage, so exactly one choice restores the passage.
- ``mcq_multi``: a list statement ("The main parts ... are A, B, C and D")
  with its items as the correct choices and other key terms as distractors.
- ``numeric``: a sentence with one of its numbers blanked, and parametric
  templates (per-student variants) whose unit appears in the text, or all of
  them when only a topic is given.

Output is deterministic for a given text, request and seed.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from safexam.exams.expressions import format_number
from safexam.qie.schemas import Candidate, GeneratedBatch, GenerationRequest
from safexam.qie.text import BLANK, Analysis, NumberMention, Term, analyze, normalize

__all__ = ["TEMPLATES", "EmbeddedGenerator", "ParametricTemplate"]

GENERATOR = "embedded"
_DISTRACTORS = {"easy": 2, "medium": 3, "hard": 4}
_MIN_DISTRACTORS = 2
# Candidates offered: all the text supports, up to this many. The service
# stops at the count asked for; the rest are there for when the quality filter
# rejects many (a second job on the same text finds its first questions
# already in the bank and moves on to new ones).
_MAX_CANDIDATES = 1000

_KIND_GROUPS: dict[str, tuple[str, ...]] = {
    "name": ("name", "place"),
    "place": ("place", "name"),
    "defined": ("defined", "word"),
    "word": ("word", "defined"),
    "year": ("year",),
    "quantity": ("quantity",),
}


@dataclass(frozen=True)
class ParametricTemplate:
    """A question whose values vary per student; offered when its trigger words appear.

    ``numeric`` templates carry an ``answer_expression``; ``mcq_single`` ones
    carry choice texts with ``{{ expression }}`` placeholders, the first being
    the correct one (validation checks that they never coincide).
    """

    name: str
    triggers: tuple[str, ...]
    prompt: str
    parameters: tuple[dict[str, Any], ...]
    answer_expression: str = ""
    tolerance: float = 0.0
    kind: str = "numeric"
    choices: tuple[str, ...] = ()


TEMPLATES: tuple[ParametricTemplate, ...] = (
    ParametricTemplate(
        name="average_speed",
        triggers=("kilometres", "kilometers", "km", "miles", "speed"),
        prompt=(
            "A vehicle travels {{ d }} kilometres in {{ t }} hours at a steady pace. "
            "What is its average speed in kilometres per hour?"
        ),
        parameters=(
            {"name": "d", "min": 60, "max": 480, "step": 20},
            {"name": "t", "min": 2, "max": 8},
        ),
        answer_expression="d / t",
        tolerance=0.01,
    ),
    ParametricTemplate(
        name="percent_less",
        triggers=("percent", "per cent", "%"),
        prompt=(
            "A machine uses {{ c }} kg of fuel per day. An improved design uses {{ p }} percent "
            "less. How many kilograms of fuel per day does the improved design use?"
        ),
        parameters=(
            {"name": "c", "min": 100, "max": 900, "step": 20},
            {"name": "p", "min": 10, "max": 90, "step": 5},
        ),
        answer_expression="c * (100 - p) / 100",
        tolerance=0.01,
    ),
    ParametricTemplate(
        name="tonnes_to_kilograms",
        triggers=("tons", "tonnes", "kilograms", "kg"),
        prompt="A wagon carries {{ m }} tonnes of cargo. How many kilograms is that?",
        parameters=({"name": "m", "min": 1.5, "max": 30, "step": 0.5},),
        answer_expression="m * 1000",
    ),
    ParametricTemplate(
        name="celsius_to_fahrenheit",
        triggers=("celsius", "temperature", "degrees"),
        prompt="Water is heated to {{ c }} degrees Celsius. What is that in degrees Fahrenheit?",
        parameters=({"name": "c", "min": 5, "max": 95, "step": 5},),
        answer_expression="c * 9 / 5 + 32",
        tolerance=0.01,
    ),
    ParametricTemplate(
        name="work_rate",
        triggers=("power", "work", "horsepower", "engine", "engines", "machine"),
        prompt=(
            "A machine does {{ w }} joules of work in {{ t }} seconds. "
            "What is its average power in watts?"
        ),
        parameters=(
            {"name": "w", "min": 600, "max": 9000, "step": 300},
            {"name": "t", "min": 3, "max": 12},
        ),
        answer_expression="w / t",
        tolerance=0.01,
    ),
    ParametricTemplate(
        name="percent_of",
        kind="mcq_single",
        triggers=("percent", "per cent", "%"),
        prompt="What is {{ p }} percent of {{ n }}?",
        # n starts at 120 so that p + n can never equal a tenth of p * n.
        parameters=(
            {"name": "p", "min": 10, "max": 90, "step": 10},
            {"name": "n", "min": 120, "max": 900, "step": 20},
        ),
        choices=("{{ p * n / 100 }}", "{{ p * n / 10 }}", "{{ p + n }}", "{{ p * n / 1000 }}"),
    ),
)


def _rng(*parts: object) -> random.Random:
    digest = hashlib.sha256("\x00".join(map(str, parts)).encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))  # noqa: S311 - selection only


def _pattern(term: str) -> re.Pattern[str]:
    return re.compile(rf"(?<![\w-]){re.escape(term)}(?![\w-])")


def _plural(text: str) -> bool:
    last = text.split()[-1].lower()
    return last.endswith("s") and not last.endswith("ss")


def _quote(text: str) -> str:
    return f"“{text}”"


class EmbeddedGenerator:
    """Rule-based generator over the request's source text (see the module docstring)."""

    name = GENERATOR
    model: str | None = None

    async def generate(self, request: GenerationRequest) -> GeneratedBatch:
        return self.generate_sync(request)

    def generate_sync(self, request: GenerationRequest) -> GeneratedBatch:
        """All the work; synchronous because it is pure CPU and quick."""
        difficulty = request.difficulty or "medium"
        dropped: dict[str, int] = {}
        pools: dict[str, list[Candidate]] = {kind: [] for kind in request.kinds}
        analysis = analyze(request.source_text) if request.source_text else None
        if analysis is not None:
            builder = _Builder(analysis, request.seed, difficulty, dropped)
            if "short_text" in pools:
                pools["short_text"] = builder.cloze_short_text()
            if "mcq_single" in pools:
                pools["mcq_single"] = builder.cloze_mcq()
            if "mcq_multi" in pools:
                pools["mcq_multi"] = builder.list_mcq()
            if "numeric" in pools:
                pools["numeric"] = builder.numeric_cloze()
        if "numeric" in pools:
            pools["numeric"] = pools["numeric"] + [
                _from_template(t, request.seed) for t in _templates_for(request, "numeric")
            ]
        if "mcq_single" in pools:
            pools["mcq_single"] = pools["mcq_single"] + [
                _from_template(t, request.seed) for t in _templates_for(request, "mcq_single")
            ]
        for kind, pool in pools.items():
            _rng(request.seed, "order", kind).shuffle(pool)
            if not pool:
                dropped[f"no_{kind}_material"] = dropped.get(f"no_{kind}_material", 0) + 1
        for pool in pools.values():
            for candidate in pool:
                candidate.meta["difficulty"] = difficulty
        ordered = _round_robin([pools[k] for k in request.kinds], _MAX_CANDIDATES)
        return GeneratedBatch(candidates=ordered, dropped=dropped)


def _round_robin(pools: list[list[Candidate]], limit: int) -> list[Candidate]:
    """Alternate between kinds; prefer sentences not used yet, then allow repeats."""
    out: list[Candidate] = []
    used_passages: set[str] = set()
    queues = [list(pool) for pool in pools]
    for fresh_only in (True, False):
        progress = True
        while progress and len(out) < limit:
            progress = False
            for queue in queues:
                for i, candidate in enumerate(queue):
                    if fresh_only and candidate.passage and candidate.passage in used_passages:
                        continue
                    out.append(queue.pop(i))
                    if candidate.passage:
                        used_passages.add(candidate.passage)
                    progress = True
                    break
                if len(out) >= limit:
                    break
    return out


def _templates_for(request: GenerationRequest, kind: str) -> list[ParametricTemplate]:
    """Templates of ``kind`` whose triggers occur in the text (all of them without a text)."""
    templates = [t for t in TEMPLATES if t.kind == kind]
    if not request.source_text:
        return templates
    text = normalize(f"{request.source_text} {request.topic or ''}")
    words = set(text.split())
    return [
        t
        for t in templates
        if any((trig in words) or (" " in trig and trig in text) for trig in t.triggers)
    ]


def _from_template(template: ParametricTemplate, seed: int) -> Candidate:
    body: dict[str, Any] = {"parameters": [dict(p) for p in template.parameters]}
    if template.kind == "numeric":
        body["answer_expression"] = template.answer_expression
        body["tolerance"] = template.tolerance
    else:
        # The correct text is listed first; place it by the seed instead.
        texts = list(template.choices)
        _rng(seed, "template", template.name).shuffle(texts)
        body["choices"] = [{"id": chr(ord("a") + i), "text": t} for i, t in enumerate(texts)]
        body["answer"] = [chr(ord("a") + texts.index(template.choices[0]))]
    return Candidate(
        kind=template.kind,
        prompt=template.prompt,
        body=body,
        generator=GENERATOR,
        meta={"template": template.name},
    )


class _Builder:
    def __init__(
        self, analysis: Analysis, seed: int, difficulty: str, dropped: dict[str, int]
    ) -> None:
        self.analysis = analysis
        self.seed = seed
        self.want = _DISTRACTORS.get(difficulty, 3)
        self.dropped = dropped
        self.sentence_keys = {normalize(s) for s in analysis.sentences}

    def _drop(self, reason: str) -> None:
        self.dropped[reason] = self.dropped.get(reason, 0) + 1

    def _clozes(self, kinds: Iterable[str]) -> Iterable[tuple[Term, int, str]]:
        for term in self.analysis.of_kind(*kinds):
            for index in term.sentences:
                sentence = self.analysis.sentences[index]
                cloze = _pattern(term.text).sub(BLANK, sentence)
                if cloze == sentence:
                    continue
                # The answer must not survive in another spelling ("Watt" / "watt").
                if _pattern(term.key).search(normalize(cloze.replace(BLANK, " "))):
                    self._drop("answer_in_stem")
                    continue
                yield term, index, cloze

    def _candidate(
        self, kind: str, prompt: str, body: dict[str, Any], index: int, **meta: Any
    ) -> Candidate:
        return Candidate(
            kind=kind,
            prompt=prompt,
            body=body,
            generator=GENERATOR,
            passage=self.analysis.sentences[index],
            meta={"sentence": index, **meta},
        )

    def cloze_short_text(self) -> list[Candidate]:
        out = []
        for term, index, cloze in self._clozes(("defined", "name", "place", "word")):
            answers = [term.text]
            if term.kind in ("name", "place") and " " not in term.text:
                # "Newcomen" is also right as "Thomas Newcomen", the fuller
                # name the passage uses; never the other way round, since a
                # surname alone may be shared ("George"/"Robert Stephenson").
                answers += [
                    t.text
                    for t in self.analysis.of_kind("name", "place")
                    if t.text != term.text and _pattern(term.text).search(t.text)
                ][:4]
            out.append(
                self._candidate(
                    "short_text",
                    f"Fill in the blank with the missing term from the passage: {_quote(cloze)}",
                    {"answers": answers, "case_sensitive": False},
                    index,
                    term=term.text,
                    term_kind=term.kind,
                )
            )
        return out

    def _distractors(self, term: Term, index: int, cloze: str) -> list[str]:
        sentence_norm = normalize(self.analysis.sentences[index])
        answer_words = set(term.key.split())
        chosen: list[str] = []
        seen = {term.key}
        for kind in _KIND_GROUPS[term.kind]:
            pool = [t for t in self.analysis.of_kind(kind) if t.key not in seen]
            if term.kind == "quantity":
                pool.sort(key=lambda t: t.unit != term.unit)
            elif term.kind in ("word", "defined"):
                pool = [t for t in pool if _plural(t.text) == _plural(term.text)]
            rng = _rng(self.seed, "distractors", index, term.text, kind)
            ranked = list(pool)
            rng.shuffle(ranked)
            if term.kind == "quantity":
                ranked.sort(key=lambda t: t.unit != term.unit)  # stable: same unit first
            for other in ranked:
                if len(chosen) >= self.want:
                    return chosen
                key = other.key
                if key in seen or set(key.split()) & answer_words:
                    continue
                if _pattern(key).search(sentence_norm):
                    continue
                filled = normalize(cloze.replace(BLANK, other.text))
                if filled in self.sentence_keys:
                    continue  # would make another true statement of the passage
                seen.add(key)
                chosen.append(other.text)
        return chosen

    def cloze_mcq(self) -> list[Candidate]:
        out = []
        kinds = ("defined", "name", "place", "year", "quantity", "word")
        for term, index, cloze in self._clozes(kinds):
            distractors = self._distractors(term, index, cloze)
            if len(distractors) < _MIN_DISTRACTORS:
                self._drop("too_few_distractors")
                continue
            texts = [term.text, *distractors]
            _rng(self.seed, "choices", index, term.text).shuffle(texts)
            choices = [{"id": chr(ord("a") + i), "text": t} for i, t in enumerate(texts)]
            answer = next(c["id"] for c in choices if c["text"] == term.text)
            out.append(
                self._candidate(
                    "mcq_single",
                    f"Which option completes this sentence from the passage? {_quote(cloze)}",
                    {"choices": choices, "answer": [answer]},
                    index,
                    term=term.text,
                    term_kind=term.kind,
                )
            )
        return out

    def list_mcq(self) -> list[Candidate]:
        out = []
        for statement in self.analysis.lists:
            sentence = self.analysis.sentences[statement.sentence]
            sentence_norm = normalize(sentence)
            stem = sentence[: statement.start].rstrip() + " …"
            item_words = {w for item in statement.items for w in normalize(item).split()}
            plural = sum(_plural(i) for i in statement.items) * 2 >= len(statement.items)
            rng = _rng(self.seed, "list", statement.sentence)
            pool: list[Term] = []
            # Plain content words first: a defined term ("condenser") is more
            # likely to be arguably right for a list the passage gives. Words
            # of the items' number (plural/singular) first, the rest after.
            for same_number in (True, False):
                for kind in ("word", "defined"):
                    group = [
                        t
                        for t in self.analysis.of_kind(kind)
                        if not _pattern(t.key).search(sentence_norm)
                        and not set(t.key.split()) & item_words
                        and (_plural(t.text) == plural) == same_number
                    ]
                    rng.shuffle(group)
                    pool.extend(group)
            want = max(_MIN_DISTRACTORS, min(self.want, len(statement.items)))
            distractors: list[str] = []
            for t in pool:
                if len(distractors) >= want:
                    break
                if t.key not in {normalize(d) for d in distractors}:
                    distractors.append(t.text)
            if len(distractors) < _MIN_DISTRACTORS:
                self._drop("too_few_distractors")
                continue
            texts = [*statement.items, *distractors]
            rng.shuffle(texts)
            choices = [{"id": chr(ord("a") + i), "text": t} for i, t in enumerate(texts)]
            answer = [c["id"] for c in choices if c["text"] in statement.items]
            out.append(
                self._candidate(
                    "mcq_multi",
                    "According to the passage, which of these complete the statement? "
                    f"Select all that apply. {_quote(stem)}",
                    {"choices": choices, "answer": answer, "partial_credit": True},
                    statement.sentence,
                    items=list(statement.items),
                )
            )
        return out

    def numeric_cloze(self) -> list[Candidate]:
        out = []
        by_sentence: dict[int, list[NumberMention]] = {}
        for mention in self.analysis.numbers:
            by_sentence.setdefault(mention.sentence, []).append(mention)
        for index, mentions in sorted(by_sentence.items()):
            sentence = self.analysis.sentences[index]
            for mention in mentions:
                if sum(m.text == mention.text for m in mentions) > 1:
                    continue
                cloze = sentence[: mention.start] + BLANK + sentence[mention.end :]
                value: int | float = (
                    int(mention.value) if mention.value.is_integer() else mention.value
                )
                what = "year" if mention.is_year else "number"
                out.append(
                    self._candidate(
                        "numeric",
                        f"Fill in the missing {what} from the passage: {_quote(cloze)}",
                        {"answer": value, "tolerance": 0.0},
                        index,
                        term=mention.text,
                        term_kind="year" if mention.is_year else "quantity",
                        shown=format_number(value),
                    )
                )
        return out
