"""Shared pieces of the sandbox tests: small limits, a runner, one-program judging."""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Collection, Sequence

from safexam.coding.execution import Judgement, Limits, TestCase
from safexam.coding.sandbox import (
    SANDBOX_UID_BASE,
    SANDBOX_UID_SPAN,
    SandboxConfig,
    SandboxRunner,
    sandbox_processes,
)

# Small limits keep the hostile suite fast: a program at the wall limit costs 1-2 s.
LIMITS = Limits(
    cpu_time_s=1, wall_time_s=2, memory_mb=64, output_kb=64, processes=16, file_size_kb=1024
)
WALL_LIMITS = Limits(cpu_time_s=1, wall_time_s=1, memory_mb=64, output_kb=64, processes=16)
COMPILE_LIMITS = Limits(
    cpu_time_s=5, wall_time_s=10, memory_mb=256, output_kb=64, processes=64, file_size_kb=65536
)


def sandbox_uid() -> int | None:
    """A throw-away uid for a sandbox made directly, when we are root (else None)."""
    return SANDBOX_UID_BASE + secrets.randbelow(SANDBOX_UID_SPAN) if os.geteuid() == 0 else None


def make_runner() -> SandboxRunner:
    return SandboxRunner(SandboxConfig(compile_limits=COMPILE_LIMITS))


async def judge_one(
    runner: SandboxRunner,
    language: str,
    program: str,
    *,
    stdin: str = "",
    expected: str | None = None,
    limits: Limits = LIMITS,
    comparison: str = "trimmed",
) -> Judgement:
    test = TestCase(name="t", stdin=stdin, expected_output=expected, points=1)
    return await runner.judge(language, program, [test], limits, comparison)


async def judge_many(
    runner: SandboxRunner,
    language: str,
    program: str,
    tests: Sequence[TestCase],
    limits: Limits = LIMITS,
) -> Judgement:
    return await runner.judge(language, program, list(tests), limits)


def assert_no_sandbox_left(runner: SandboxRunner) -> None:
    """No process of the runner's sandboxes survives a run (escapees, fork bombs, stopped ones).

    Only this runner's uids are checked, so sandboxes of other test runs on the
    machine do not count.
    """
    leftovers = sandbox_processes(set(runner.recent_uids))
    assert leftovers == [], f"sandboxed processes outlived their run: {leftovers}"
    # And the worker itself is still here.
    os.kill(os.getpid(), 0)


def sandboxes_left(uids: Collection[int], timeout_s: float = 5.0) -> list[int]:
    """The processes still running as ``uids`` once none are, or ``timeout_s`` has passed.

    A sandbox's processes end a moment after the call that ended it returns
    (PID 1 exits, then the kernel kills the rest of its namespace). Blocks:
    an async test that needs its event loop running meanwhile waits itself.
    """
    deadline = time.monotonic() + timeout_s
    while (left := sandbox_processes(set(uids))) and time.monotonic() < deadline:
        time.sleep(0.02)
    return left
