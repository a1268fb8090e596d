"""Sandbox overhead: wall time of `python3 -c pass` sandboxed vs bare, side by side.

Each round runs the bare command, then the same command in bwrap alone (our
namespaces and mounts, nothing else), then through
``safexam.coding.sandbox.execute`` (fresh bubblewrap sandbox, limits, uid
drop, the rusage reaper, pipes), alternating so all see the same load.

    .venv/bin/python bench/sandbox.py [--runs 200]

Target: sandboxed at most 1.5x bare, and under 5 ms added.
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import subprocess
import tempfile
import time

from safexam.coding.languages import SYSTEM_PATH
from safexam.coding.runner import Limits
from safexam.coding.sandbox import (
    SANDBOX_UID_BASE,
    SANDBOX_UID_SPAN,
    _bwrap_argv,
    bwrap_path,
    execute,
)

PYTHON = "/usr/bin/python3"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def bare(argv: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(argv, check=True, env={"PATH": SYSTEM_PATH}, stdin=subprocess.DEVNULL)
    return (time.perf_counter() - started) * 1000


def bwrap_only(argv: list[str], box: str) -> float:
    bwrap = bwrap_path()
    assert bwrap is not None, "bubblewrap is not installed"
    sink = os.open(os.devnull, os.O_WRONLY)
    full = _bwrap_argv(
        bwrap, argv, box=box, box_writable=False, chdir="/tmp", tmp_bytes=1 << 20, info_fd=sink
    )
    started = time.perf_counter()
    subprocess.run(full, check=True, stdin=subprocess.DEVNULL, pass_fds=(sink,))
    elapsed = (time.perf_counter() - started) * 1000
    os.close(sink)
    return elapsed


def sandboxed(argv: list[str], box: str, uid: int) -> float:
    started = time.perf_counter()
    run = execute(argv, box=box, limits=Limits(cpu_time_s=5, wall_time_s=10), uid=uid)
    elapsed = (time.perf_counter() - started) * 1000
    if run.exit_code != 0:
        raise SystemExit(f"sandboxed run failed: {run}")
    return elapsed


def summary(name: str, values: list[float]) -> str:
    mean, p50, p95 = statistics.fmean(values), percentile(values, 0.5), percentile(values, 0.95)
    return f"{name:<12} mean {mean:7.2f} ms   p50 {p50:7.2f} ms   p95 {p95:7.2f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=10)
    args = parser.parse_args()
    argv = [PYTHON, "-c", "pass"]
    box = tempfile.mkdtemp(prefix="bench-box-")
    os.chmod(box, 0o755)
    uid = SANDBOX_UID_BASE + secrets.randbelow(SANDBOX_UID_SPAN)
    for _ in range(args.warmup):
        bare(argv)
        sandboxed(argv, box, uid)
    plain: list[float] = []
    boxed: list[float] = []
    bwrapped: list[float] = []
    for _ in range(args.runs):
        plain.append(bare(argv))
        bwrapped.append(bwrap_only(argv, box))
        boxed.append(sandboxed(argv, box, uid))
    os.rmdir(box)
    print(f"python3 -c pass, {args.runs} runs each, alternating (uid drop: {os.geteuid() == 0})")
    print(summary("bare", plain))
    print(summary("bwrap only", bwrapped))
    print(summary("sandboxed", boxed))
    p50_plain, p50_boxed = percentile(plain, 0.5), percentile(boxed, 0.5)
    mean_plain, mean_boxed = statistics.fmean(plain), statistics.fmean(boxed)
    print(
        f"ratio        mean {mean_boxed / mean_plain:.2f}x   p50 {p50_boxed / p50_plain:.2f}x"
        f"   added: mean {mean_boxed - mean_plain:.2f} ms, p50 {p50_boxed - p50_plain:.2f} ms"
    )
    ok = p50_boxed / p50_plain <= 1.5 and p50_boxed - p50_plain < 5
    print(f"target (<= 1.5x and < 5 ms added, at p50): {'met' if ok else 'NOT met'}")
    p50_bwrap = percentile(bwrapped, 0.5)
    print(
        f"of which bwrap alone: {p50_bwrap / p50_plain:.2f}x, {p50_bwrap - p50_plain:.2f} ms added;"
        f" limits, uid drop, reaper and pipes: {p50_boxed - p50_bwrap:.2f} ms"
    )


if __name__ == "__main__":
    main()
