"""The live exam monitor under an exam's load: 500 students autosaving, one educator watching.

Starts its own system (bench/pages.py: a database of its own, the API as
``uvicorn --workers 2 --loop uvloop --http httptools``, no worker pools: none
is on the monitor's path)::

    .venv/bin/python bench/monitor.py --students 500 --save-interval-ms 2000 --window 30

Set-up (not measured): the accounts in one statement, an exam of single-choice
questions made and published through the API, every student enrolled, signed
in and started over the API (which the monitor hears as ``start`` deltas).

Then ``--rounds`` rounds of two phases of ``--window`` seconds each: the
students save every ``--save-interval-ms`` on their own clocks throughout
(each save a real ``PUT /api/v1/sessions/{id}/responses/{qid}``), first with
no monitor connected, then with the educator's monitor stream
(``GET /api/v1/exams/{id}/monitor``) open. Measured:

- latency: for every save acknowledged during a monitor phase, from the
  moment its request was sent to the moment its delta (matched by session
  and ``client_seq``) arrived at the monitor (target: p95 < 1 s), and how many
  saves never showed up;
- the API's CPU seconds in each phase (all its processes, from /proc): the
  monitor's share is (with - without) / with (target: < 10 %);
- the saves' own latency in each phase.

Traffic goes to 127.0.0.1 only; every wait is bounded.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import sys
import threading
import time
import uuid
from typing import Any

import httpx

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from loadgen import (
    Recorder,
    StudentClient,
    check_local_url,
    join_exam,
    percentile,
    process_cpu_seconds,
    run_in_processes,
    wait_for_go,
)
from pages import PASSWORD, create_accounts, create_exam, kind_questions, private_system

SAVE = "PUT /sessions/{id}/responses/{qid}"
PHASE_GAP_S = 2.0


def windows(start_at: float, window: float, rounds: int) -> list[tuple[str, float, float]]:
    """(name, begin, end) of every phase: off, on, off, on..."""
    out = []
    at = start_at
    for _ in range(rounds):
        for name in ("without monitor", "with monitor"):
            out.append((name, at, at + window))
            at += window + PHASE_GAP_S
    return out


async def client_process(
    url: str,
    exam_id: str,
    emails: list[str],
    interval_s: float,
    window: float,
    rounds: int,
    *,
    ready: Any,
    go: Any,
) -> dict[str, Any]:
    """Sign in and start this shard's students, then save until the last phase ends."""
    recorder = Recorder()
    clients = [StudentClient(url, recorder) for _ in emails]
    sent: dict[str, tuple[float, str]] = {}
    phase_latency: dict[str, list[float]] = {}
    try:
        joined = await join_exam(clients, emails, PASSWORD, exam_id, kind="mcq_single")
        start_at = await wait_for_go(ready, go)
        phases = windows(start_at, window, rounds)
        stop_at = phases[-1][2]

        def phase_of(at: float) -> str | None:
            for name, begin, end in phases:
                if begin <= at < end:
                    return name
            return None

        async def save(client: StudentClient, sid: str, qids: list[str]) -> None:
            jitter = random.Random(sid)
            next_at = start_at + jitter.uniform(0, interval_s)
            for seq in range(1, 1_000_000):
                await asyncio.sleep(max(0.0, next_at - time.monotonic()))
                now = time.monotonic()
                if now >= stop_at:
                    return
                qid = qids[seq % len(qids)]
                wall = time.time()
                began = time.perf_counter()
                with contextlib.suppress(Exception):  # recorded by the client
                    await client.call(
                        "PUT",
                        f"/api/v1/sessions/{sid}/responses/{qid}",
                        SAVE,
                        {"answer": {"choice": "abcd"[seq % 4]}, "client_seq": seq},
                        expect=(200,),
                    )
                    name = phase_of(now)
                    if name is not None:
                        phase_latency.setdefault(name, []).append(
                            (time.perf_counter() - began) * 1000
                        )
                        sent[f"{sid}:{seq}"] = (wall, name)
                next_at += interval_s

        await asyncio.gather(
            *(save(c, sid, qids) for c, (sid, qids) in zip(clients, joined, strict=True))
        )
    finally:
        await asyncio.gather(*(c.close() for c in clients))
    errors = {f"{e} {s}": n for (e, s), n in recorder.statuses.items() if s >= 400}
    return {
        "sent": sent,
        "latency": phase_latency,
        "errors": errors,
        "transport": dict(recorder.transport_errors),
    }


async def watch(
    url: str, educator: str, exam_id: str, begin: float, until: float
) -> dict[str, Any]:
    """The educator's monitor from ``begin`` to ``until`` (monotonic): each delta's arrival
    (wall clock) by ``session:seq``, and when the roster arrived (saves before it do not count)."""
    arrived: dict[str, float] = {}
    opened: list[float] = []
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        token = (await client.get("/api/v1/auth/csrf")).json()["csrf_token"]
        client.headers["X-CSRF-Token"] = token
        signed = await client.post(
            "/api/v1/auth/login", json={"email": educator, "password": PASSWORD}
        )
        signed.raise_for_status()
        await asyncio.sleep(max(0.0, begin - time.monotonic()))

        cookies = "; ".join(f"{k}={v}" for k, v in client.cookies.items())

        async def read() -> None:
            # A bare socket, not httpx: the reader shares the two cores with the
            # API it measures, so it must cost next to nothing per delta.
            host, port = url.removeprefix("http://").split(":")
            reader, writer = await asyncio.open_connection(host, int(port), limit=1 << 24)
            writer.write(
                (
                    f"GET /api/v1/exams/{exam_id}/monitor HTTP/1.1\r\nHost: {host}:{port}\r\n"
                    f"Accept: text/event-stream\r\nCookie: {cookies}\r\n\r\n"
                ).encode()
            )
            status = await reader.readline()
            if b" 200 " not in status:
                raise RuntimeError(f"monitor stream refused: {status!r}")
            event = b""
            try:
                while line := await reader.readline():
                    # Chunked transfer: size lines interleave with the SSE lines; only
                    # "event:" and "data:" lines matter, and each arrives whole.
                    if line.startswith(b"event:"):
                        event = line[6:].strip()
                    elif line.startswith(b"data:") and event == b"delta":
                        now = time.time()
                        for delta in json.loads(line[5:]):
                            if delta["kind"] == "save":
                                arrived.setdefault(f"{delta['session']}:{delta['seq']}", now)
                    elif line.startswith(b"data:") and event == b"roster":
                        opened.append(time.time())
            finally:
                writer.close()

        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(read(), timeout=max(0.1, until - time.monotonic()))
    return {
        "arrived": arrived,
        "opened": opened[0] if opened else float("inf"),
        "rosters": len(opened),
    }


def mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else float("nan")


def machine_busy() -> tuple[float, float]:
    """(busy, total) jiffies of the whole machine since boot (/proc/stat)."""
    with open("/proc/stat") as stat:
        fields = [int(x) for x in stat.readline().split()[1:]]
    idle = fields[3] + fields[4]
    return float(sum(fields) - idle), float(sum(fields))


def row(name: str, values: list[float]) -> str:
    ordered = sorted(values)
    return (
        f"  {name:<34} {len(ordered):>7} {percentile(ordered, 50):>8.1f} "
        f"{percentile(ordered, 95):>8.1f} {percentile(ordered, 99):>8.1f} "
        f"{(ordered[-1] if ordered else float('nan')):>8.1f}"
    )


async def run(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    async with private_system(web_workers=args.web_workers, pools={}) as system:
        check_local_url(system.url)
        print(f"system up in {time.perf_counter() - started:.1f} s at {system.url}", flush=True)
        run_id = uuid.uuid4().hex[:8]
        accounts = await create_accounts(system.database_url, run_id, args.students)
        educator = StudentClient(system.url, Recorder())
        try:
            await educator.sign_in(accounts["educator"], PASSWORD)
            exam_id = await create_exam(
                educator,
                f"Monitor bench {run_id}",
                [q for q in kind_questions(4, coding=False) if q["kind"] == "mcq_single"],
                accounts["students"],
            )
        finally:
            await educator.close()
        emails = accounts["students"]
        shards = [
            (
                system.url,
                exam_id,
                emails[i :: args.processes],
                args.save_interval_ms / 1000,
                args.window,
                args.rounds,
            )
            for i in range(args.processes)
        ]
        cpu: dict[str, list[float]] = {}
        client_cpu: dict[str, list[float]] = {}
        machine: dict[str, list[float]] = {}
        monitors: list[asyncio.Future[dict[str, Any]]] = []
        loop = asyncio.get_running_loop()

        def on_all_ready() -> float:
            took = time.perf_counter() - started
            print(f"set-up done in {took:.1f} s: {len(emails)} students started", flush=True)
            start_at = time.monotonic() + 0.5
            phases = windows(start_at, args.window, args.rounds)
            for name, begin, end in phases:
                if name == "with monitor":
                    monitors.append(
                        asyncio.run_coroutine_threadsafe(
                            watch(system.url, accounts["educator"], exam_id, begin, end),
                            loop,
                        )  # type: ignore[arg-type]
                    )

            def sample() -> None:
                for name, begin, end in phases:
                    # The first seconds of a phase (a monitor connecting) are not counted.
                    time.sleep(max(0.0, begin + args.settle - time.monotonic()))
                    before = process_cpu_seconds(system.server_pid)
                    mine, busy = time.process_time(), machine_busy()
                    time.sleep(max(0.0, end - time.monotonic()))
                    spent = process_cpu_seconds(system.server_pid) - before
                    length = end - begin - args.settle
                    cpu.setdefault(name, []).append(spent / length)
                    client_cpu.setdefault(name, []).append((time.process_time() - mine) / length)
                    after = machine_busy()
                    machine.setdefault(name, []).append((after[0] - busy[0]) / (after[1] - busy[1]))

            threading.Thread(target=sample, daemon=True).start()
            return start_at

        total = args.rounds * 2 * (args.window + PHASE_GAP_S) + 120
        children = await asyncio.to_thread(
            run_in_processes,
            client_process,
            shards,
            ready_timeout_s=900,
            total_timeout_s=total,
            on_all_ready=on_all_ready,
        )
        watched = [await asyncio.wrap_future(m) for m in monitors]  # type: ignore[arg-type]

    sent: dict[str, tuple[float, str]] = {}
    latency: dict[str, list[float]] = {}
    errors: dict[str, int] = {}
    for child in children:
        sent.update(child["sent"])
        for name, values in child["latency"].items():
            latency.setdefault(name, []).extend(values)
        for key, n in {**child["errors"], **child["transport"]}.items():
            errors[key] = errors.get(key, 0) + n
    arrived: dict[str, float] = {}
    for w in watched:
        arrived.update(w["arrived"])
    # Saves sent once a monitor had its roster (so was subscribed), while it was open.
    opened = sorted(w["opened"] for w in watched)
    on_windows = [(o, o + args.window) for o in opened]
    watched_saves = {
        k: t
        for k, (t, name) in sent.items()
        if name == "with monitor" and any(a <= t < b for a, b in on_windows)
    }
    delays = [(arrived[k] - t) * 1000 for k, t in watched_saves.items() if k in arrived]
    saves_on = len(watched_saves)
    missing = saves_on - len(delays)

    print(
        f"\n{args.students} students saving every {args.save_interval_ms:.0f} ms"
        f" ({args.students * 1000 / args.save_interval_ms:.0f} saves/s);"
        f" {args.rounds} rounds of {args.window:.0f} s without and {args.window:.0f} s with"
        f" the monitor; API: uvicorn x {args.web_workers}; machine: {os.cpu_count()} cores,"
        f" load average (1/5/15 min) at the end: {' '.join(f'{x:.1f}' for x in os.getloadavg())}"
    )
    print(f"  {'':<34} {'n':>7} {'p50':>8} {'p95':>8} {'p99':>8} {'max':>8}  ms")
    print(row("save sent -> delta at the monitor", delays))
    for name in ("without monitor", "with monitor"):
        print(row(f"autosave, {name}", latency.get(name, [])))
    print(f"  saves during monitor phases never seen by it: {max(0, missing)} of {saves_on}")
    print(f"  monitor rosters received: {sum(w['rosters'] for w in watched)} (one per connection)")
    print(f"  errors: {errors or 'none'}")
    off = sum(cpu.get("without monitor", [])) / max(1, len(cpu.get("without monitor", [])))
    on = sum(cpu.get("with monitor", [])) / max(1, len(cpu.get("with monitor", [])))
    share = (on - off) / on * 100 if on else float("nan")
    print(
        f"  API CPU (cores busy, mean of rounds): without monitor {off:.3f},"
        f" with monitor {on:.3f}; per round: "
        + ", ".join(
            f"{a:.3f}/{b:.3f}"
            for a, b in zip(
                cpu.get("without monitor", []), cpu.get("with monitor", []), strict=False
            )
        )
    )
    for name in ("without monitor", "with monitor"):
        print(
            f"  {name}: the machine {mean(machine.get(name, [])) * 100:.0f} % busy; this"
            f" script's process (the monitor's reader) {mean(client_cpu.get(name, [])):.3f} cores"
        )
    print(f"  the monitor's share of the API's CPU: {share:.1f} % (target < 10 %)")
    p95 = percentile(sorted(delays), 95)
    print(f"  delta latency p95: {p95:.0f} ms (target < 1000 ms)")
    return 0 if delays and p95 < 1000 and share < 10 and not errors else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--students", type=int, default=500)
    parser.add_argument("--save-interval-ms", type=float, default=2000)
    parser.add_argument("--window", type=float, default=30, help="seconds per phase")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--settle", type=float, default=3, help="seconds not counted per phase")
    parser.add_argument("--processes", type=int, default=3, help="client processes")
    parser.add_argument("--web-workers", type=int, default=2)
    args = parser.parse_args()
    import uvloop

    return uvloop.run(run(args))


if __name__ == "__main__":
    raise SystemExit(main())
