"""Comparing a program's output with the expected output, and templating.

Comparison modes of a coding question:

- ``exact``: byte-for-byte (after decoding), nothing forgiven.
- ``trimmed``: line endings normalised, trailing spaces of every line and
  trailing blank lines ignored; the usual judge default.
- ``tokens``: the whitespace-separated tokens must be equal.
- ``float:EPS``: as ``tokens``, but two numeric tokens match when they differ
  by at most EPS absolutely or relatively.
"""

from __future__ import annotations

import math
import re

__all__ = [
    "SOURCE_PLACEHOLDER",
    "hide_template_lines",
    "outputs_match",
    "parse_comparison",
    "render_program",
]

# Where a template takes the student's source; the one spelling of it.
SOURCE_PLACEHOLDER = re.compile(r"\{\{\s*SOURCE\s*\}\}")
# A non-negative decimal, as in ``float:0.001`` or ``float:1e-6``.
_EPSILON = re.compile(r"(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?")


def parse_comparison(mode: str) -> tuple[str, float]:
    """Validate a comparison mode; returns (kind, epsilon). ``ValueError`` names the problem.

    The one grammar of comparison modes: question bodies are checked with it
    when authored, and the judge reads them with it.
    """
    if mode in ("exact", "trimmed", "tokens"):
        return mode, 0.0
    if mode.startswith("float:"):
        number = mode.removeprefix("float:")
        if not _EPSILON.fullmatch(number):
            raise ValueError(f"float comparison needs a number after 'float:', not {mode!r}")
        eps = float(number)
        if not math.isfinite(eps):
            raise ValueError(f"float comparison epsilon must be a finite number >= 0, got {eps}")
        return "float", eps
    raise ValueError(f"unknown comparison {mode!r}; use exact, trimmed, tokens or float:EPS")


def _trimmed_lines(text: str) -> list[str]:
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").split("\n")]
    while lines and lines[-1] == "":
        lines.pop()
    return lines


def _numbers_close(expected: str, actual: str, eps: float) -> bool:
    if expected == actual:
        return True
    try:
        want, got = float(expected), float(actual)
    except ValueError:
        return False
    if math.isnan(want) or math.isnan(got):
        return False
    if math.isinf(want) or math.isinf(got):
        return want == got
    return abs(want - got) <= eps or abs(want - got) <= eps * abs(want)


def outputs_match(expected: str, actual: str, mode: str) -> bool:
    """True when ``actual`` is an acceptable output for ``expected`` under ``mode``."""
    kind, eps = parse_comparison(mode)
    if kind == "exact":
        return expected == actual
    if kind == "trimmed":
        return _trimmed_lines(expected) == _trimmed_lines(actual)
    want, got = expected.split(), actual.split()
    if len(want) != len(got):
        return False
    if kind == "tokens":
        return want == got
    return all(_numbers_close(w, g, eps) for w, g in zip(want, got, strict=True))


def render_program(template: str | None, source: str) -> str:
    """The program that runs: the template with ``{{ SOURCE }}`` replaced, or the source itself.

    A function replacement keeps backslashes in student code literal.
    """
    if not template:
        return source
    if not SOURCE_PLACEHOLDER.search(template):
        raise ValueError("template has no {{ SOURCE }} placeholder")
    return SOURCE_PLACEHOLDER.sub(lambda _m: source, template)


HIDDEN_LINE = "[line of the question's template]"
# How compilers and runtimes quote a source line: gcc/clang ("  12 |   code"),
# or the bare line, indented (Python tracebacks, javac, node).
_GUTTER = re.compile(r"^(\s*\d+\s*\|)(.*)$")


def hide_template_lines(text: str, template: str | None, source: str) -> str:
    """``text`` (compiler output, stderr) without the template's own lines quoted in it.

    A template can hold what the student must not see (the harness around
    their function, the checks it makes); compilers and tracebacks quote the
    offending source line, which may be one of those. A quoted line that is
    exactly a template line (spaces aside) and not also a line of the
    student's own code is replaced. Messages that merely name a template
    identifier are left as they are: they are needed to understand the error.
    """
    if not template or not text:
        return text
    own = {line.strip() for line in source.splitlines()}
    secret = {
        stripped
        for line in SOURCE_PLACEHOLDER.sub("", template).splitlines()
        if (stripped := line.strip()) and stripped not in own
    }
    if not secret:
        return text
    lines = text.split("\n")
    for index, line in enumerate(lines):
        gutter = _GUTTER.match(line)
        if gutter is not None and gutter.group(2).strip() in secret:
            lines[index] = f"{gutter.group(1)} {HIDDEN_LINE}"
        elif line.strip() in secret:
            indent = line[: len(line) - len(line.lstrip())]
            lines[index] = indent + HIDDEN_LINE
    return "\n".join(lines)
