"""Code similarity across a cohort: normalised tokens, winnowed fingerprints, scored pairs.

The method is the one MOSS made standard (Schleimer, Wilkerson and Aiken,
"Winnowing: local algorithms for document fingerprinting", SIGMOD 2003):

1. Each program becomes a list of tokens from a real lexer (Python's own
   ``tokenize``; Pygments for C, C++, Java and JavaScript). Comments and
   whitespace are dropped, every identifier becomes ``V``, every string ``S``
   and every number ``N``, so renaming a variable or rewording a message changes
   nothing, while keywords, operators and punctuation keep the program's shape.
2. Every run of ``k`` consecutive tokens is hashed; from every window of ``w``
   consecutive hashes the smallest is kept (the rightmost on ties, once).
   Any match of at least ``w + k - 1`` tokens is then guaranteed to share a
   fingerprint, and nothing shorter than ``k`` tokens can (the noise threshold).
3. The k-grams of the question's starter code and template are hashed too and
   removed from every submission: code the educator handed out is not evidence.
4. An inverted index maps each fingerprint to the submissions holding it, so
   only pairs that share fingerprints are ever looked at. Fingerprints held by
   a large share of the cohort are idioms, not copying, and are ignored.
5. A pair's score is the share of each program's tokens covered by the shared
   k-grams (the mean of the two sides); the covered runs become regions with
   line ranges in both sources. Pairs at or above the threshold are joined
   into clusters (connected components) and groups of three or more reported.

Everything here is pure: text in, numbers and line ranges out; no database.
"""

from __future__ import annotations

import bisect
import io
import keyword
import token as pytoken
import tokenize
import zlib
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from pygments.lexer import Lexer
from pygments.lexers import CLexer, CppLexer, JavaLexer, JavascriptLexer, PythonLexer
from pygments.token import (
    Comment,
    Keyword,
    Name,
    Number,
    String,
    Text,
    Whitespace,
    is_token_subtype,
)
from pygments.token import _TokenType as PygmentsTokenType

__all__ = [
    "DEFAULT_SETTINGS",
    "SUPPORTED_LANGUAGES",
    "CohortReport",
    "Fingerprints",
    "PairMatch",
    "Region",
    "SimilaritySettings",
    "Submission",
    "Token",
    "clusters_of",
    "compare_cohort",
    "fingerprint",
    "tokenize_source",
    "winnow",
]

SUPPORTED_LANGUAGES: tuple[str, ...] = ("python", "c", "cpp", "java", "javascript")

_IDENTIFIER = "V"
_STRING = "S"
_NUMBER = "N"

# A polynomial hash over token ids, modulo a Mersenne prime: stable across
# processes (unlike ``hash`` on strings) and cheap to roll.
_MOD = (1 << 61) - 1
_BASE = 1_000_003


@dataclass(frozen=True, slots=True)
class SimilaritySettings:
    """The knobs of one comparison; the defaults were measured on the labelled set in tests/."""

    # Noise threshold: shorter matches than this many tokens are never reported.
    k: int = 9
    # Window: every match of w + k - 1 tokens or more is guaranteed to be found.
    window: int = 5
    # Pairs at or above this score are "similar" (reported, and joined into clusters).
    threshold: float = 0.5
    # A fingerprint held by more than this share of the cohort is an idiom.
    common_share: float = 0.5
    # ... but only once the cohort is large enough for a share to mean anything.
    common_min_count: int = 10
    # Pairs sharing fewer fingerprints than this are not scored at all.
    min_shared: int = 3
    # Pairs sharing less than this share of the smaller program's fingerprints
    # are not scored (a quick bound: a copy shares most of them).
    min_containment: float = 0.2
    # Programs smaller than this (after the template is removed) are not compared.
    min_tokens: int = 20


DEFAULT_SETTINGS = SimilaritySettings()


@dataclass(frozen=True, slots=True)
class Token:
    """One normalised token and the 1-based line it starts on."""

    text: str
    line: int


@dataclass(frozen=True, slots=True)
class Submission:
    """One program of the cohort; ``key`` is the caller's name for it (a submission id)."""

    key: str
    source: str


@dataclass(frozen=True, slots=True)
class Region:
    """Lines ``a_first..a_last`` of one program matching ``b_first..b_last`` of the other."""

    a_first: int
    a_last: int
    b_first: int
    b_last: int
    tokens: int


@dataclass(frozen=True, slots=True)
class PairMatch:
    a: str
    b: str
    score: float
    a_coverage: float
    b_coverage: float
    shared: int
    regions: tuple[Region, ...]


@dataclass(frozen=True, slots=True)
class CohortReport:
    # Pairs at or above the threshold, highest score first.
    pairs: list[PairMatch]
    # Groups of three or more keys joined by similar pairs, largest first.
    clusters: list[tuple[str, ...]]
    # Keys that could not be compared (too short once the template is removed, or unlexable).
    skipped: list[str]
    # How many pairs were scored in full (the rest shared too little to look at).
    pairs_scored: int


@dataclass(slots=True)
class Fingerprints:
    """A program's tokens and its winnowed fingerprints: hash -> token positions."""

    tokens: list[Token]
    positions: dict[int, list[int]] = field(default_factory=dict)
    # Token positions covered by the template's k-grams (not counted in coverage).
    template_covered: set[int] = field(default_factory=set)
    # Per fingerprint, the tokens its k-grams cover as a bit mask, and the mask
    # of tokens that count: coverage of a pair is then a few ORs and a popcount.
    masks: dict[int, int] = field(default_factory=dict)
    countable_mask: int = 0

    @property
    def countable(self) -> int:
        return len(self.tokens) - len(self.template_covered)


# ---------------------------------------------------------------------------
# Lexing


def _python_tokens(source: str) -> list[Token]:
    out: list[Token] = []
    reader = io.StringIO(source).readline
    for tok in tokenize.generate_tokens(reader):
        kind = tok.type
        if kind in (
            pytoken.COMMENT,
            pytoken.NL,
            pytoken.NEWLINE,
            pytoken.INDENT,
            pytoken.DEDENT,
            pytoken.ENDMARKER,
            pytoken.ENCODING,
        ):
            # Layout is not evidence: indentation and blank lines are the first
            # thing a disguise changes, and the colon already marks each block.
            continue
        line = tok.start[0]
        if kind == pytoken.NAME:
            text = tok.string if keyword.iskeyword(tok.string) else _IDENTIFIER
        elif kind == pytoken.STRING or kind in _PY_FSTRING_KINDS:
            if out and out[-1].text == _STRING:
                continue  # implicit concatenation and f-string parts are one literal
            text = _STRING
        elif kind == pytoken.NUMBER:
            text = _NUMBER
        else:
            text = tok.string
        out.append(Token(text, line))
    return out


_PY_FSTRING_KINDS: frozenset[int] = frozenset(
    getattr(pytoken, name)
    for name in ("FSTRING_START", "FSTRING_MIDDLE", "FSTRING_END")
    if hasattr(pytoken, name)
)

_LEXERS: dict[str, type[Lexer]] = {
    "c": CLexer,
    "cpp": CppLexer,
    "java": JavaLexer,
    "javascript": JavascriptLexer,
    # Only for Python that ``tokenize`` refuses (an unclosed bracket, bad indentation).
    "python": PythonLexer,
}


def _normalise_pygments(ttype: PygmentsTokenType, value: str) -> str | None:
    def of(kind: PygmentsTokenType) -> bool:
        return is_token_subtype(ttype, kind)

    if of(Comment) or of(Whitespace) or of(Text):
        # Preprocessor lines are comments to Pygments: includes are boilerplate.
        return None
    if of(Keyword):
        # Declarations and types ("int", "def", "class") are keywords and keep their text.
        return value
    if of(String):
        return _STRING
    if of(Number):
        return _NUMBER
    if of(Name):
        return _IDENTIFIER
    stripped = value.strip()
    return stripped or None


def _pygments_tokens(source: str, language: str) -> list[Token]:
    lexer = _LEXERS[language](stripnl=False, ensurenl=False)
    newlines = [i for i, ch in enumerate(source) if ch == "\n"]
    out: list[Token] = []
    for index, ttype, value in lexer.get_tokens_unprocessed(source):
        text = _normalise_pygments(ttype, value)
        if text is None:
            continue
        if text == _STRING and out and out[-1].text == _STRING:
            continue  # Pygments splits one literal into delimiters, escapes and body
        # Leading whitespace inside a token moves its first visible character.
        offset = index + (len(value) - len(value.lstrip()))
        out.append(Token(text, bisect.bisect_left(newlines, offset) + 1))
    return out


def tokenize_source(source: str, language: str) -> list[Token]:
    """The normalised tokens of ``source``; raises ``ValueError`` for a language we do not lex."""
    if language not in SUPPORTED_LANGUAGES:
        raise ValueError(f"language: no lexer for {language!r}")
    if language == "python":
        try:
            return _python_tokens(source)
        except (tokenize.TokenError, IndentationError, SyntaxError):
            # A student's unfinished program still deserves a comparison.
            return _pygments_tokens(source, "python")
    return _pygments_tokens(source, language)


# ---------------------------------------------------------------------------
# Hashing and winnowing


def _token_id(text: str) -> int:
    return zlib.crc32(text.encode()) + 1


def kgram_hashes(tokens: Sequence[Token], k: int) -> list[int]:
    """The hash of every run of ``k`` tokens, in order (empty when there are fewer)."""
    n = len(tokens)
    if n < k:
        return []
    ids = [_token_id(t.text) for t in tokens]
    top = pow(_BASE, k - 1, _MOD)
    h = 0
    for i in range(k):
        h = (h * _BASE + ids[i]) % _MOD
    out = [h]
    for i in range(k, n):
        h = ((h - ids[i - k] * top) * _BASE + ids[i]) % _MOD
        out.append(h)
    return out


def winnow(hashes: Sequence[int], window: int) -> list[tuple[int, int]]:
    """Robust winnowing: ``(hash, position)`` of the minimum of every window, each once.

    Ties go to the rightmost minimum, so a run of equal hashes (repetitive
    code) yields few fingerprints rather than one per window.
    """
    n = len(hashes)
    if n == 0:
        return []
    if n <= window:
        pos = min(range(n), key=lambda i: (hashes[i], -i))
        return [(hashes[pos], pos)]
    chosen: list[tuple[int, int]] = []
    last = -1
    for start in range(n - window + 1):
        best = start
        best_hash = hashes[start]
        for i in range(start + 1, start + window):
            if hashes[i] <= best_hash:
                best, best_hash = i, hashes[i]
        if best != last:
            chosen.append((best_hash, best))
            last = best
    return chosen


def fingerprint(
    source: str,
    language: str,
    *,
    template_hashes: frozenset[int] = frozenset(),
    settings: SimilaritySettings = DEFAULT_SETTINGS,
) -> Fingerprints:
    """Tokens and winnowed fingerprints of one program, the template's k-grams removed."""
    tokens = tokenize_source(source, language)
    k = settings.k
    hashes = kgram_hashes(tokens, k)
    fp = Fingerprints(tokens=tokens)
    if template_hashes:
        for pos, h in enumerate(hashes):
            if h in template_hashes:
                fp.template_covered.update(range(pos, pos + k))
    span = (1 << k) - 1
    for h, pos in winnow(hashes, settings.window):
        if h in template_hashes:
            continue
        fp.positions.setdefault(h, []).append(pos)
        fp.masks[h] = fp.masks.get(h, 0) | (span << pos)
    every = (1 << len(tokens)) - 1
    template = sum(1 << p for p in fp.template_covered if p < len(tokens))
    fp.countable_mask = every & ~template
    return fp


def template_hashes_of(
    templates: Iterable[str], language: str, settings: SimilaritySettings = DEFAULT_SETTINGS
) -> frozenset[int]:
    """Every k-gram hash (not only the winnowed ones) of the code handed out with the question."""
    out: set[int] = set()
    for text in templates:
        if text.strip():
            out.update(kgram_hashes(tokenize_source(text, language), settings.k))
    return frozenset(out)


# ---------------------------------------------------------------------------
# Pairs, regions, clusters


# A hash seen more often than this inside one program is repetition (a run of
# identical statements); pairing all its positions would only blur the regions.
_MAX_POSITIONS_PAIRED = 4


def _regions(a: Fingerprints, b: Fingerprints, shared: Sequence[int], k: int) -> tuple[Region, ...]:
    matches: list[tuple[int, int]] = []
    for h in shared:
        pa = a.positions[h][:_MAX_POSITIONS_PAIRED]
        pb = b.positions[h][:_MAX_POSITIONS_PAIRED]
        matches.extend((x, y) for x in pa for y in pb)
    matches.sort()
    # Greedy chaining: a match extends a run when it follows on from the run's
    # last match in both programs (forward, by about the same distance);
    # otherwise it starts a run of its own. Reordered functions thus come back
    # as separate regions that cross over, not as one region spanning both.
    gap = 2 * k
    runs: list[list[int]] = []  # [a_start, a_end, b_start, b_end, last_x, last_y]
    for x, y in matches:
        for run in reversed(runs[-8:]):
            dx, dy = x - run[4], y - run[5]
            if 0 <= dx <= gap and -k <= dy <= gap and abs(dy - dx) <= k:
                run[1] = max(run[1], x + k - 1)
                run[2] = min(run[2], y)
                run[3] = max(run[3], y + k - 1)
                run[4], run[5] = x, y
                break
        else:
            runs.append([x, x + k - 1, y, y + k - 1, x, y])
    regions: list[Region] = []
    last_a = len(a.tokens) - 1
    last_b = len(b.tokens) - 1
    for a0, a1, b0, b1, _x, _y in runs:
        a1 = min(a1, last_a)
        b1 = min(b1, last_b)
        regions.append(
            Region(
                a_first=a.tokens[a0].line,
                a_last=a.tokens[a1].line,
                b_first=b.tokens[b0].line,
                b_last=b.tokens[b1].line,
                tokens=a1 - a0 + 1,
            )
        )
    return _merge_regions(regions)


def _merge_regions(regions: list[Region]) -> tuple[Region, ...]:
    regions.sort(key=lambda r: (r.a_first, r.b_first))
    merged: list[Region] = []
    for r in regions:
        if merged:
            m = merged[-1]
            # Only a continuation in both programs merges; a bridge across two
            # reordered functions must not fuse them into one region.
            if m.a_first <= r.a_first <= m.a_last and m.b_first <= r.b_first <= m.b_last:
                merged[-1] = Region(
                    a_first=m.a_first,
                    a_last=max(m.a_last, r.a_last),
                    b_first=min(m.b_first, r.b_first),
                    b_last=max(m.b_last, r.b_last),
                    tokens=m.tokens + r.tokens,
                )
                continue
        merged.append(r)
    return tuple(merged)


def score_pair(
    a: Fingerprints, b: Fingerprints, ignored: frozenset[int] = frozenset()
) -> tuple[float, float, float, list[int]]:
    """``(score, a_coverage, b_coverage, shared hashes)`` of two fingerprinted programs.

    A side's coverage is the share of its countable tokens (those not handed
    out in the template) inside some k-gram the other program also holds.
    """
    shared = sorted((a.masks.keys() & b.masks.keys()) - ignored)
    mask_a = 0
    mask_b = 0
    for h in shared:
        mask_a |= a.masks[h]
        mask_b |= b.masks[h]
    share_a = (mask_a & a.countable_mask).bit_count() / max(a.countable, 1)
    share_b = (mask_b & b.countable_mask).bit_count() / max(b.countable, 1)
    return (share_a + share_b) / 2, share_a, share_b, shared


def clusters_of(edges: Iterable[tuple[str, str]], min_size: int = 3) -> list[tuple[str, ...]]:
    """Connected components of at least ``min_size`` keys, largest first, keys sorted."""
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        parent.setdefault(x, x)
        root = x
        while parent[root] != root:
            root = parent[root]
        while parent[x] != root:
            parent[x], x = root, parent[x]
        return root

    for a, b in edges:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    groups: dict[str, list[str]] = defaultdict(list)
    for x in list(parent):
        groups[find(x)].append(x)
    found = [tuple(sorted(g)) for g in groups.values() if len(g) >= min_size]
    found.sort(key=lambda g: (-len(g), g))
    return found


def compare_cohort(
    submissions: Sequence[Submission],
    language: str,
    *,
    templates: Iterable[str] = (),
    settings: SimilaritySettings = DEFAULT_SETTINGS,
    report_below_threshold: bool = False,
) -> CohortReport:
    """Compare every program of a cohort (one question, one language) with every other.

    Only pairs that share at least ``settings.min_shared`` fingerprints are
    scored, found through an inverted index rather than by looking at every
    pair. ``report_below_threshold`` returns every scored pair (the bench and
    the tests use it to sweep the threshold).
    """
    base = template_hashes_of(templates, language, settings)
    prints: dict[str, Fingerprints] = {}
    skipped: list[str] = []
    for sub in submissions:
        fp = fingerprint(sub.source, language, template_hashes=base, settings=settings)
        if fp.countable < settings.min_tokens or not fp.positions:
            skipped.append(sub.key)
            continue
        prints[sub.key] = fp

    index: dict[int, list[str]] = defaultdict(list)
    for key, fp in prints.items():
        for h in fp.positions:
            index[h].append(key)
    cohort = len(prints)
    common_limit = max(settings.common_min_count, int(settings.common_share * cohort))

    shared_counts: dict[tuple[str, str], int] = defaultdict(int)
    ignored: set[int] = set()
    for h, holders in index.items():
        if len(holders) > common_limit:
            ignored.add(h)
            continue
        if len(holders) < 2:
            continue
        for i, x in enumerate(holders):
            for y in holders[i + 1 :]:
                shared_counts[(x, y) if x < y else (y, x)] += 1

    pairs: list[PairMatch] = []
    scored = 0
    frozen_ignored = frozenset(ignored)
    for (x, y), count in shared_counts.items():
        if count < settings.min_shared:
            continue
        fa, fb = prints[x], prints[y]
        # The score is at most what the shared fingerprints could cover; a pair
        # that shares too small a part of either program is not worth scoring.
        if count < settings.min_containment * min(len(fa.masks), len(fb.masks)):
            continue
        scored += 1
        score, cov_a, cov_b, shared = score_pair(fa, fb, frozen_ignored)
        if score < settings.threshold and not report_below_threshold:
            continue
        pairs.append(
            PairMatch(
                a=x,
                b=y,
                score=round(score, 4),
                a_coverage=round(cov_a, 4),
                b_coverage=round(cov_b, 4),
                shared=len(shared),
                regions=_regions(fa, fb, shared, settings.k),
            )
        )
    pairs.sort(key=lambda p: (-p.score, p.a, p.b))
    clusters = clusters_of((p.a, p.b) for p in pairs if p.score >= settings.threshold)
    return CohortReport(pairs=pairs, clusters=clusters, skipped=skipped, pairs_scored=scored)
