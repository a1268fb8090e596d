"""Sandbox overhead: wall time of `python3 -c pass` sandboxed vs bare, side by side.

Each round runs, one after the other so all see the same load:

- ``bare``: the command itself, ``--batch`` times;
- ``bwrap only``: in bwrap alone (our namespaces and mounts, nothing else);
- ``cold``: through ``safexam.coding.sandbox.execute`` (fresh bubblewrap
  sandbox, limits, uid drop, the rusage reaper, pipes), set up on demand:
  what a single Run costs;
- ``warm``: a sandbox started at the beginning of the round, before the
  other measurements, and timed from ``run()`` (source known) to its
  result: what the first step of a judging costs when the judge process has
  a sandbox for that language set up between judgings
  (``SAFEXAM_SANDBOX_WARM``, on by default);
- ``run e2e``: a whole Run of ``pass`` through ``SandboxRunner.judge`` (syntax
  check and one test, each in its own sandbox), with sandboxes set up ahead
  and without, next to two bare runs (the check and the program);
- ``judged``: ``--batch`` runs the way the judge runs a submission's tests,
  each in a fresh sandbox prepared while the previous one runs (the first
  one cold); the whole batch is timed, set-ups included, and divided by its
  size: the wall time per test of a submission with that many tests.
- ``cold/judged rlimits``: the same as ``cold`` and ``judged`` with the
  limits of before (per process only: no control group, no seccomp filter),
  so the cost of limiting memory, tasks and CPU per sandbox and of the filter
  shows side by side (target: under 3 ms more per sandbox).

    .venv/bin/python bench/sandbox.py [--runs 200] [--batch 10]

Target: sandboxed at most 1.5x bare, and under 5 ms added.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import statistics
import subprocess
import tempfile
import time

from safexam.coding.execution import Limits, TestCase
from safexam.coding.languages import BOX, SYSTEM_PATH, get_language
from safexam.coding.sandbox import (
    SANDBOX_UID_BASE,
    SANDBOX_UID_SPAN,
    Sandbox,
    SandboxConfig,
    SandboxRunner,
    bwrap_path,
    execute,
)
from safexam.coding.sandbox.cgroups import cgroup_host
from safexam.coding.sandbox.root import bwrap_argv
from safexam.coding.sandbox.seccomp import seccomp_program

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
    # The mounts of a judged sandbox, whose uid is dropped when we are root.
    full = bwrap_argv(
        bwrap,
        argv,
        box=box,
        box_writable=False,
        chdir="/tmp",
        tmp_bytes=1 << 20,
        info_fd=sink,
        dropped_uid=os.geteuid() == 0,
    )
    started = time.perf_counter()
    subprocess.run(full, check=True, stdin=subprocess.DEVNULL, pass_fds=(sink,))
    elapsed = (time.perf_counter() - started) * 1000
    os.close(sink)
    return elapsed


def sandboxed(argv: list[str], box: str, uid: int | None, *, per_sandbox: bool = True) -> float:
    started = time.perf_counter()
    run = execute(
        argv,
        box=box,
        limits=Limits(cpu_time_s=5, wall_time_s=10),
        uid=uid,
        control_group=per_sandbox,
        seccomp=per_sandbox,
    )
    elapsed = (time.perf_counter() - started) * 1000
    if run.exit_code != 0:
        raise SystemExit(f"sandboxed run failed: {run}")
    return elapsed


def warm_run(sandbox: Sandbox) -> float:
    started = time.perf_counter()
    with sandbox:
        run = sandbox.run()
    elapsed = (time.perf_counter() - started) * 1000
    if run.exit_code != 0:
        raise SystemExit(f"warm run failed: {run}")
    return elapsed


def run_e2e(loop: asyncio.AbstractEventLoop, runner: SandboxRunner) -> float:
    test = TestCase(name="t", stdin="", expected_output=None)
    limits = Limits(cpu_time_s=5, wall_time_s=10)
    started = time.perf_counter()
    result = loop.run_until_complete(runner.judge("python", "pass\n", [test], limits))
    elapsed = (time.perf_counter() - started) * 1000
    if result.verdict != "accepted":
        raise SystemExit(f"run failed: {result}")
    return elapsed


def judged(argv: list[str], box: str, batch: int, *, per_sandbox: bool = True) -> float:
    """Per-run wall time of ``batch`` runs, each sandbox prepared during the previous run."""
    limits = Limits(cpu_time_s=5, wall_time_s=10)

    def prepare() -> Sandbox:
        return Sandbox(
            argv,
            box=box,
            limits=limits,
            uid=fresh_uid(),
            control_group=per_sandbox,
            seccomp=per_sandbox,
        )

    started = time.perf_counter()
    upcoming = prepare()
    for index in range(batch):
        current = upcoming
        upcoming = prepare() if index + 1 < batch else None
        with current:
            run = current.run()
        if run.exit_code != 0:
            raise SystemExit(f"sandboxed run failed: {run}")
    return (time.perf_counter() - started) * 1000 / batch


def fresh_uid() -> int | None:
    return SANDBOX_UID_BASE + secrets.randbelow(SANDBOX_UID_SPAN) if os.geteuid() == 0 else None


def summary(name: str, values: list[float]) -> str:
    mean, p50, p95 = statistics.fmean(values), percentile(values, 0.5), percentile(values, 0.95)
    return f"{name:<12} mean {mean:7.2f} ms   p50 {p50:7.2f} ms   p95 {p95:7.2f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200, help="cold and bwrap-only runs")
    parser.add_argument("--batch", type=int, default=10, help="tests per judged submission")
    parser.add_argument("--warmup", type=int, default=10)
    args = parser.parse_args()
    argv = [PYTHON, "-c", "pass"]
    box = tempfile.mkdtemp(prefix="bench-box-")
    os.chmod(box, 0o755)
    uid = fresh_uid()
    loop = asyncio.new_event_loop()
    warm_runner = SandboxRunner(SandboxConfig(warm=2))
    cold_runner = SandboxRunner(SandboxConfig(warm=0))
    check = get_language("python").compile_argv
    assert check is not None
    source = os.path.join(box, "main.py")
    with open(source, "w") as fh:
        fh.write("pass\n")
    check_argv = [a.replace(BOX, box) for a in check(256)]
    file_argv = [PYTHON, "-I", "-B", source]
    for _ in range(args.warmup):
        bare(argv)
        sandboxed(argv, box, uid)
        run_e2e(loop, warm_runner)
        run_e2e(loop, cold_runner)
    plain: list[float] = []
    boxed: list[float] = []
    bwrapped: list[float] = []
    warmed: list[float] = []
    e2e_plain: list[float] = []
    e2e_warm: list[float] = []
    e2e_cold: list[float] = []
    batched: list[float] = []
    plain_batched: list[float] = []
    boxed_rlimits: list[float] = []
    batched_rlimits: list[float] = []
    for _ in range(args.runs):
        ahead = Sandbox(argv, box=box, limits=Limits(cpu_time_s=5, wall_time_s=10), uid=uid)
        plain.append(bare(argv))
        bwrapped.append(bwrap_only(argv, box))
        boxed.append(sandboxed(argv, box, uid))
        boxed_rlimits.append(sandboxed(argv, box, uid, per_sandbox=False))
        warmed.append(warm_run(ahead))
        e2e_plain.append(bare(check_argv) + bare(file_argv))
        e2e_warm.append(run_e2e(loop, warm_runner))
        e2e_cold.append(run_e2e(loop, cold_runner))
        if len(batched) * args.batch < args.runs:
            started = time.perf_counter()
            for _ in range(args.batch):
                bare(argv)
            plain_batched.append((time.perf_counter() - started) * 1000 / args.batch)
            batched.append(judged(argv, box, args.batch))
            batched_rlimits.append(judged(argv, box, args.batch, per_sandbox=False))
    os.unlink(source)
    os.rmdir(box)
    warm_runner.close()
    loop.close()
    print(f"python3 -c pass, {args.runs} runs each, alternating (uid drop: {os.geteuid() == 0})")
    print(summary("bare", plain))
    print(summary("bwrap only", bwrapped))
    print(summary("cold", boxed))
    print(summary("cold rlimits", boxed_rlimits) + "   (per-process limits only, as before)")
    print(summary("warm", warmed) + "   (set up ahead)")
    print(summary("bare check+run", e2e_plain) + "   (a Run: syntax check, then the program)")
    print(summary("run e2e cold", e2e_cold))
    print(summary("run e2e warm", e2e_warm) + f"   ({warm_runner.warm_hits} set up ahead)")
    print(summary(f"bare x{args.batch}", plain_batched) + "   (per run)")
    print(summary(f"judged x{args.batch}", batched) + "   (per run, set-ups included)")
    print(summary("judged rlimits", batched_rlimits) + "   (per-process limits only, as before)")
    p50_plain, p50_boxed = percentile(plain, 0.5), percentile(boxed, 0.5)
    p50_bwrap = percentile(bwrapped, 0.5)
    print(
        f"cold:   {p50_boxed / p50_plain:.2f}x, {p50_boxed - p50_plain:.2f} ms added (p50);"
        f" bwrap alone {p50_bwrap / p50_plain:.2f}x, {p50_bwrap - p50_plain:.2f} ms added"
    )
    p50_warm = percentile(warmed, 0.5)
    print(f"warm:   {p50_warm / p50_plain:.2f}x, {p50_warm - p50_plain:.2f} ms added (p50)")
    p50_e2e, p50_e2e_warm = percentile(e2e_plain, 0.5), percentile(e2e_warm, 0.5)
    p50_e2e_cold = percentile(e2e_cold, 0.5)
    print(
        f"run e2e: warm {p50_e2e_warm / p50_e2e:.2f}x, {p50_e2e_warm - p50_e2e:.2f} ms added;"
        f" cold {p50_e2e_cold / p50_e2e:.2f}x, {p50_e2e_cold - p50_e2e:.2f} ms added (p50)"
    )
    p50_pb, p50_judged = percentile(plain_batched, 0.5), percentile(batched, 0.5)
    print(
        f"judged: {p50_judged / p50_pb:.2f}x, {p50_judged - p50_pb:.2f} ms added per test (p50"
        f" of {len(batched)} submissions of {args.batch} tests)"
    )
    cost_cold = percentile(boxed, 0.5) - percentile(boxed_rlimits, 0.5)
    cost_judged = p50_judged - percentile(batched_rlimits, 0.5)
    print(
        f"per-sandbox limits (cgroups {cgroup_host() is not None},"
        f" seccomp {seccomp_program() is not None}): cold {cost_cold:+.2f} ms,"
        f" judged {cost_judged:+.2f} ms per test (p50 against per-process limits only);"
        f" target (< 3 ms more): {'met' if max(cost_cold, cost_judged) < 3 else 'NOT met'}"
    )
    for name, ratio, added in (
        ("cold", p50_boxed / p50_plain, p50_boxed - p50_plain),
        ("warm", p50_warm / p50_plain, p50_warm - p50_plain),
        ("judged", p50_judged / p50_pb, p50_judged - p50_pb),
    ):
        ok = ratio <= 1.5 and added < 5
        print(f"target (<= 1.5x and < 5 ms added) for {name}: {'met' if ok else 'NOT met'}")


if __name__ == "__main__":
    main()
