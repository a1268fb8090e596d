"""The sandbox's checks run inside a kernel with cgroup v2 (see test_cgroup_v2.py).

Run by tests/coding/cgroup_v2_init.sh as ``python -m tests.coding.cgroup_v2_inside``
in a User-mode Linux guest whose only cgroup hierarchy is the unified one. Each
check prints one line, ``safexam-v2 {json}``, which the test on the host reads and
asserts on: the judgement's verdict and times, and what the sandbox's control
group recorded (read from the kernel's files just before the group is removed).
The assertions are the test's; a judging that raises prints its error instead.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from typing import Any

from safexam.coding.backends import doctor_report
from safexam.coding.execution import Limits
from safexam.coding.sandbox import SandboxConfig, SandboxRunner, cgroups
from tests.coding.sandbox_helpers import COMPILE_LIMITS, judge_one, make_runner
from tests.coding.test_hostile import FORK_BOMB
from tests.coding.test_sandbox_limits import SPREAD_CPU, SPREAD_MEMORY

MARK = "safexam-v2"

# The files of each sandbox's group, as the kernel left them when the run ended.
_groups: list[dict[str, str]] = []
_remove = cgroups.SandboxCgroup.remove


def _recording_remove(self: cgroups.SandboxCgroup) -> None:
    seen = {"dir": self.dirs[0] if self.dirs else ""}
    for name in ("memory.max", "memory.events", "pids.max", "pids.events", "cpu.stat"):
        try:
            with open(os.path.join(seen["dir"], name)) as fh:
                seen[name] = fh.read()
        except OSError as exc:
            seen[name] = f"unreadable: {exc}"
    _groups.append(seen)
    _remove(self)


cgroups.SandboxCgroup.remove = _recording_remove  # type: ignore[method-assign]


def report(check: str, **fields: Any) -> None:
    print(MARK, json.dumps({"check": check, **fields}), flush=True)


async def judge(
    check: str,
    language: str,
    program: str,
    limits: Limits,
    *,
    runner: SandboxRunner | None = None,
    **kw: Any,
) -> None:
    runner = runner or make_runner()
    _groups.clear()
    started = time.monotonic()
    try:
        result = await judge_one(runner, language, program, limits=limits, **kw)
    except Exception as exc:
        report(check, error=f"{type(exc).__name__}: {exc}")
        return
    test = result.tests[0] if result.tests else None
    report(
        check,
        verdict=result.verdict,
        time_ms=test.time_ms if test else None,
        wall_ms=test.wall_ms if test else None,
        stdout=test.stdout[-200:] if test else "",
        stderr=(test.stderr if test else result.compile_output)[-400:],
        elapsed_s=round(time.monotonic() - started, 2),
        # The last group is the test's run (the first, for C, its compile).
        group=_groups[-1] if _groups else None,
    )


NOBODY = 65534


async def unprivileged_fork_bomb() -> None:
    """A judge as an unprivileged uid in a v2 group delegated to it, as systemd's
    Delegate=yes makes one: only the sandbox's group caps its tasks."""
    delegated = "/sys/fs/cgroup/delegated"
    os.mkdir(delegated)
    for name in ("", "cgroup.procs", "cgroup.subtree_control", "cgroup.threads"):
        os.chown(os.path.join(delegated, name), NOBODY, NOBODY)
    work_root = tempfile.mkdtemp(prefix="safexam-nobody-")
    os.chown(work_root, NOBODY, NOBODY)
    argv = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]
    argv += [sys.executable, "-m", "tests.coding.cgroup_v2_inside", "unprivileged", work_root]
    join = f'echo $$ > {delegated}/cgroup.procs && exec "$@"'
    done = subprocess.run(["/bin/sh", "-c", join, "sh", *argv], timeout=60, check=False)
    if done.returncode != 0:
        report("unprivileged", error=f"exit status {done.returncode}")


async def unprivileged(work_root: str) -> None:
    runner = SandboxRunner(SandboxConfig(work_root=work_root, compile_limits=COMPILE_LIMITS))
    report("unprivileged", uid=os.getuid(), host=str(cgroups.cgroup_host()))
    tasks = Limits(cpu_time_s=2, wall_time_s=5, memory_mb=128, processes=16)
    await judge("fork_bomb", "python", FORK_BOMB["python"], tasks, runner=runner)


async def main() -> None:
    with open("/proc/self/cgroup") as fh:
        own_cgroup = fh.read().strip()
    report(
        "host",
        own_cgroup=own_cgroup,
        host=str(cgroups.cgroup_host()),
        problem=cgroups.cgroup_problem(),
        doctor=[line for line in doctor_report(run_programs=False) if "sandbox" in line],
    )
    await judge(
        "hello",
        "python",
        "print(input().upper())",
        Limits(cpu_time_s=5, wall_time_s=20, memory_mb=128, processes=16),
        stdin="ok\n",
        expected="OK",
    )
    # test_sandbox_limits.py's program, smaller: a page fault costs far more under
    # User-mode Linux (8 x 200 MB under 256 MB takes 20 s there). Eight children
    # of 40 MB, each under the 64 MB a process may have, 320 MB together.
    memory = Limits(cpu_time_s=10, wall_time_s=20, memory_mb=64, processes=16)
    program = SPREAD_MEMORY["c"].replace("200 << 20", "40 << 20")
    if program == SPREAD_MEMORY["c"]:
        raise RuntimeError("test_sandbox_limits.py's C program changed: resize it here")
    await judge("memory", "c", program, memory, expected="ok")
    cpu = Limits(cpu_time_s=2, wall_time_s=30, memory_mb=256, processes=16)
    await judge("cpu", "c", SPREAD_CPU["c"], cpu)
    # As root, RLIMIT_NPROC of the throw-away uid stops a fork bomb too: the
    # group's own cap shows alone in a judge that is not root (next).
    await unprivileged_fork_bomb()
    host = cgroups.cgroup_host()
    parent = host.parents[0][1] if host is not None else ""
    leftover = sorted(e.name for e in os.scandir(parent) if e.is_dir()) if parent else []
    report("done", groups_left=leftover)


if __name__ == "__main__":
    if sys.argv[1:2] == ["unprivileged"]:
        asyncio.run(unprivileged(sys.argv[2]))
    else:
        asyncio.run(main())
