"""Memory, tasks and CPU time limited per sandbox, not per process (the host's control groups).

Each program spreads its use over several processes (or, where a runtime
keeps memory outside its heap flag, outside the heap), each one under the
per-process limits: only a limit on the sandbox as a whole stops them.
Through the real bubblewrap sandbox, in every language.
"""

from __future__ import annotations

import os
import threading
import time

import pytest

from safexam.coding.execution import Limits, RunnerError
from safexam.coding.languages import LANGUAGES
from safexam.coding.sandbox import Sandbox, bwrap_path, cgroups, compiled_launcher, process
from safexam.coding.sandbox.boxes import own_box
from safexam.coding.sandbox.cgroups import SandboxCgroup, cgroup_host
from tests.coding.sandbox_helpers import (
    assert_no_sandbox_left,
    judge_one,
    make_runner,
    sandbox_uid,
    sandboxes_left,
)

pytestmark = [
    pytest.mark.skipif(bwrap_path() is None, reason="bubblewrap is not installed"),
    pytest.mark.skipif(
        compiled_launcher() is None or cgroup_host() is None,
        reason="no control groups for sandboxes on this host (safexam doctor says why)",
    ),
    pytest.mark.timeout(90),
]


@pytest.fixture(autouse=True)
def _clean_state() -> None:
    """These tests touch neither PostgreSQL nor Redis (overrides the database cleanup)."""


@pytest.fixture
def runner():  # type: ignore[no-untyped-def]
    runner = make_runner()
    yield runner
    assert_no_sandbox_left(runner)


def _installed(language: str) -> None:
    if not LANGUAGES[language].is_available():
        pytest.skip(f"{language} is not installed")


# Eight children, each touching 200 MB: each is under a 256 MB cap of its own.
_C_MEMORY = """
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>
int main(void) {
  for (int i = 0; i < 8; i++) {
    if (fork() == 0) {
      /* volatile: the compiler may not drop a buffer nobody reads. */
      volatile char *p = (volatile char *) malloc(200 << 20);
      for (long j = 0; p && j < (200 << 20); j += 4096) p[j] = 1;
      sleep(2);
      _exit(0);
    }
  }
  while (wait(NULL) > 0) {}
  puts("ok");
  return 0;
}
"""

SPREAD_MEMORY = {
    "python": (
        "import os, time\n"
        "for _ in range(8):\n"
        "    if os.fork() == 0:\n"
        "        b = bytearray(200 << 20)\n"
        "        for i in range(0, len(b), 4096): b[i] = 1\n"
        "        time.sleep(2)\n"
        "        os._exit(0)\n"
        "while True:\n"
        "    try: os.wait()\n"
        "    except ChildProcessError: break\n"
        "print('ok')\n"
    ),
    "c": _C_MEMORY,
    "cpp": _C_MEMORY,
    # Buffers live outside V8's heap, which --max-old-space-size caps.
    "javascript": (
        "const kept = [];\n"
        "for (let i = 0; i < 8; i++) kept.push(Buffer.alloc(200 << 20, 1));\n"
        "console.log('ok');\n"
    ),
    # Direct buffers live outside the heap -Xmx caps.
    "java": (
        "import java.nio.ByteBuffer; import java.util.ArrayList;\n"
        "public class Main { public static void main(String[] a) {\n"
        "  ArrayList<Object> kept = new ArrayList<>();\n"
        "  for (int i = 0; i < 8; i++) { kept.add(new byte[24 << 20]);"
        " java.util.Arrays.fill((byte[]) kept.get(kept.size() - 1), (byte) 1); }\n"
        "  for (int i = 0; i < 8; i++) { ByteBuffer b = ByteBuffer.allocateDirect(30 << 20);"
        " for (int j = 0; j < b.capacity(); j += 4096) b.put(j, (byte) 1); kept.add(b); }\n"
        '  System.out.println("ok"); } }\n'
    ),
}


@pytest.mark.parametrize("language", sorted(SPREAD_MEMORY))
async def test_memory_spread_over_processes_is_a_memory_limit(runner, language: str) -> None:
    _installed(language)
    limits = Limits(cpu_time_s=5, wall_time_s=20, memory_mb=256, processes=16)
    result = await judge_one(
        runner, language, SPREAD_MEMORY[language], expected="ok", limits=limits
    )
    assert result.verdict == "memory_limit", (result.compile_output, result.tests[0].stderr)


# Three busy children, each under the CPU limit of its own, and a parent that
# waits for them: per process, it would get three times its limit.
_C_CPU = """
#include <sys/wait.h>
#include <unistd.h>
int main(void) {
  for (int i = 0; i < 3; i++)
    if (fork() == 0)
      for (volatile unsigned long x = 0;; x++) {}
  while (wait(NULL) > 0) {}
  return 0;
}
"""

SPREAD_CPU = {
    "python": (
        "import os\n"
        "for _ in range(3):\n"
        "    if os.fork() == 0:\n"
        "        while True: pass\n"
        "while True:\n"
        "    try: os.wait()\n"
        "    except ChildProcessError: break\n"
    ),
    "c": _C_CPU,
    "cpp": _C_CPU,
    "javascript": (
        "const { spawn } = require('child_process');\n"
        "for (let i = 0; i < 3; i++) spawn('/bin/sh', ['-c', 'while :; do :; done']);\n"
    ),
    "java": (
        "public class Main { public static void main(String[] a) throws Exception {\n"
        "  Process[] p = new Process[3];\n"
        '  for (int i = 0; i < 3; i++) p[i] = new ProcessBuilder("/bin/sh", "-c",'
        ' "while :; do :; done").start();\n'
        "  for (Process q : p) q.waitFor(); } }\n"
    ),
}


@pytest.mark.parametrize("language", sorted(SPREAD_CPU))
async def test_cpu_spread_over_processes_is_a_time_limit(runner, language: str) -> None:
    _installed(language)
    limits = Limits(cpu_time_s=1, wall_time_s=30, memory_mb=256, processes=16)
    result = await judge_one(runner, language, SPREAD_CPU[language], limits=limits)
    test = result.tests[0]
    assert result.verdict == "time_limit", (result.compile_output, test.stderr)
    allowed_ms = limits.cpu_time_s * LANGUAGES[language].time_multiplier * 1000
    # Stopped near the limit by its summed CPU time, not at the wall limit
    # (its CPU time per process stays well under the limit).
    assert allowed_ms <= test.time_ms <= allowed_ms * 1.5 + 200, test.time_ms
    assert test.wall_ms < limits.wall_time_s * LANGUAGES[language].time_multiplier * 1000


# What a group holds when its sandbox is let go, and where the sandbox's
# processes are: bwrap starts outside the group and is moved in while it sets
# the sandbox up (see safexam.coding.sandbox.cgroups), so these check that the
# move is complete before the program runs and that nothing earlier is charged.

PYTHON = "/usr/bin/python3"
_CONTROLLERS = {"memory", "pids", "cpuacct"}


def _group_lines(text: str, version: int) -> list[str]:
    """The lines of a /proc/PID/cgroup that name the sandbox's groups."""
    lines = []
    for line in text.strip().splitlines():
        _, controllers, path = line.split(":", 2)
        if (version == 1 and set(controllers.split(",")) & _CONTROLLERS) or (
            version == 2 and controllers == ""
        ):
            lines.append(path)
    return lines


def _members(group: SandboxCgroup) -> list[set[int]]:
    members = []
    for procs in group.procs_files():
        with open(procs) as fh:
            members.append({int(pid) for pid in fh.read().split()})
    return members


def _children(pid: int) -> set[int]:
    with open(f"/proc/{pid}/task/{pid}/children") as fh:
        return {int(child) for child in fh.read().split()}


def _charged_bytes(group: SandboxCgroup) -> int:
    name = "memory.usage_in_bytes" if group.host.version == 1 else "memory.current"
    memory = next(path for path in group.dirs if group.host.version == 2 or "/memory/" in path)
    with open(os.path.join(memory, name)) as fh:
        return int(fh.read())


_placed_by_us = pytest.mark.skipif(
    not cgroups.children_listed(), reason="the launcher joins the groups here (no child lists)"
)


@_placed_by_us
def test_the_whole_sandbox_is_in_its_groups_before_the_program_runs(box: str) -> None:
    limits = Limits(cpu_time_s=2, wall_time_s=5, memory_mb=64, processes=16)
    sandbox = Sandbox(
        ["/bin/sh", "-c", "cat /proc/self/cgroup; echo --; cat /proc/1/cgroup"],
        box=box,
        limits=limits,
        uid=sandbox_uid(),
    )
    with sandbox:
        assert sandbox.placed() is None
        group = sandbox._cgroup
        proc = sandbox._proc
        assert group is not None and proc is not None
        name = "/" + os.path.basename(group.dirs[0])
        # bwrap forks the sandbox's PID 1 early in its set-up, maybe after its move.
        deadline = time.monotonic() + 5
        while not (pid_1 := _children(proc.pid)) and time.monotonic() < deadline:
            time.sleep(0.005)
        # bwrap and PID 1 (waiting for the go), each in every group, nothing else.
        assert len(pid_1) == 1
        assert _members(group) == [{proc.pid, *pid_1}] * len(group.dirs)
        run = sandbox.run()
    assert run.exit_code == 0, run.stderr
    program, _, init = run.stdout.decode().partition("--")
    for text in (program, init):
        paths = _group_lines(text, group.host.version)
        assert paths and all(path.endswith(name) for path in paths), text


def test_a_sandbox_after_one_killed_for_its_memory_starts_with_nothing_charged(
    box: str,
) -> None:
    """A time limit stays a time limit after a memory limit: no charge, no kill carried over."""
    limits = Limits(cpu_time_s=1, wall_time_s=10, memory_mb=64, processes=16)
    # The address-space rlimit lifted: only the group can stop these.
    loose = {"limit_address_space": False, "address_space_extra_mb": 2048}
    hog = "b = b'x' * (200 << 20)\n"
    spin = (
        "import os\n"
        "for _ in range(3):\n"
        "    if os.fork() == 0:\n"
        "        while True: pass\n"
        "os.wait()\n"
    )
    for _ in range(3):
        with Sandbox([PYTHON, "-c", hog], box=box, limits=limits, uid=sandbox_uid(), **loose) as s:
            run = s.run()
        assert run.memory_exceeded and not run.cpu_exceeded, run
        sandbox = Sandbox([PYTHON, "-c", spin], box=box, limits=limits, uid=sandbox_uid(), **loose)
        with sandbox:
            assert sandbox.placed() is None
            group = sandbox._cgroup
            assert group is not None
            # Only what bwrap and PID 1 touched since their move, nothing of before.
            assert _charged_bytes(group) < 4 << 20
            assert not group.oom_killed()
            run = sandbox.run()
        assert run.cpu_exceeded and not run.memory_exceeded, run


@_placed_by_us
def test_a_sandbox_its_group_refuses_never_runs_its_program(box: str) -> None:
    uid = sandbox_uid()
    if uid is not None:
        own_box(box, uid)
    # Hold the thread that moves sandboxes into their groups until the groups are gone.
    gate = threading.Event()
    held = cgroups._mover().submit(gate.wait, 10)
    sandbox = Sandbox(
        ["/bin/sh", "-c", "echo ran > /box/ran"],
        box=box,
        box_writable=True,
        limits=Limits(cpu_time_s=2, wall_time_s=5),
        uid=uid,
    )
    try:
        group = sandbox._cgroup
        assert group is not None
        for path in group.dirs:
            os.rmdir(path)
    finally:
        gate.set()
        held.result()
    with sandbox, pytest.raises(RunnerError, match="cgroup"):
        sandbox.run()
    assert not os.path.exists(os.path.join(box, "ran"))
    if uid is not None:
        assert sandboxes_left([uid]) == []


async def test_without_child_lists_the_launcher_joins_the_groups(runner, monkeypatch) -> None:
    """Where the kernel lists no children, the launcher joins before bwrap, limits as binding."""
    monkeypatch.setattr(process, "children_listed", lambda: False)
    limits = Limits(cpu_time_s=1, wall_time_s=20, memory_mb=256, processes=16)
    memory = await judge_one(
        runner, "python", SPREAD_MEMORY["python"], expected="ok", limits=limits
    )
    assert memory.verdict == "memory_limit", memory.tests[0].stderr
    cpu = await judge_one(runner, "python", SPREAD_CPU["python"], limits=limits)
    assert cpu.verdict == "time_limit", cpu.tests[0].stderr
