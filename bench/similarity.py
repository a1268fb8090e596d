"""Code similarity: quality on the labelled set (ours beside copydetect), and cohort speed.

1. The labelled set in ``tests/integrity/similarity_cases/`` (independent
   originals and disguised copies, per problem): precision and recall of our
   engine at its default threshold, and of ``copydetect`` (its own defaults:
   noise 25, guarantee 25, display 0.33, the starter code as boilerplate) on
   the same files in the same run, then a threshold sweep of ours.
2. A generated cohort of ``--cohort`` Python programs of about ``--lines``
   lines (independent programs built from a shared pool of idioms, plus
   disguised copies in small rings), compared by ``compare_cohort``; target:
   500 programs of ~100 lines within 30 s on a 2-core machine.

    .venv/bin/python bench/similarity.py --cohort 500 --lines 100
"""

from __future__ import annotations

import argparse
import io
import os
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.integrity.labelled import Problem, load_problems, precision_recall  # noqa: E402

from safexam.integrity.similarity import (  # noqa: E402
    DEFAULT_SETTINGS,
    Submission,
    compare_cohort,
)

COPYDETECT_EXT = {"python": "py", "c": "c", "cpp": "cpp", "java": "java", "javascript": "js"}


def ours_scores(problems: list[Problem]) -> dict[frozenset[str], float]:
    scores: dict[frozenset[str], float] = {}
    for p in problems:
        subs = [Submission(k, s) for k, s in p.programs.items()]
        report = compare_cohort(
            subs, p.language, templates=[p.starter], report_below_threshold=True
        )
        for m in report.pairs:
            scores[frozenset((m.a, m.b))] = m.score
    return scores


def copydetect_scores(problems: list[Problem]) -> dict[frozenset[str], float]:
    from copydetect import CodeFingerprint, compare_files, defaults

    k = defaults.NOISE_THRESHOLD
    win = defaults.GUARANTEE_THRESHOLD - defaults.NOISE_THRESHOLD + 1
    scores: dict[frozenset[str], float] = {}
    for p in problems:
        ext = COPYDETECT_EXT[p.language]
        base = CodeFingerprint(f"starter.{ext}", k, 1, fp=io.StringIO(p.starter)).hashes
        prints = {
            key: CodeFingerprint(f"{key}", k, win, boilerplate=list(base), fp=io.StringIO(src))
            for key, src in p.programs.items()
        }
        keys = sorted(prints)
        for i, a in enumerate(keys):
            for b in keys[i + 1 :]:
                _overlap, (s1, s2), _slices = compare_files(prints[a], prints[b])
                scores[frozenset((a, b))] = float(max(s1, s2))
    return scores


def quality() -> None:
    problems = load_problems()
    truth: set[frozenset[str]] = set()
    for p in problems:
        truth |= p.truth()
    n_pairs = sum(len(p.all_pairs()) for p in problems)
    n_programs = sum(len(p.programs) for p in problems)
    langs = sorted({p.language for p in problems})
    print(
        f"labelled set: {len(problems)} problems ({', '.join(langs)}), {n_programs} programs, "
        f"{n_pairs} pairs of which {len(truth)} copied"
    )
    t0 = time.perf_counter()
    ours = ours_scores(problems)
    t_ours = time.perf_counter() - t0
    t0 = time.perf_counter()
    theirs = copydetect_scores(problems)
    t_theirs = time.perf_counter() - t0

    from copydetect import defaults

    rows = [
        ("safexam", DEFAULT_SETTINGS.threshold, ours, t_ours),
        ("copydetect 0.5.0", defaults.DISPLAY_THRESHOLD, theirs, t_theirs),
    ]
    print(f"{'tool':<18}{'threshold':>10}{'precision':>11}{'recall':>8}{'time':>9}")
    for name, threshold, scores, took in rows:
        flagged = {pair for pair, s in scores.items() if s >= threshold}
        precision, recall = precision_recall(flagged, truth)
        print(f"{name:<18}{threshold:>10.2f}{precision:>11.2f}{recall:>8.2f}{took:>8.2f}s")
    print("threshold sweep (precision / recall):")
    for threshold in (0.2, 0.3, 0.4, 0.5, 0.6, 0.7):
        cells = []
        for name, _t, scores, _took in rows:
            flagged = {pair for pair, s in scores.items() if s >= threshold}
            precision, recall = precision_recall(flagged, truth)
            cells.append(f"{name.split()[0]} {precision:.2f}/{recall:.2f}")
        print(f"  {threshold:.1f}: " + "   ".join(cells))
    missed = sorted(sorted(p) for p in truth if ours.get(p, 0.0) < DEFAULT_SETTINGS.threshold)
    for pair in missed:
        print("  safexam missed:", " ~ ".join(pair))


# ---------------------------------------------------------------------------
# The generated cohort

_IDIOMS = [
    "for i in range(len({a})):\n    {b} += {a}[i]",
    "if not {a}:\n    return []",
    "{a} = sorted({b}, key=lambda x: x[0])",
    "while {a} < len({b}):\n    {a} += 1",
    "{a} = {{}}\nfor x in {b}:\n    {a}[x] = {a}.get(x, 0) + 1",
    "result = []\nfor x in {a}:\n    if x > {b}:\n        result.append(x)",
    "{a}, {b} = {b}, {a}",
    "print({a}, {b})",
]


def _expr(rng: random.Random, names: list[str], depth: int = 0) -> str:
    roll = rng.random()
    if depth > 2 or roll < 0.3:
        return rng.choice(names) if rng.random() < 0.7 else str(rng.randint(0, 99))
    if roll < 0.55:
        op = rng.choice(["+", "-", "*", "//", "%", "<", ">", "==", "and", "or"])
        return f"{_expr(rng, names, depth + 1)} {op} {_expr(rng, names, depth + 1)}"
    if roll < 0.75:
        fn = rng.choice(["len", "abs", "min", "max", "sum", "sorted", "str", "int"])
        return f"{fn}({_expr(rng, names, depth + 1)})"
    if roll < 0.9:
        return f"{rng.choice(names)}[{_expr(rng, names, depth + 1)}]"
    return f"({_expr(rng, names, depth + 1)})"


def _block(rng: random.Random, names: list[str], indent: int, budget: int) -> list[str]:
    pad = "    " * indent
    lines: list[str] = []
    while budget > 0:
        roll = rng.random()
        if roll < 0.12 and indent < 3 and budget > 3:
            kind = rng.choice(["if", "for", "while"])
            head = {
                "if": f"if {_expr(rng, names)}:",
                "for": f"for {rng.choice(names)} in range({_expr(rng, names)}):",
                "while": f"while {_expr(rng, names)}:",
            }[kind]
            inner = rng.randint(1, min(5, budget - 1))
            lines.append(pad + head)
            lines += _block(rng, names, indent + 1, inner)
            budget -= inner + 1
        elif roll < 0.2:
            a, b = rng.sample(names, 2)
            for line in rng.choice(_IDIOMS).format(a=a, b=b).splitlines():
                lines.append(pad + line)
            budget -= 2
        else:
            target = rng.choice(names)
            op = rng.choice(["=", "+=", "-=", "="])
            lines.append(f"{pad}{target} {op} {_expr(rng, names)}")
            budget -= 1
    return lines


def generated_program(rng: random.Random, lines: int) -> str:
    names = [f"v{rng.randint(0, 999)}" for _ in range(8)]
    out: list[str] = ["import sys", ""]
    while len(out) < lines:
        fname = f"f{rng.randint(0, 9999)}"
        args = ", ".join(rng.sample(names, 2))
        out.append(f"def {fname}({args}):")
        out += _block(rng, names, 1, rng.randint(6, 18))
        out.append(f"    return {_expr(rng, names)}")
        out.append("")
    return "\n".join(out) + "\n"


def disguise(rng: random.Random, source: str) -> str:
    """A copy as students make one: names changed, functions reordered, comments and dead code."""
    text = source
    for i in range(1000):
        old = f"v{i}"
        if old in text and rng.random() < 0.8:
            text = text.replace(f"{old} ", f"renamed_{i} ").replace(f"{old})", f"renamed_{i})")
    functions = text.split("\ndef ")
    head, bodies = functions[0], functions[1:]
    rng.shuffle(bodies)
    parts = [head]
    for body in bodies:
        parts.append(f"# helper\ndef {body}")
        if rng.random() < 0.3:
            parts.append("def unused_helper(x):\n    return x * 2\n")
    return "\n".join(parts)


def cohort(size: int, lines: int, seed: int = 19) -> list[Submission]:
    rng = random.Random(seed)
    subs: list[Submission] = []
    originals: list[str] = []
    while len(subs) < size:
        if originals and rng.random() < 0.15:
            source = disguise(rng, rng.choice(originals[-20:]))
        else:
            source = generated_program(rng, lines)
            originals.append(source)
        subs.append(Submission(f"s{len(subs):04d}", source))
    return subs


def speed(size: int, lines: int) -> None:
    subs = cohort(size, lines)
    load_before = os.getloadavg()[0]
    mean_lines = sum(s.source.count("\n") for s in subs) / len(subs)
    t0 = time.perf_counter()
    report = compare_cohort(subs, "python")
    took = time.perf_counter() - t0
    print(
        f"cohort: {len(subs)} programs, {mean_lines:.0f} lines on average: {took:.2f} s "
        f"({report.pairs_scored} pairs scored of {len(subs) * (len(subs) - 1) // 2}, "
        f"{len(report.pairs)} similar, {len(report.clusters)} clusters of 3+)"
    )
    print(f"load average before/after the cohort: {load_before:.2f} / {os.getloadavg()[0]:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cohort", type=int, default=500)
    parser.add_argument("--lines", type=int, default=100)
    parser.add_argument("--skip-quality", action="store_true")
    args = parser.parse_args()
    print(f"load average at start: {os.getloadavg()[0]:.2f}")
    if not args.skip_quality:
        quality()
    speed(min(args.cohort, 5000), min(args.lines, 1000))


if __name__ == "__main__":
    main()
