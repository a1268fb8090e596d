"""How a finished program is judged: from what happened to a process to a verdict."""

from __future__ import annotations

import signal

import msgspec

from safexam.coding.execution import Limits, TestCase, TestResult, Verdict, clean_text, grade_output
from safexam.coding.languages import Language
from safexam.coding.sandbox.process import Execution


def classify(
    run: Execution, limits: Limits, language: Language, test: TestCase, comparison: str
) -> Verdict:
    """Turn what happened to a process into a verdict."""
    if run.output_exceeded:
        return "output_limit"
    # The sandbox as a whole went over its memory: whatever its main process
    # made of a killed child, the program did not fit.
    if run.memory_exceeded:
        return "memory_limit"
    cpu_limit_ms = limits.cpu_time_s * 1000
    if (
        run.timed_out
        or run.cpu_exceeded
        or run.cpu_ms >= cpu_limit_ms
        or run.signal == signal.SIGXCPU
    ):
        return "time_limit"
    if run.signal == signal.SIGXFSZ or b"File too large" in run.stderr:
        return "output_limit"
    failed = run.signal is not None or run.exit_code != 0
    if failed:
        stderr = run.stderr.decode("utf-8", errors="replace")
        # The JVM and V8 commit their whole stack and heap reservations, so only
        # their own out-of-memory messages count for them.
        near_cap = (
            language.limit_address_space
            and run.memory_kb is not None
            and run.memory_kb >= limits.memory_mb * 1024 * 0.8
        )
        if near_cap or any(marker in stderr for marker in language.memory_markers):
            return "memory_limit"
        return "runtime_error"
    return grade_output(test, run.stdout.decode("utf-8", errors="replace"), comparison)


def compile_outcome(run: Execution, limits: Limits) -> tuple[bool, str]:
    """Whether a compile (or syntax check) succeeded, and what the student is shown of it."""
    output = clean_text(run.stderr + run.stdout, limits.output_kb * 1024)
    if run.timed_out or run.cpu_exceeded or run.cpu_ms >= limits.cpu_time_s * 1000:
        return False, output + "\n[compilation exceeded its time limit]"
    if run.memory_exceeded:
        return False, output + "\n[compilation exceeded its memory limit]"
    if run.output_exceeded:
        return False, output + "\n[compiler output exceeded its limit]"
    if run.exit_code != 0:
        if run.signal is not None:
            output += f"\n[compiler killed by signal {run.signal}]"
        return False, output
    return True, output


def result_of_run(
    run: Execution,
    test: TestCase,
    limits: Limits,
    language: Language,
    comparison: str,
    keep_output_bytes: int,
) -> TestResult:
    """One test's result from its run under ``limits`` (as they applied to ``language``)."""
    verdict = classify(run, limits, language, test, comparison)
    return TestResult(
        name=test.name,
        hidden=test.hidden,
        verdict=verdict,
        time_ms=_reported_time_ms(run, limits),
        wall_ms=run.wall_ms,
        memory_kb=run.memory_kb,
        exit_code=run.exit_code,
        signal=run.signal,
        stdout=clean_text(run.stdout, keep_output_bytes),
        stderr=clean_text(run.stderr, keep_output_bytes),
        points=test.points if verdict == "accepted" else 0.0,
        max_points=test.points,
    )


def limits_for(lang: Language, limits: Limits) -> Limits:
    """A question's limits as they apply to ``lang`` (slower runtimes get more time)."""
    return msgspec.structs.replace(
        limits,
        cpu_time_s=limits.cpu_time_s * lang.time_multiplier,
        wall_time_s=limits.wall_time_s * lang.time_multiplier,
        processes=limits.processes + lang.extra_processes,
    )


def _reported_time_ms(run: Execution, limits: Limits) -> int:
    """The time a student is shown for one test run."""
    if run.timed_out:
        # Killed at the wall limit, never reaped by the reaper: its CPU time is
        # unknown, and the wall time is the honest figure.
        return run.wall_ms
    if run.signal == signal.SIGXCPU or run.cpu_exceeded:
        # The kernel's verdict is that the CPU limit was reached; on a busy
        # virtual machine rusage can read well under it, which would show a
        # "time limit" below the limit.
        return max(run.cpu_ms, int(limits.cpu_time_s * 1000))
    return run.cpu_ms
