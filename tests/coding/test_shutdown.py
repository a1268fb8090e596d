"""A judge worker process that stops leaves no sandbox, box or launcher directory behind.

Dramatiq's worker processes end with ``os._exit``, so ``atexit`` never runs
there; the worker's shutdown must do the cleaning. This runs a real Dramatiq
worker (on the stub broker) in a child process that judges with sandboxes set
up ahead, stops the worker, and exits the way Dramatiq's processes do.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest

from safexam.coding.sandbox import bwrap_path, compiled_launcher, default_work_root
from tests.coding.sandbox_helpers import sandboxes_left

pytestmark = [
    pytest.mark.skipif(bwrap_path() is None, reason="bubblewrap is not installed"),
    pytest.mark.skipif(compiled_launcher() is None, reason="no C compiler for the launcher"),
    pytest.mark.timeout(90),
]

_WORKER = textwrap.dedent(
    """
    import asyncio, json, os, sys
    from dramatiq import Worker
    from dramatiq.brokers.stub import StubBroker
    from safexam.coding.execution import Limits, TestCase
    from safexam.coding.sandbox import SandboxCleanup, SandboxConfig, SandboxRunner
    from safexam.coding.sandbox.cgroups import cgroup_host
    from safexam.coding.sandbox.launcher import private_dir

    runner = SandboxRunner(SandboxConfig(work_root=sys.argv[1], warm=2))
    test = TestCase(name="t", expected_output="hi\\n", points=1)
    judged = asyncio.run(runner.judge("python", "print('hi')", [test], Limits()))
    # The refill runs on the pool's own thread: wait until a sandbox waits.
    for _ in range(200):
        if runner.ready_uids():
            break
        asyncio.run(asyncio.sleep(0.05))
    before = {
        "verdict": judged.verdict,
        "private_dir": private_dir(),
        "boxes": os.listdir(sys.argv[1]),
        "uids": sorted(runner.recent_uids),
        "cgroups": [p for _, p in (cgroup_host().parents if cgroup_host() else ())],
    }
    broker = StubBroker()
    broker.add_middleware(SandboxCleanup())
    worker = Worker(broker, worker_threads=1)
    worker.start()
    worker.stop()
    print(json.dumps(before), flush=True)
    os._exit(0)
    """
)


def test_a_stopped_worker_leaves_no_box_launcher_or_process(tmp_path: Path) -> None:
    work_root = default_work_root().parent / f"safexam-stop-{uuid.uuid4().hex}"
    try:
        done = subprocess.run(
            [sys.executable, "-c", _WORKER, str(work_root)],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=Path(__file__).resolve().parents[2],
            env={**os.environ, "PYTHONPATH": "src"},
            check=False,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        before = json.loads(done.stdout.strip().splitlines()[-1])
        assert before["verdict"] == "accepted"
        # There was something to clean: a box waiting for the next judging.
        assert before["boxes"], before
        assert os.path.isdir(before["private_dir"]) is False, "launcher directory left behind"
        assert list(work_root.iterdir()) == [], "boxes left behind"
        assert sandboxes_left(before["uids"]) == []
        # Nor the control groups of its sandboxes.
        for parent in before["cgroups"]:
            assert not os.path.exists(parent), parent
    finally:
        if work_root.exists():
            shutil.rmtree(work_root, ignore_errors=True)


def test_a_judge_that_cannot_hold_its_limits_does_not_boot() -> None:
    """The check runs before a worker consuming the judge queue takes a message; others skip it."""
    from dramatiq.brokers.stub import StubBroker

    from safexam.coding.sandbox import SandboxCleanup

    def refuse() -> None:
        raise RuntimeError("the embedded sandbox refuses to run: ...")

    class Worker:
        def __init__(self, queues: set[str]) -> None:
            self.consumer_whitelist = queues

    cleanup = SandboxCleanup(on_boot=refuse)
    broker = StubBroker()
    with pytest.raises(RuntimeError, match="refuses"):
        cleanup.before_worker_boot(broker, Worker({"judge"}))
    cleanup.before_worker_boot(broker, Worker({"grading"}))
