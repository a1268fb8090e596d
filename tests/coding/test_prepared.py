"""Sandboxes set up ahead of their run: held back until run(), one run each, nothing left over.

The judge prepares each test's sandbox while the previous test runs. These
tests prove that a prepared sandbox does not start the program early, that
an unused one goes away without running anything, and that two sandboxes
alive at once never share a task limit or a file.
"""

from __future__ import annotations

import asyncio
import os
import selectors
import shutil
import signal
import tempfile
import time
import uuid
from typing import Any

import pytest

from safexam.coding.execution import Limits, RunnerError, TestCase
from safexam.coding.languages import get_language
from safexam.coding.sandbox import (
    Sandbox,
    SandboxConfig,
    SandboxRunner,
    bwrap_path,
    default_work_root,
    sandbox_processes,
)
from tests.coding.sandbox_helpers import (
    COMPILE_LIMITS,
    LIMITS,
    assert_no_sandbox_left,
    make_runner,
    sandbox_uid,
    sandboxes_left,
)

pytestmark = [
    pytest.mark.skipif(bwrap_path() is None, reason="bubblewrap is not installed"),
    pytest.mark.timeout(60),
]

PYTHON = "/usr/bin/python3"
RUN_LIMITS = Limits(cpu_time_s=2, wall_time_s=5, memory_mb=64, processes=16)


@pytest.fixture(autouse=True)
def _clean_state() -> None:
    """These tests touch neither PostgreSQL nor Redis (overrides the database cleanup)."""


@pytest.fixture
def box():  # type: ignore[no-untyped-def]
    path = tempfile.mkdtemp(prefix="prepared-box-")
    os.chmod(path, 0o755)
    yield path
    os.rmdir(path)


def test_prepared_sandbox_waits_for_run(box: str) -> None:
    sandbox = Sandbox(
        [PYTHON, "-c", "import time, sys; print(time.time()); print(sys.stdin.read())"],
        box=box,
        limits=RUN_LIMITS,
        uid=sandbox_uid(),
    )
    # Long enough for bwrap to be set up and the program to have run, were it not held.
    time.sleep(0.5)
    released = time.time()
    run = sandbox.run(b"the stdin handed over at run time")
    started_at, echoed = run.stdout.decode().splitlines()[:2]
    assert run.exit_code == 0, run.stderr
    assert float(started_at) >= released - 0.01
    assert echoed == "the stdin handed over at run time"
    # Measured from the release: the half second of waiting is not the program's.
    assert run.wall_ms < 500


def test_unused_sandbox_closes_without_running(box: str) -> None:
    uid = sandbox_uid()
    marker = os.path.join(box, "ran")
    os.chmod(box, 0o777)  # the program could write here, were it ever started
    sandbox = Sandbox(
        [PYTHON, "-c", f"open({'/box/ran'!r}, 'w').write('x')"],
        box=box,
        box_writable=True,
        limits=RUN_LIMITS,
        uid=uid,
    )
    time.sleep(0.2)
    sandbox.close()
    assert not os.path.exists(marker)
    if uid is not None:
        assert sandbox_processes({uid}) == []
    with pytest.raises(RunnerError):
        sandbox.run()


def test_a_sandbox_runs_once(box: str) -> None:
    with Sandbox([PYTHON, "-c", "pass"], box=box, limits=RUN_LIMITS, uid=sandbox_uid()) as sandbox:
        assert sandbox.run().exit_code == 0
        with pytest.raises(RunnerError):
            sandbox.run()


async def test_each_test_has_its_own_task_limit_and_tmp() -> None:
    """Tests 1..n-1 run beside the next test's prepared sandbox; it takes none of their tasks."""
    runner = make_runner()
    program = (
        "import os, time\n"
        "leftover = os.path.exists('/tmp/mark')\n"
        "open('/tmp/mark', 'w').write('x')\n"
        "n = 0\n"
        "for _ in range(100):\n"
        "    try:\n        pid = os.fork()\n    except OSError:\n        break\n"
        "    if pid == 0:\n        time.sleep(3)\n        os._exit(0)\n"
        "    n += 1\n"
        "print(n, leftover)\n"
    )
    tests = [TestCase(name=f"t{i}", stdin="", expected_output=None) for i in range(4)]
    result = await runner.judge("python", program, tests, LIMITS)
    assert_no_sandbox_left(runner)
    outputs = [t.stdout.split() for t in result.tests]
    assert [t.verdict for t in result.tests] == ["accepted"] * 4, outputs
    forked = {int(n) for n, _ in outputs}
    # The same count every time, the last test (no neighbour) included.
    assert len(forked) == 1 and 0 < forked.pop() <= LIMITS.processes - 1
    assert {leftover for _, leftover in outputs} == {"False"}
    if os.geteuid() == 0:
        # A uid for the compile (the box's owner) and one for each test, the first included.
        assert len(set(runner.recent_uids)) == len(tests) + 1


async def test_prepared_sandboxes_of_a_failed_judge_are_closed() -> None:
    """A program that the judge stops early (compile error) leaves no prepared sandbox behind."""
    runner = make_runner()
    tests = [TestCase(name=f"t{i}", stdin="", expected_output="") for i in range(3)]
    result = await runner.judge("c", "int main( {", tests, LIMITS)
    assert result.verdict == "compile_error"
    assert_no_sandbox_left(runner)
    assert get_language("c").compile_argv is not None


@pytest.mark.skipif(os.geteuid() != 0, reason="the compile and the tests share one uid unless root")
async def test_a_restrictive_worker_umask_still_lets_every_test_read_the_program() -> None:
    """Under a hardened umask (027, 077) the compile's uid reads the source and each test's
    uid runs what the compile wrote; nothing turns into a compile or runtime error."""
    work_root = default_work_root().parent / f"safexam-umask-{uuid.uuid4().hex}"
    runner = SandboxRunner(SandboxConfig(work_root=str(work_root), compile_limits=COMPILE_LIMITS))
    tests = [TestCase(name=f"t{i}", stdin="", expected_output="hi\n") for i in range(2)]
    programs = {
        "c": '#include <stdio.h>\nint main(void) { puts("hi"); return 0; }\n',
        "python": 'print("hi")\n',
    }
    previous = os.umask(0o077)
    try:
        for language, program in programs.items():
            result = await runner.judge(language, program, tests, LIMITS)
            assert result.verdict == "accepted", (language, result)
    finally:
        os.umask(previous)
        shutil.rmtree(work_root, ignore_errors=True)
    assert_no_sandbox_left(runner)


@pytest.mark.parametrize("after_ms", [0, 1, 2, 3, 4, 6])
def test_a_sandbox_that_died_before_its_run_is_reaped_not_leaked(box: str, after_ms: int) -> None:
    """bwrap killed at any point of its set-up: the program never starts, nothing is left.

    bwrap arms the parent-death signal only when its set-up is done, so a kill
    a few milliseconds in can leave a finished sandbox behind, waiting to go.
    """
    uid = sandbox_uid()
    sandbox = Sandbox([PYTHON, "-c", "print('ran')"], box=box, limits=RUN_LIMITS, uid=uid)
    proc = sandbox._proc
    assert proc is not None
    time.sleep(after_ms / 1000)
    os.kill(proc.pid, signal.SIGKILL)
    time.sleep(0.2)
    run = sandbox.run()
    assert run.stdout == b""
    assert run.exit_code != 0 or run.signal is not None
    assert proc.returncode is not None  # reaped
    if uid is not None:
        # The sandbox's own PID 1 dies with bwrap (parent-death signal) or, if
        # bwrap died before arranging that, at the end of file on its start pipe.
        assert sandboxes_left({uid}) == []


@pytest.mark.parametrize("after_ms", [0, 1, 3, 6])
def test_a_sandbox_called_off_during_its_set_up_leaves_nothing(box: str, after_ms: int) -> None:
    """bwrap writes its info pipe while setting up: closing our end early would kill it
    by SIGPIPE and orphan its half-made child, which waits forever as the sandbox's uid."""
    uid = sandbox_uid()
    sandbox = Sandbox([PYTHON, "-c", "print('ran')"], box=box, limits=RUN_LIMITS, uid=uid)
    time.sleep(after_ms / 1000)
    sandbox.close()
    proc = sandbox._proc
    assert proc is not None and proc.returncode is not None
    if uid is not None:
        assert sandboxes_left({uid}) == []


async def test_a_cancelled_judge_closes_the_sandbox_it_was_preparing() -> None:
    runner = make_runner()
    slow = "import time\ntime.sleep(0.6)\nprint('done')\n"
    tests = [TestCase(name=f"t{i}", stdin="", expected_output="done\n") for i in range(3)]
    judging = asyncio.ensure_future(runner.judge("python", slow, tests, LIMITS))
    # The test in flight ends on its own; the next one's sandbox is called off.
    await _cancel_and_check(runner, judging, after_s=0.3, timeout_s=5)


@pytest.mark.parametrize("after_s", [0.0, 0.002, 0.004, 0.05])
async def test_a_judge_cancelled_during_its_compile_leaves_nothing(after_s: float) -> None:
    """The first test's sandbox is started on another thread while the compile runs;
    a cancellation at any point of that is followed by nothing left running."""
    runner = make_runner()
    tests = [TestCase(name="t", stdin="", expected_output="hi\n")]
    judging = asyncio.ensure_future(runner.judge("c", _SLOW_TO_COMPILE, tests, LIMITS))
    # A compile already running is not killed: it ends within its own wall
    # limit, which on a loaded machine can be more than a few seconds away.
    await _cancel_and_check(
        runner, judging, after_s=after_s, timeout_s=COMPILE_LIMITS.wall_time_s + 5
    )


# A hello-world compiles and runs in about 40 ms on a fast machine, so a
# cancellation at 50 ms could find the judging already over. Some hundreds of
# loops for the optimiser keep gcc busy for several hundred milliseconds.
_SLOW_TO_COMPILE = "\n".join(
    ["#include <stdio.h>"]
    + [
        f"static int f{i}(int x) {{ int s = 0; for (int k = 0; k < x; k++)"
        f" s += (k * {i}) ^ (s >> 3); return s; }}"
        for i in range(300)
    ]
    + ["int main(void) { volatile int t = 0;"]
    + [f"  t += f{i}(t & 7);" for i in range(300)]
    + ['  puts("hi"); return 0; }', ""]
)


async def _cancel_and_check(
    runner: SandboxRunner, judging: asyncio.Future[Any], *, after_s: float, timeout_s: float
) -> None:
    """Cancel ``judging`` after ``after_s``; then no sandbox of the runner may be left.

    The wait keeps the event loop running: the cancelled judging closes the
    sandboxes it prepared from callbacks on it.
    """
    await asyncio.sleep(after_s)
    # A judging already over would make this test pass without cancelling anything.
    assert not judging.done(), f"the judging ended within {after_s} s: nothing was cancelled"
    judging.cancel()
    with pytest.raises(asyncio.CancelledError):
        await judging
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and sandbox_processes(set(runner.recent_uids)):
        await asyncio.sleep(0.1)
    assert_no_sandbox_left(runner)


def test_boxes_left_by_a_killed_worker_are_removed_at_start(tmp_path) -> None:  # type: ignore[no-untyped-def]
    old, fresh = tmp_path / "box-old", tmp_path / "box-fresh"
    for box in (old, fresh):
        box.mkdir()
        (box / "main.c").write_text("int main(void) { return 0; }\n")
    outside = tmp_path / "not-a-box"
    outside.mkdir()
    (outside / "keep").write_text("x")
    (tmp_path / "box-link").symlink_to(outside)
    hours_ago = time.time() - 2 * 3600
    os.utime(old, (hours_ago, hours_ago))
    os.utime(tmp_path / "box-link", (hours_ago, hours_ago), follow_symlinks=False)

    SandboxRunner(SandboxConfig(work_root=str(tmp_path)))

    assert not old.exists()
    assert (fresh / "main.c").exists()
    # A link is never followed, let alone emptied.
    assert (outside / "keep").exists() and (tmp_path / "box-link").is_symlink()


class _LateSelector(selectors.DefaultSelector):  # type: ignore[misc,valid-type]
    """Its first wait overruns: the run's thread looking late, as on a busy machine."""

    overrun_s = 0.8

    def __init__(self) -> None:
        super().__init__()
        self._late = True

    def select(self, timeout: float | None = None) -> Any:
        if self._late:
            self._late = False
            time.sleep(self.overrun_s)
            return []
        return super().select(timeout)


@pytest.mark.parametrize(
    ("program", "timed_out"),
    [("print('done')", False), ("import time; time.sleep(5)", True)],
)
def test_a_late_look_at_the_deadline_times_out_only_a_program_still_running(
    monkeypatch: pytest.MonkeyPatch, box: str, program: str, timed_out: bool
) -> None:
    """A program that ended well within its wall limit is judged on what it did even when
    the thread watching it gets the CPU back only after the limit; one still running is not."""
    monkeypatch.setattr(selectors, "DefaultSelector", _LateSelector)
    limits = Limits(cpu_time_s=2, wall_time_s=0.5, memory_mb=64, processes=16)
    sandbox = Sandbox([PYTHON, "-c", program], box=box, limits=limits, uid=sandbox_uid())
    with sandbox:
        run = sandbox.run()
    assert run.wall_ms >= 800  # the look really came after the limit
    assert run.timed_out is timed_out
    if not timed_out:
        assert run.exit_code == 0 and run.stdout == b"done\n"
