"""Sandbox overhead: wall time of `python3 -c pass` sandboxed vs bare, side by side.

Each round runs the bare command and then the same command through
``safexam.coding.sandbox.execute`` (fresh bubblewrap sandbox, limits, the
reaper, pipes), alternating so both see the same machine load.

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
from safexam.coding.sandbox import SANDBOX_UID_BASE, SANDBOX_UID_SPAN, execute

PYTHON = "/usr/bin/python3"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def bare(argv: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(argv, check=True, env={"PATH": SYSTEM_PATH}, stdin=subprocess.DEVNULL)
    return (time.perf_counter() - started) * 1000


def sandboxed(argv: list[str], box: str, uid: int) -> float:
    started = time.perf_counter()
    run = execute(argv, box=box, limits=Limits(cpu_time_s=5, wall_time_s=10), uid=uid)
    elapsed = (time.perf_counter() - started) * 1000
    if run.exit_code != 0:
        raise SystemExit(f"sandboxed run failed: {run}")
    return elapsed


def summary(name: str, values: list[float]) -> str:
    return (
        f"{name:<12} mean {statistics.fmean(values):7.2f} ms   p50 {percentile(values, 0.5):7.2f} ms"
        f"   p95 {percentile(values, 0.95):7.2f} ms"
    )


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
    for _ in range(args.runs):
        plain.append(bare(argv))
        boxed.append(sandboxed(argv, box, uid))
    os.rmdir(box)
    print(f"python3 -c pass, {args.runs} runs each, alternating (uid drop: {os.geteuid() == 0})")
    print(summary("bare", plain))
    print(summary("sandboxed", boxed))
    p50_plain, p50_boxed = percentile(plain, 0.5), percentile(boxed, 0.5)
    mean_plain, mean_boxed = statistics.fmean(plain), statistics.fmean(boxed)
    print(
        f"ratio        mean {mean_boxed / mean_plain:.2f}x   p50 {p50_boxed / p50_plain:.2f}x"
        f"   added: mean {mean_boxed - mean_plain:.2f} ms, p50 {p50_boxed - p50_plain:.2f} ms"
    )
    ok = p50_boxed / p50_plain <= 1.5 and p50_boxed - p50_plain < 5
    print(f"target (<= 1.5x and < 5 ms added, at p50): {'met' if ok else 'NOT met'}")


if __name__ == "__main__":
    main()
