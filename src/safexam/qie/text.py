"""Plain-text analysis for the embedded generator: sentences and key terms.

No model and no dictionary: a handful of rules that hold for ordinary
expository English. They are tuned for precision over recall, because every
term found here may become an answer key, and a wrong key is worse than a
missing question.

Key-term kinds (MCQ distractors are drawn from terms of the same kind):

- ``defined``: the subject of a definition sentence ("A condenser is a ...").
- ``name``/``place``: capitalized multi-word names ("James Watt", "University
  of Glasgow") and single capitalized words seen away from a sentence start;
  ``place`` when the name follows a locative preposition somewhere.
- ``year``: four-digit years.
- ``quantity``: a number with its unit ("16 kilometres", "75 percent").
- ``word``: frequent content words ("piston", "locomotive").
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

__all__ = [
    "BLANK",
    "MAX_SENTENCE_WORDS",
    "Analysis",
    "ListStatement",
    "NumberMention",
    "Term",
    "analyze",
    "normalize",
    "split_sentences",
]

BLANK = "_____"


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


STOPWORDS = _words(
    """a about above across after again against all almost along also although always am among
    an and another any are around as at away be because been before being below beside besides
    between both but by can could did do does doing done down during each either else enough even
    ever every few first for from further had has have having he her here hers him his how however
    i if in into is it its itself just last least less like made make many may me might more most
    much must my near neither never new next no nor not now of off often on once one only onto or
    other others our out over own per perhaps rather same several she should since so some still
    such than that the their them then there these they this those though through throughout thus
    to today too toward towards under until up upon us used using very was we well were what when
    where whether which while who whom whose why will with within without would yet you your
    called known became become becomes kind kinds part parts way ways time times year years
    something someone thing things people another later early earlier enough around
    built made took gave found began brought bought taught thought sent spent went won held kept
    left lost meant paid said sold told wrote chose drove grew knew rose stood understood"""
)
# Words that start a sentence with a capital but are not names.
_LEADING = STOPWORDS | _words("in on at by for from to with after before during today since when")
_LOCATIVE = _words("in at near from across to into throughout around beside")
_CONNECTORS = _words("of and de von van la del")
_ABBREVIATIONS = _words("mr mrs ms dr prof st jr sr vs etc e.g i.e no fig approx inc ltd co mt ft")
_WORD = re.compile(r"[A-Za-z][A-Za-z'\u2019-]*")
_CAP = re.compile(r"^[A-Z][a-zA-Z'\u2019-]*$")
_YEAR = re.compile(r"(?<![\d,.])(1[0-9]{3}|20[0-9]{2})(?![\d,]|\.\d)")
_NUMBER = re.compile(r"(?<![\w,.])(\d{1,3}(?:,\d{3})+|\d+(?:\.\d+)?)(?![\w,]|\.\d)")
_UNIT = re.compile(r"\s+(percent|per cent|%|[a-z][a-z-]*(?:\s+per\s+[a-z]+)?)")
_DEFINITION = re.compile(
    r"^(?:(?:A|An|The)\s+)?(?P<term>[A-Za-z][A-Za-z'\u2019 -]{1,40}?)\s+(?:is|are)\s+"
    r"(?:a|an|the)\s+(?P<rest>[a-z].*)$"
)
_LIST_BOUNDARY = _words(
    "are were is was include includes included including for of as with by like such from into"
)


def normalize(text: str) -> str:
    """Lower-case, unify quotes and collapse whitespace (for comparisons, not display)."""
    text = text.replace("\u2019", "'").replace("“", '"').replace("”", '"').casefold()
    return re.sub(r"\s+", " ", re.sub(r"[^\w\s'%-]", " ", text)).strip()


_TAG = re.compile(r"<[^>\n]{0,200}>")
_BULLET = re.compile(r"^\s*(?:[-*\u2022\u2013]|\d{1,3}[.)])\s+")
#: Longer "sentences" are run-on text (a table, a list without full stops):
#: no question is made from them.
MAX_SENTENCE_WORDS = 60


def _blocks(text: str) -> list[str]:
    """Paragraphs, with each bullet item and each line ending a sentence on its own."""
    blocks: list[str] = []
    for paragraph in re.split(r"\n\s*\n", text):
        current: list[str] = []
        for line in paragraph.split("\n"):
            bullet = _BULLET.match(line)
            if bullet:
                if current:
                    blocks.append(" ".join(current))
                current = [line[bullet.end() :]]
            else:
                current.append(line)
            if line.rstrip().endswith((".", "!", "?")) and bullet:
                blocks.append(" ".join(current))
                current = []
        if current:
            blocks.append(" ".join(current))
    return blocks


def split_sentences(text: str) -> list[str]:
    """Sentences in order; headings (short lines without final punctuation) are skipped.

    HTML tags are dropped, bullet items count as their own blocks, and
    run-on "sentences" longer than :data:`MAX_SENTENCE_WORDS` are left out.
    """
    text = _TAG.sub(" ", text.replace("\r\n", "\n"))
    sentences: list[str] = []
    for block in _blocks(text):
        flat = re.sub(r"\s+", " ", block).strip()
        if not flat:
            continue
        if flat[-1] not in '.!?"\u201d)' and len(flat.split()) < 15:
            continue
        pieces = re.split(r"(?<=[.!?])[\"\u201d\u2019)]?\s+(?=[\"\u201c(]?[A-Z0-9])", flat)
        merged: list[str] = []
        for piece in pieces:
            if merged:
                last = merged[-1].rsplit(" ", 1)[-1].rstrip(".").lower()
                if last in _ABBREVIATIONS or re.fullmatch(r"[a-z]", last):
                    merged[-1] = f"{merged[-1]} {piece}"
                    continue
            merged.append(piece)
        sentences.extend(s.strip() for s in merged if 4 <= len(s.split()) <= MAX_SENTENCE_WORDS)
    return sentences


@dataclass
class Term:
    """A key term: its text as written, kind, and the sentences it stands alone in."""

    text: str
    kind: str
    sentences: list[int] = field(default_factory=list)
    count: int = 0
    unit: str = ""

    @property
    def key(self) -> str:
        return normalize(self.text)


@dataclass(frozen=True)
class NumberMention:
    sentence: int
    start: int
    end: int
    value: float
    text: str
    unit: str
    is_year: bool


@dataclass(frozen=True)
class ListStatement:
    sentence: int
    items: tuple[str, ...]
    start: int
    end: int


@dataclass
class Analysis:
    sentences: list[str]
    terms: list[Term]
    numbers: list[NumberMention]
    lists: list[ListStatement]

    def of_kind(self, *kinds: str) -> list[Term]:
        return [t for t in self.terms if t.kind in kinds]


def _contains(sentence: str, term: str) -> bool:
    return re.search(rf"(?<![\w-]){re.escape(term)}(?![\w-])", sentence) is not None


def _names(
    sentence: str, lowercase_words: set[str], inner_caps: set[str]
) -> list[tuple[str, bool, str | None]]:
    """Capitalized runs: (name, starts the sentence, preceding word)."""
    tokens = [(m.group(0), m.start()) for m in _WORD.finditer(sentence)]
    found: list[tuple[str, bool, str | None]] = []
    i = 0
    while i < len(tokens):
        word, _ = tokens[i]
        if not _CAP.match(word):
            i += 1
            continue
        j = i + 1
        while j < len(tokens):
            nxt = tokens[j][0]
            gap = sentence[tokens[j - 1][1] + len(tokens[j - 1][0]) : tokens[j][1]]
            if gap.strip():
                break  # punctuation ends a name
            if _CAP.match(nxt):
                j += 1
            elif (
                nxt in _CONNECTORS
                and j + 1 < len(tokens)
                and _CAP.match(tokens[j + 1][0])
                and not sentence[tokens[j][1] + len(nxt) : tokens[j + 1][1]].strip()
            ):
                j += 2
            else:
                break
        run = [t[0] for t in tokens[i:j]]
        # Sentence-initial capitals: drop leading function words ("The Rocket").
        start = i
        while (
            run
            and start == 0
            and (
                run[0].lower() in _LEADING
                or (run[0].lower() in lowercase_words and run[0] not in inner_caps)
            )
        ):
            run = run[1:]
            start += 1
        if run and run[-1] in _CONNECTORS:
            run = run[:-1]
        if run:
            prev = None
            if start > 0:
                before = tokens[start - 1]
                if not sentence[before[1] + len(before[0]) : tokens[start][1]].strip():
                    prev = before[0].lower()
            found.append((" ".join(run), start == 0, prev))
        i = j
    return found


def analyze(text: str) -> Analysis:
    """Split ``text`` into sentences and find its key terms, numbers and list statements."""
    sentences = split_sentences(text)
    words = [w for s in sentences for w in _WORD.findall(s)]
    lowercase_words = {w for w in words if w.islower()}
    inner_caps = {w for s in sentences for w in _WORD.findall(s)[1:] if _CAP.match(w)}
    terms: dict[tuple[str, str], Term] = {}

    def add(text_: str, kind: str, index: int, unit: str = "") -> None:
        term = terms.setdefault((kind, text_), Term(text_, kind, unit=unit))
        term.count += 1
        if index not in term.sentences:
            term.sentences.append(index)

    definitions: dict[str, int] = {}
    for index, sentence in enumerate(sentences):
        match = _DEFINITION.match(sentence)
        if match:
            term = match.group("term").strip()
            if len(term.split()) <= 4 and term.lower() not in STOPWORDS:
                definitions.setdefault(term, index)

    name_info: dict[str, dict[str, bool]] = {}
    for sentence in sentences:
        for name, at_start, prev in _names(sentence, lowercase_words, inner_caps):
            info = name_info.setdefault(name, {"inside": False, "place": False})
            info["inside"] |= not at_start
            info["place"] |= prev in _LOCATIVE
    multi = [n for n in name_info if " " in n]
    for index, sentence in enumerate(sentences):
        for name, _, _ in _names(sentence, lowercase_words, inner_caps):
            info = name_info[name]
            if " " not in name and not info["inside"]:
                continue  # a lone capital only ever seen at a sentence start
            if name.lower() in STOPWORDS or name in definitions:
                continue
            if any(
                name != other and _contains(other, name) and _contains(sentence, other)
                for other in multi
            ):
                continue
            add(name, "place" if info["place"] else "name", index)

    for term, index in definitions.items():
        for i, sentence in enumerate(sentences):
            if _contains(sentence, term) or (i == index):
                add(term, "defined", i)

    numbers: list[NumberMention] = []
    for index, sentence in enumerate(sentences):
        for match in _NUMBER.finditer(sentence):
            raw = match.group(1)
            unit_match = _UNIT.match(sentence, match.end())
            unit = ""
            if unit_match and unit_match.group(1).split()[0] not in STOPWORDS:
                unit = unit_match.group(1)
            is_year = bool(_YEAR.fullmatch(raw)) and not unit
            value = float(raw.replace(",", ""))
            numbers.append(
                NumberMention(index, match.start(1), match.end(1), value, raw, unit, is_year)
            )
            if is_year:
                add(raw, "year", index)
            elif unit:
                add(f"{raw} {unit}", "quantity", index, unit=unit)

    claimed = {normalize(t.text) for t in terms.values()}
    claimed_words = {w for c in claimed for w in c.split()}
    counts = Counter(w.lower() for w in words if w.islower())
    for word, n in counts.items():
        if (
            n >= 2
            and len(word) >= 5
            and word not in STOPWORDS
            and word not in claimed_words
            and not word.endswith(("ed", "ly", "ing"))
            and "-" not in word
        ):
            for index, sentence in enumerate(sentences):
                if _contains(sentence, word):
                    add(word, "word", index)

    lists: list[ListStatement] = []
    for index, sentence in enumerate(sentences):
        found = _list_statement(sentence)
        if found:
            items, start, end = found
            lists.append(ListStatement(index, items, start, end))

    ordered = sorted(terms.values(), key=lambda t: (t.kind, t.text))
    return Analysis(sentences=sentences, terms=ordered, numbers=numbers, lists=lists)


def _list_statement(sentence: str) -> tuple[tuple[str, ...], int, int] | None:
    """``... are the boiler, the cylinder, the piston and the valves.`` -> the items."""
    body = sentence.rstrip(".!?")
    segments = body.split(", ")
    if len(segments) < 2:
        return None
    last = segments[-1]
    if " and " not in last:
        return None
    tail_parts = last.split(" and ")
    if len(tail_parts) != 2:
        return None
    middle = segments[1:-1]
    items_raw = [*middle, tail_parts[0], tail_parts[1]]
    if tail_parts[0] == "":
        items_raw = [*middle, tail_parts[1]]
    head_words = segments[0].split()
    cut = None
    for k in range(len(head_words) - 1, -1, -1):
        if head_words[k].lower() in _LIST_BOUNDARY:
            cut = k
            break
    if cut is None or len(head_words) - cut - 1 > 3 or cut == len(head_words) - 1:
        return None
    first = " ".join(head_words[cut + 1 :])
    items = [first, *items_raw]
    cleaned: list[str] = []
    for item in items:
        words = item.split()
        if not 1 <= len(words) <= 3 or any(not re.fullmatch(r"[A-Za-z'-]+", w) for w in words):
            return None
        if words[0].lower() in ("the", "a", "an"):
            words = words[1:]
        if not words:
            return None
        cleaned.append(" ".join(words))
    if len(cleaned) < 3 or len({c.lower() for c in cleaned}) != len(cleaned):
        return None
    start = len(" ".join(head_words[: cut + 1])) + 1
    return tuple(cleaned), start, len(body)
