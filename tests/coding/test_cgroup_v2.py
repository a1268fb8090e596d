"""The sandbox's limits under cgroup v2, in a real kernel whose only hierarchy is the unified one.

This machine (and CI's) binds every controller to cgroup v1, and its v1 groups
must stay as they are. So the v2 path runs in a User-mode Linux guest (Debian's
``user-mode-linux``: a Linux kernel as an ordinary process) whose root is this
machine's file system, read through hostfs: the same code, .venv and bubblewrap.
Its PID 1 (cgroup_v2_init.sh) mounts cgroup2 with memory, pids and cpu, puts
itself in a group of its own as a container or a systemd service would, and
runs cgroup_v2_inside.py, which judges programs through the real sandbox and
prints what each run and its group recorded. The assertions are here.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from safexam.coding.languages import LANGUAGES
from safexam.coding.sandbox import bwrap_path, compiled_launcher

UML = shutil.which("linux.uml")
REPO = Path(__file__).resolve().parents[2]
BOOT_TIMEOUT_S = 150

pytestmark = [
    pytest.mark.skipif(
        UML is None, reason="User-mode Linux is not installed (apt-get install user-mode-linux)"
    ),
    # As another user, the guest's root could read and run only what that user can.
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root to boot the guest on these files"),
    pytest.mark.skipif(bwrap_path() is None, reason="bubblewrap is not installed"),
    pytest.mark.skipif(shutil.which("setpriv") is None, reason="setpriv (util-linux) is missing"),
    pytest.mark.skipif(compiled_launcher() is None, reason="no C compiler for the launcher"),
    pytest.mark.skipif(
        not LANGUAGES["c"].is_available() or not LANGUAGES["python"].is_available(),
        reason="C and Python are needed for the programs judged",
    ),
    pytest.mark.timeout(BOOT_TIMEOUT_S + 30),
]


@pytest.fixture(autouse=True)
def _clean_state() -> None:
    """These tests touch neither PostgreSQL nor Redis (overrides the database cleanup)."""


def _boot(tmp_path: Path) -> tuple[dict[str, dict[str, Any]], str]:
    """Boot the guest; every ``safexam-v2`` line it printed, by check, and its whole output."""
    argv = [
        UML or "/usr/bin/linux.uml",
        "mem=640M",
        "quiet",
        # Kernel messages (the OOM killer's) would break into the lines read here.
        "loglevel=1",
        f"uml_dir={tmp_path}",
        "root=/dev/root",
        "rootfstype=hostfs",
        "rootflags=/",
        "rw",
        f"init={REPO / 'tests/coding/cgroup_v2_init.sh'}",
        # Handed to PID 1 as environment variables.
        f"SAFEXAM_REPO={REPO}",
        f"SAFEXAM_PYTHON={sys.executable}",
        "con=null",
        "con0=fd:0,fd:1",
    ]
    # The guest's memory is a file in TMPDIR; its processes are ours, one group.
    proc = subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "TMPDIR": str(tmp_path)},
        start_new_session=True,
    )
    try:
        output, _ = proc.communicate(timeout=BOOT_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        output, _ = proc.communicate()
        pytest.fail(f"the guest did not finish in {BOOT_TIMEOUT_S} s:\n{output.decode()[-3000:]}")
    finally:
        # Whatever of the guest outlived its kernel.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    text = output.decode(errors="replace")
    checks: dict[str, dict[str, Any]] = {}
    for line in text.splitlines():
        if line.startswith("safexam-v2 "):
            fields = json.loads(line.removeprefix("safexam-v2 "))
            checks[fields["check"]] = fields
    return checks, text


def _events(text: str) -> dict[str, int]:
    return {key: int(value) for key, value in (line.split() for line in text.splitlines())}


def test_sandbox_limits_hold_under_cgroup_v2(tmp_path: Path) -> None:
    checks, output = _boot(tmp_path)
    assert checks.get("exit", {}).get("status") == 0, output[-3000:]

    host = checks["host"]
    # The worker's group held processes: they moved to a leaf, and the sandboxes
    # got groups beside it.
    assert host["own_cgroup"] == "0::/judge/safexam-leaf", host
    assert "version=2" in host["host"] and "/sys/fs/cgroup/judge/safexam-" in host["host"], host
    assert any(line.startswith("sandbox cgroups: ok: v2:") for line in host["doctor"]), host

    hello = checks["hello"]
    assert hello["verdict"] == "accepted" and hello["stdout"] == "OK\n", hello

    # Eight children of 40 MB, each under its own 64 MB: only the group stops them.
    memory = checks["memory"]
    assert memory["verdict"] == "memory_limit", memory
    assert memory["group"]["memory.max"].strip() == str(64 << 20), memory
    assert _events(memory["group"]["memory.events"])["oom_kill"] > 0, memory

    # Three busy children, each under 2 s of its own: stopped at 2 s summed.
    cpu = checks["cpu"]
    allowed_ms = 2 * LANGUAGES["c"].time_multiplier * 1000
    assert cpu["verdict"] == "time_limit", cpu
    assert allowed_ms <= cpu["time_ms"] <= allowed_ms * 1.5 + 200, cpu
    # One CPU in the guest: per process, the three would have run three times as long.
    assert cpu["wall_ms"] < allowed_ms * 2, cpu

    # Not root, so no RLIMIT_NPROC: the group's pids.max alone stopped the bomb.
    assert checks["unprivileged"]["uid"] == 65534, checks["unprivileged"]
    assert "version=2" in checks["unprivileged"]["host"], checks["unprivileged"]
    bomb = checks["fork_bomb"]
    # fork() fails inside the sandbox; the processes left spin on until the
    # CPU limit when the machine is busy (as test_hostile.py's C bomb does).
    assert bomb["verdict"] in {"runtime_error", "time_limit"}, bomb
    assert "Resource temporarily unavailable" in bomb["stderr"], bomb
    assert bomb["wall_ms"] < 5000, bomb
    assert _events(bomb["group"]["pids.events"])["max"] > 0, bomb

    # Every sandbox's group was removed after its run.
    assert checks["done"]["groups_left"] == [], checks["done"]
