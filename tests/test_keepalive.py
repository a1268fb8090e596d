"""The `make run` wrapper that restarts a process that dies (cli/keepalive.py)."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path


def _start(name: str, command: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "safexam.cli.keepalive", name, command],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def test_a_process_that_dies_is_started_again_with_growing_waits(tmp_path: Path) -> None:
    starts = tmp_path / "starts"
    dying = f"echo started >> {shlex.quote(str(starts))}; exit 3"
    wrapper = _start("flaky", shlex.join(["sh", "-c", dying]))
    try:
        deadline = time.monotonic() + 10
        # Started at 0 s, then after 1 s and 2 s more: three starts by about 3 s.
        while time.monotonic() < deadline and (
            not starts.exists() or len(starts.read_text().split()) < 3
        ):
            time.sleep(0.1)
        started = len(starts.read_text().split())
        assert started == 3, started
        assert wrapper.poll() is None, "the wrapper gave up"
    finally:
        wrapper.send_signal(signal.SIGTERM)
        output = wrapper.communicate(timeout=10)[0].decode()
    assert wrapper.returncode == 0
    assert "process_died" in output and "returncode=3" in output


def test_a_stop_reaches_the_process_and_ends_the_wrapper(tmp_path: Path) -> None:
    ready = tmp_path / "pid"
    script = (
        "import os, signal, sys, time\n"
        f"open({str(ready)!r}, 'w').write(str(os.getpid()))\n"
        "signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))\n"
        "time.sleep(60)\n"
    )
    wrapper = _start("steady", shlex.join([sys.executable, "-c", script]))
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not ready.exists():
            time.sleep(0.05)
        child = int(ready.read_text())
        started = time.monotonic()
        wrapper.send_signal(signal.SIGTERM)
        assert wrapper.wait(timeout=10) == 0
        assert time.monotonic() - started < 5
        # The process got the stop and is gone; nothing was started again.
        try:
            os.kill(child, 0)
            alive = True
        except ProcessLookupError:
            alive = False
        assert not alive
    finally:
        if wrapper.poll() is None:
            wrapper.kill()
            wrapper.wait()
