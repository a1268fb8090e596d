"""A judge that does not run as root: its sandboxes' tasks are capped, or it refuses to start.

As root the judge drops each sandbox to a throw-away uid, where RLIMIT_NPROC
counts that sandbox alone. Without root that limit would count the worker's
own uid, so only a control group can cap a sandbox's tasks. These run a
real judge as an unprivileged user (``setpriv``): once with nothing
delegated to it (it must refuse, saying what to change), once in a cgroup
delegated to its uid (a fork bomb must hit the task limit).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from safexam.coding.sandbox import bwrap_path, compiled_launcher
from safexam.coding.sandbox.cgroups import cgroup_host

NOBODY = 65534
SETPRIV = shutil.which("setpriv")
REPO = Path(__file__).resolve().parents[2]

pytestmark = [
    pytest.mark.skipif(bwrap_path() is None, reason="bubblewrap is not installed"),
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root to start a judge as another user"),
    pytest.mark.skipif(SETPRIV is None, reason="setpriv (util-linux) is not installed"),
    pytest.mark.skipif(compiled_launcher() is None, reason="no C compiler for the launcher"),
    pytest.mark.timeout(90),
]


@pytest.fixture(autouse=True)
def _clean_state() -> None:
    """These tests touch neither PostgreSQL nor Redis (overrides the database cleanup)."""


_JUDGE = textwrap.dedent(
    """
    import asyncio, json, sys
    from safexam.coding.execution import Limits, RunnerError, TestCase
    from safexam.coding.sandbox import SandboxConfig, SandboxRunner

    try:
        runner = SandboxRunner(SandboxConfig(work_root=sys.argv[1]))
    except RunnerError as exc:
        print(json.dumps({"refused": str(exc)}))
        raise SystemExit(0)
    limits = Limits(cpu_time_s=2, wall_time_s=5, memory_mb=128, processes=16)
    test = TestCase(name="t", expected_output="hi", points=1)
    hello = asyncio.run(runner.judge("python", "print('hi')", [test], limits))
    bomb = asyncio.run(
        runner.judge("python", "import os\\nwhile True:\\n    os.fork()\\n", [test], limits)
    )
    print(json.dumps({
        "hello": hello.verdict,
        "bomb": bomb.verdict,
        "bomb_stderr": bomb.tests[0].stderr[-500:],
    }))
    """
)


@pytest.fixture
def work_root() -> Iterator[Path]:
    """A work root the unprivileged judge may write (pytest's own is root's alone)."""
    root = Path(tempfile.mkdtemp(prefix="safexam-nonroot-"))
    os.chown(root, NOBODY, NOBODY)
    yield root
    shutil.rmtree(root, ignore_errors=True)


def _run_as_nobody(work_root: Path, *, prefix: str = "") -> dict[str, str]:
    command = [SETPRIV or "setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]
    command += [sys.executable, "-c", _JUDGE, str(work_root)]
    argv = ["/bin/sh", "-c", f'{prefix}exec "$@"', "sh", *command]
    done = subprocess.run(
        argv,
        capture_output=True,
        text=True,
        timeout=80,
        cwd=REPO,
        env={"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(REPO / "src"), "HOME": "/"},
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, str] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_a_judge_neither_root_nor_in_a_cgroup_of_its_own_refuses_to_start(
    work_root: Path,
) -> None:
    outcome = _run_as_nobody(work_root)
    refused = outcome.get("refused", "")
    assert "refuses" in refused, outcome
    # The message says what to change.
    assert "as root" in refused and "delegated" in refused


@pytest.fixture
def delegated() -> Iterator[list[str]]:
    """Control groups under ours, owned by the unprivileged uid (as a delegation makes them)."""
    host = cgroup_host()
    if host is None or host.version != 1:
        pytest.skip("delegating cgroup v1 groups is what this host allows")
    made: list[str] = []
    name = f"safexam-test-{uuid.uuid4().hex[:8]}"
    try:
        for _, parent in host.parents:
            path = os.path.join(os.path.dirname(parent), name)
            os.mkdir(path)
            made.append(path)
            for entry in (path, *(os.path.join(path, f) for f in ("cgroup.procs", "tasks"))):
                os.chown(entry, NOBODY, NOBODY)
        yield made
    finally:
        for path in made:
            for child in sorted(Path(path).glob("**/"), key=lambda p: -len(p.parts)):
                if str(child) != path:
                    with_retry_rmdir(str(child))
            with_retry_rmdir(path)


def with_retry_rmdir(path: str) -> None:
    for _ in range(50):
        try:
            os.rmdir(path)
            return
        except FileNotFoundError:
            return
        except OSError:
            time.sleep(0.05)


def test_a_judge_in_a_delegated_cgroup_caps_a_fork_bomb(
    work_root: Path, delegated: list[str]
) -> None:
    join = "".join(f"echo $$ > {path}/cgroup.procs && " for path in delegated)
    outcome = _run_as_nobody(work_root, prefix=join)
    assert "refused" not in outcome, outcome
    assert outcome["hello"] == "accepted", outcome
    # fork() fails at the sandbox's task limit, inside the sandbox.
    assert outcome["bomb"] == "runtime_error", outcome
    assert "Resource temporarily unavailable" in outcome["bomb_stderr"], outcome
