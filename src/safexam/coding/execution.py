"""The one interface every code runner implements, and the values it exchanges.

A runner compiles a program once, runs it against N tests and returns one
result per test. It never raises for anything the program did: a crash, a
timeout or garbage output are verdicts. It raises :class:`RunnerUnavailable`
only when the execution service itself could not do the work (Judge0's queue
is full, a timeout talking to it) so the caller retries later instead of
recording a wrong answer.
"""

from __future__ import annotations

from collections.abc import Awaitable, Sequence
from typing import Literal, Protocol, get_args

import msgspec

from safexam.coding.compare import outputs_match

__all__ = [
    "KEEP_OUTPUT_BYTES",
    "VERDICTS",
    "CodeRunner",
    "Judgement",
    "Limits",
    "Progress",
    "RunnerError",
    "RunnerUnavailable",
    "TestCase",
    "TestResult",
    "Verdict",
    "clean_text",
    "grade_output",
    "overall_verdict",
    "score_of",
]

Verdict = Literal[
    "accepted",
    "wrong_answer",
    "compile_error",
    "runtime_error",
    "time_limit",
    "memory_limit",
    "output_limit",
    "internal_error",
]
VERDICTS: tuple[str, ...] = get_args(Verdict)

# What we keep of a program's stdout/stderr per test: enough to show the
# student, small enough that a submission row stays small.
KEEP_OUTPUT_BYTES = 8 * 1024


class RunnerUnavailable(Exception):
    """The execution service could not take the work now; retry later."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class RunnerError(Exception):
    """The runner is misconfigured or broken; retrying will not help."""


class Limits(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Per-test limits, as in a coding question's ``limits``."""

    cpu_time_s: float = 2.0
    wall_time_s: float = 5.0
    memory_mb: int = 256
    output_kb: int = 64
    # Not in the question body: tasks (processes + threads) and bytes one file may hold.
    processes: int = 16
    file_size_kb: int = 1024


class TestCase(msgspec.Struct, frozen=True, kw_only=True):
    """One test of a coding question. ``expected_output=None`` means "just run it"."""

    __test__ = False  # not a pytest class

    name: str
    stdin: str = ""
    expected_output: str | None = None
    points: float = 0.0
    hidden: bool = False


class TestResult(msgspec.Struct, kw_only=True):
    """How the program did on one test."""

    __test__ = False

    name: str
    hidden: bool
    verdict: Verdict
    time_ms: int
    wall_ms: int = 0
    memory_kb: int | None = None
    exit_code: int | None = None
    signal: int | None = None
    stdout: str = ""
    stderr: str = ""
    points: float = 0.0
    max_points: float = 0.0


class Judgement(msgspec.Struct, kw_only=True):
    """The outcome of compiling a program and running it on every test."""

    verdict: Verdict
    compile_output: str
    tests: list[TestResult]
    score: float
    max_score: float
    executor: str


class Progress(Protocol):
    """Called after each finished test with (done, total), and the results so far
    when the runner has them in test order (the sandbox does; Judge0 polling
    counts only), so that a student watches each test's outcome arrive."""

    def __call__(
        self, done: int, total: int, results: Sequence[TestResult] = ()
    ) -> Awaitable[None]: ...


class CodeRunner(Protocol):
    """Compile once, run every test, return per-test results."""

    name: str

    async def judge(
        self,
        language: str,
        program: str,
        tests: Sequence[TestCase],
        limits: Limits,
        comparison: str = "trimmed",
        progress: Progress | None = None,
    ) -> Judgement:
        """Judge ``program`` (already templated) in ``language`` against ``tests``."""
        ...


def grade_output(test: TestCase, stdout: str, comparison: str) -> Verdict:
    """accepted or wrong_answer for a program that ran cleanly."""
    if test.expected_output is None:
        return "accepted"
    return "accepted" if outputs_match(test.expected_output, stdout, comparison) else "wrong_answer"


def score_of(tests: Sequence[TestResult]) -> float:
    """A submission's score: the points of the tests it passed."""
    return float(sum(t.points for t in tests if t.verdict == "accepted"))


def overall_verdict(tests: Sequence[TestResult]) -> Verdict:
    """The first failing test's verdict, or accepted when every test passed."""
    for test in tests:
        if test.verdict != "accepted":
            return test.verdict
    return "accepted"


def clean_text(data: bytes, limit: int = KEEP_OUTPUT_BYTES) -> str:
    """Decode program output for storage: bounded, valid UTF-8, no NUL (PostgreSQL rejects it)."""
    text = data[:limit].decode("utf-8", errors="replace").replace("\x00", "\ufffd")
    if len(data) > limit:
        text += "\n[... output truncated]"
    return text
