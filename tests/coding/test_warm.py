"""Sandboxes set up between judgings: the next judging's first step starts at once.

After each judging the runner starts a fresh sandbox for the same language
around a new, empty box; the next judging writes its source there and lets
it go. These tests run real programs through real bubblewrap and prove that
such a sandbox is used, serves one program only, sees only that program's
source, is dropped when it died or grew old, and leaves nothing behind.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from safexam.coding.execution import TestCase
from safexam.coding.sandbox import (
    SandboxConfig,
    SandboxRunner,
    bwrap_path,
    default_work_root,
    sandbox_processes,
)
from safexam.coding.sandbox import warm as sandbox_warm
from tests.coding.sandbox_helpers import COMPILE_LIMITS, LIMITS, judge_one, sandboxes_left

pytestmark = [
    pytest.mark.skipif(bwrap_path() is None, reason="bubblewrap is not installed"),
    pytest.mark.timeout(90),
]


@pytest.fixture(autouse=True)
def _clean_state() -> None:
    """These tests touch neither PostgreSQL nor Redis (overrides the database cleanup)."""


@pytest.fixture
def work_root() -> Iterator[Path]:
    root = default_work_root().parent / f"safexam-warm-{uuid.uuid4().hex}"
    yield root
    if root.exists():
        leftovers = list(root.iterdir())
        shutil.rmtree(root)
        assert leftovers == [], f"boxes left behind: {leftovers}"


def _runner(work_root: Path, warm: int = 2) -> SandboxRunner:
    return SandboxRunner(
        SandboxConfig(work_root=str(work_root), compile_limits=COMPILE_LIMITS, warm=warm)
    )


def _wait_ready(runner: SandboxRunner, count: int = 1) -> set[int]:
    """The sandbox is started off the judging's path: give it a bounded moment."""
    deadline = time.monotonic() + 10
    while len(runner.ready_uids()) < count and time.monotonic() < deadline:
        time.sleep(0.01)
    uids = runner.ready_uids()
    assert len(uids) >= count, "no sandbox was set up ahead"
    return uids


def _running_as(uids: set[int]) -> list[int]:
    """Processes running as ``uids`` once there are some, or after a bounded wait.

    A sandbox counts as set up ahead as soon as its launcher is started, a
    moment before that launcher drops to the sandbox's uid.
    """
    deadline = time.monotonic() + 5
    while not (found := sandbox_processes(uids)) and time.monotonic() < deadline:
        time.sleep(0.01)
    return found


def _close_and_check(runner: SandboxRunner) -> None:
    runner.close()
    assert runner.ready_uids() == set()
    assert sandboxes_left(runner.recent_uids) == []


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


# Prints the hash of the only file it finds in the box; the runner compares it.
SEES_ITS_OWN_BOX = """import hashlib, os
names = sorted(os.listdir("/box"))
print(names)
print(hashlib.sha256(open("/box/main.py", "rb").read()).hexdigest())
# {marker}
"""


@pytest.mark.parametrize("language", ["python", "c"])
async def test_the_next_judging_starts_in_a_sandbox_set_up_ahead(
    work_root: Path, language: str
) -> None:
    programs = {
        "python": ("print(input().upper())\n", "print(input()[::-1])\n"),
        "c": (
            '#include <stdio.h>\nint main(void){char s[64];scanf("%63s",s);'
            "for(char*p=s;*p;p++)if(*p>=97&&*p<=122)*p-=32;puts(s);}\n",
            "#include <stdio.h>\n#include <string.h>\nint main(void){char s[64];"
            'scanf("%63s",s);for(int i=strlen(s)-1;i>=0;i--)putchar(s[i]);puts("");}\n',
        ),
    }
    upper, reverse = programs[language]
    runner = _runner(work_root)
    try:
        first = await judge_one(runner, language, upper, stdin="exam\n", expected="EXAM")
        assert first.verdict == "accepted", first
        assert runner.warm_hits == 0
        ready = _wait_ready(runner)
        # It waits without running anything: its PID 1 holds the program back.
        assert _running_as(ready), "the sandbox set up ahead is not alive"
        second = await judge_one(runner, language, reverse, stdin="exam\n", expected="maxe")
        assert second.verdict == "accepted", second
        assert runner.warm_hits == 1
        # That sandbox served its one program and is gone; a fresh one replaces it.
        assert sandboxes_left(ready) == []
        assert _wait_ready(runner).isdisjoint(ready)
    finally:
        _close_and_check(runner)


async def test_a_box_set_up_ahead_holds_only_the_program_judged_in_it(work_root: Path) -> None:
    runner = _runner(work_root)
    try:
        for marker in ("student-a", "student-b", "student-c"):
            program = SEES_ITS_OWN_BOX.format(marker=marker)
            expected = f"['main.py']\n{_sha(program)}\n"
            result = await judge_one(runner, "python", program, expected=expected)
            assert result.verdict == "accepted", (marker, result.tests[0].stdout)
            _wait_ready(runner)
        assert runner.warm_hits == 2
    finally:
        _close_and_check(runner)


async def test_compile_errors_and_compiler_bombs_in_a_sandbox_set_up_ahead(
    work_root: Path,
) -> None:
    runner = _runner(work_root)
    try:
        warm_up = await judge_one(runner, "c", "int main(void){return 0;}\n")
        assert warm_up.verdict == "accepted", warm_up
        _wait_ready(runner)
        broken = await judge_one(runner, "c", "int main(void){ return undefined_name; }\n")
        assert broken.verdict == "compile_error"
        assert "undefined_name" in broken.compile_output
        _wait_ready(runner)
        bomb = await judge_one(runner, "c", '#include "/dev/zero"\nint main(void){}\n')
        assert bomb.verdict == "compile_error"
        assert runner.warm_hits == 2
    finally:
        _close_and_check(runner)


async def test_a_sandbox_set_up_ahead_that_died_is_not_used(work_root: Path) -> None:
    runner = _runner(work_root)
    try:
        assert (await judge_one(runner, "python", "print(1)\n", expected="1")).verdict == (
            "accepted"
        )
        _wait_ready(runner)
        _, ready = runner.warm_pool.waiting()[0]
        proc = ready.sandbox._proc
        assert proc is not None
        os.kill(proc.pid, signal.SIGKILL)
        time.sleep(0.2)
        result = await judge_one(runner, "python", "print(2)\n", expected="2")
        assert result.verdict == "accepted", result
        assert runner.warm_hits == 0
    finally:
        _close_and_check(runner)


async def test_a_sandbox_set_up_ahead_is_retired_when_old(
    work_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner = _runner(work_root)
    try:
        await judge_one(runner, "python", "print(1)\n", expected="1")
        old = _wait_ready(runner)
        monkeypatch.setattr(sandbox_warm, "WARM_MAX_AGE_S", 0.0)
        result = await judge_one(runner, "python", "print(2)\n", expected="2")
        assert result.verdict == "accepted", result
        assert runner.warm_hits == 0
        assert sandboxes_left(old) == []
    finally:
        _close_and_check(runner)


def test_sandboxes_set_up_ahead_outlive_the_event_loop_that_asked_for_them(
    work_root: Path,
) -> None:
    """bwrap dies with the thread that started it: the runner starts them on its own thread."""
    runner = _runner(work_root)
    try:
        # Each asyncio.run shuts its loop and default executor down afterwards.
        first = asyncio.run(judge_one(runner, "python", "print(1)\n", expected="1"))
        assert first.verdict == "accepted"
        ready = _wait_ready(runner)
        time.sleep(0.3)
        assert sandbox_processes(ready), "the sandbox set up ahead died with a thread"
        second = asyncio.run(judge_one(runner, "python", "print(2)\n", expected="2"))
        assert second.verdict == "accepted", second
        assert runner.warm_hits == 1
    finally:
        _close_and_check(runner)


async def test_at_most_warm_sandboxes_wait_and_the_oldest_language_gives_way(
    work_root: Path,
) -> None:
    runner = _runner(work_root, warm=1)
    try:
        await judge_one(runner, "python", "print(1)\n", expected="1")
        python_ready = _wait_ready(runner)
        await judge_one(runner, "c", "int main(void){return 0;}\n")
        deadline = time.monotonic() + 10
        while runner.ready_uids() == python_ready and time.monotonic() < deadline:
            time.sleep(0.01)
        assert [key for key, _ in runner.warm_pool.waiting()] == [("c", None)]
        assert len(runner.ready_uids()) == 1
        assert sandboxes_left(python_ready) == []
    finally:
        _close_and_check(runner)


async def test_no_sandbox_is_set_up_ahead_when_warm_is_zero(work_root: Path) -> None:
    runner = _runner(work_root, warm=0)
    try:
        for value in (1, 2):
            result = await judge_one(runner, "python", f"print({value})\n", expected=str(value))
            assert result.verdict == "accepted"
        await asyncio.sleep(0.2)
        assert runner.ready_uids() == set()
        assert runner.warm_hits == 0
    finally:
        _close_and_check(runner)


async def test_concurrent_judgings_share_no_sandbox_set_up_ahead(work_root: Path) -> None:
    """Only one judging can take a waiting sandbox; the others set up their own."""
    runner = _runner(work_root)
    tests = [TestCase(name="t", stdin="", expected_output=None, points=1)]
    try:
        await runner.judge("python", "pass\n", tests, LIMITS)
        _wait_ready(runner)
        programs = [SEES_ITS_OWN_BOX.format(marker=f"student-{i}") for i in range(4)]
        results = await asyncio.gather(
            *(
                runner.judge(
                    "python",
                    program,
                    [TestCase(name="t", stdin="", expected_output=f"['main.py']\n{_sha(program)}")],
                    LIMITS,
                )
                for program in programs
            )
        )
        assert [r.verdict for r in results] == ["accepted"] * 4
        assert runner.warm_hits == 1
    finally:
        _close_and_check(runner)
