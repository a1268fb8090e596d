"""Exam start storm: N students load the lobby, start, and load the exam page within a minute,
while other students autosave and the worker pools run.

Starts its own system (bench/pages.py): a database of its own, the API as
``uvicorn --factory safexam.app:create_app --workers 2 --loop uvloop --http
httptools --no-access-log`` (JSON logs), and the worker pools ``grading``
1 x 4, ``judge`` 1 x 1 and ``maintenance`` 1 x 2 (``dramatiq workers``, as
the Procfile). ``--save-workers N`` also starts a second API of N such
processes and the writers send their saves there, as a proxy routing the
autosave path to replicas of their own would (bench/README.md has what that
changed: nothing measurable on this machine)::

    .venv/bin/python bench/start_storm.py --students 500 --window 60

Set-up (not measured): the accounts go into the database in one statement
(one shared password hash); an educator makes an exam with a question of
every kind (four single-choice, multiple-choice, numeric, short text, coding)
through the API and enrols everyone in one call; every student signs in over
the API (the storm is about starting, not signing in), and the ``--writers``
start their sessions.

Then two phases of ``--window`` seconds each, measured after ``--warmup``:

1. baseline: the writers autosave, each every ``--save-interval-ms`` on its
   own clock (bench/autosave.py's ``student``), and nothing else happens;
2. storm: the writers go on saving the same way while the ``--students``
   arrive over the window (``--arrivals uniform``: at random moments;
   ``ramp``: ever more of them towards the end, the rate rising linearly).
   Each, as a browser would, GETs the lobby (``/exams/{id}``) with its
   stylesheets, scripts and icon, POSTs its Start form (with the form's CSRF
   token) and follows the 303 to the exam page (``/sessions/{id}``), fetching
   every static file the page names and the modules those import (each file
   once per student: a browser caches them, ``immutable``).

Printed: p50 / p95 / p99 / max per step (target: p95 < 300 ms), every error
(target: none), the writers' autosave latency in each phase (target: p99
unchanged by the storm), the API's CPU seconds in each phase, and a check in
the database that every student has one active session. Traffic goes to
127.0.0.1 only; every wait is bounded.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gzip
import math
import os
import random
import re
import sys
import threading
import time
import uuid
from typing import Any
from urllib.parse import urlencode

import asyncpg

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from autosave import SAVE, student
from loadgen import (
    Recorder,
    StudentClient,
    join_exam,
    percentile,
    process_cpu_seconds,
    process_tree,
    run_in_processes,
    wait_for_go,
)
from pages import (
    PASSWORD,
    create_accounts,
    create_exam,
    csrf_field,
    kind_questions,
    private_system,
    static_urls,
)

from safexam.core.settings import to_asyncpg_url

LOBBY = "GET /exams/{id} (lobby)"
START = "POST /exams/{id}/start (303)"
PAGE = "GET /sessions/{id} (exam page)"
STATIC = "GET /static/* (first visit)"
ARRIVAL = "whole arrival (lobby + start + page + files)"
STEPS = (LOBBY, START, PAGE, STATIC)
EXPECTED = {LOBBY: 200, START: 303, PAGE: 200, STATIC: 200, ARRIVAL: 200}
HTML = {"Accept": "text/html,application/xhtml+xml", "Accept-Encoding": "gzip"}
FILES = {"Accept": "*/*", "Accept-Encoding": "gzip"}
PHASE_GAP_S = 2.0
# What a module or stylesheet loads in turn: the server writes imports as absolute hashed URLs.
_REFERENCED = re.compile(rb"[\"'(](/static/[^\"')\s]+)[\"')]")


def sched_seconds(root_pid: int) -> tuple[float, float]:
    """(seconds on a CPU, seconds runnable but waiting for one) of a process tree's threads."""
    on_cpu = waiting = 0
    for pid in process_tree(root_pid):
        with contextlib.suppress(OSError):
            for task in os.listdir(f"/proc/{pid}/task"):
                with contextlib.suppress(OSError), open(f"/proc/{pid}/task/{task}/schedstat") as f:
                    ran, waited, _ = (int(v) for v in f.read().split())
                    on_cpu += ran
                    waiting += waited
    return on_cpu / 1e9, waiting / 1e9


def machine_busy() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot (/proc/stat)."""
    with open("/proc/stat") as f:
        fields = [int(v) for v in f.readline().split()[1:]]
    ticks = os.sysconf("SC_CLK_TCK")
    idle = fields[3] + fields[4]
    return (sum(fields) - idle) / ticks, sum(fields) / ticks


def load_average() -> str:
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def windows(start_at: float, warmup: float, window: float) -> list[tuple[float, float, float]]:
    """(begin, measure from, stop) of the baseline and the storm on the monotonic clock."""
    baseline = (start_at, start_at + warmup, start_at + warmup + window)
    begin = baseline[2] + PHASE_GAP_S
    return [baseline, (begin, begin + warmup, begin + warmup + window)]


def arrival_offsets(n: int, window: float, shape: str, seed: str) -> list[float]:
    """When each of ``n`` students arrives, in seconds into the window."""
    rng = random.Random(seed)
    if shape == "uniform":
        return [rng.uniform(0, window) for _ in range(n)]
    # ramp: the density rises linearly from 0, so the offset is window * sqrt(u).
    return [window * math.sqrt(rng.random()) for _ in range(n)]


# What each static file references, read once per client process: a hashed file never
# changes, and parsing the editor bundle for every student would take the CPU the server needs.
_REFERENCES: dict[str, list[str]] = {}


async def fetch_files(client: StudentClient, body: bytes, seen: set[str]) -> None:
    """Every static file ``body`` names that this browser has not fetched yet, and theirs."""
    pending = [u for u in static_urls(body) if u not in seen]
    while pending:
        url = pending.pop()
        if url in seen:
            continue
        seen.add(url)
        _, headers, raw = await client.request("GET", url, STATIC, headers=FILES)
        if url not in _REFERENCES:
            if url.endswith((".js", ".mjs", ".css")):
                if ("content-encoding", "gzip") in headers:
                    raw = gzip.decompress(raw)
                _REFERENCES[url] = [m.decode() for m in _REFERENCED.findall(raw)]
            else:
                _REFERENCES[url] = []
        pending.extend(u for u in _REFERENCES[url] if u not in seen)


async def arrive(client: StudentClient, exam_id: str, at: float, arrivals: Recorder) -> None:
    """One student: the lobby, Start, the exam page, as a browser would (files once)."""
    await asyncio.sleep(max(0.0, at - time.monotonic()))
    began = time.perf_counter()
    seen: set[str] = set()
    try:
        _, _, lobby = await client.request("GET", f"/exams/{exam_id}", LOBBY, headers=HTML)
        await fetch_files(client, lobby, seen)
        form = urlencode({"_csrf_token": csrf_field(lobby)}).encode()
        _, headers, _ = await client.request(
            "POST",
            f"/exams/{exam_id}/start",
            START,
            form,
            content_type="application/x-www-form-urlencoded",
            headers=HTML,
            expect=(303,),
        )
        location = next(v for n, v in headers if n == "location")
        if not location.startswith("/sessions/"):
            raise RuntimeError(f"Start led to {location}")
        _, _, page = await client.request("GET", location, PAGE, headers=HTML)
        await fetch_files(client, page, seen)
    except Exception:  # recorded by the client as a status or transport error
        arrivals.statuses[(ARRIVAL, 0)] += 1
        return
    arrivals.add(ARRIVAL, 200, (time.perf_counter() - began) * 1000)


async def client_process(
    url: str,
    save_url: str,
    exam_id: str,
    writers: list[str],
    stormers: list[str],
    settings: dict[str, Any],
    *,
    ready: object,
    go: object,
) -> dict[str, Any]:
    """One client process: its writers and stormers signed in, then both phases."""
    setup = Recorder()
    writer_clients = [StudentClient(url, setup) for _ in writers]
    storm_clients = [StudentClient(url, setup) for _ in stormers]
    gate = asyncio.Semaphore(4)  # sign-ins are argon2-bound on the server

    async def sign_in(client: StudentClient, email: str) -> None:
        async with gate:
            await client.sign_in(email, PASSWORD)

    window, warmup, interval = settings["window"], settings["warmup"], settings["interval_s"]
    phases: list[dict[str, Any]] = []
    storm = Recorder()
    try:
        joined = await join_exam(writer_clients, writers, PASSWORD, exam_id, kind="mcq_single")
        await asyncio.gather(*(sign_in(c, e) for c, e in zip(storm_clients, stormers, strict=True)))
        start_at = await wait_for_go(ready, go)
        seqs = [0] * len(writer_clients)
        offsets = arrival_offsets(len(stormers), window, settings["arrivals"], settings["seed"])
        for name, (begin, measure_from, stop_at) in zip(
            ("baseline", "storm"), windows(start_at, warmup, window), strict=True
        ):
            recorder = Recorder(measuring=False)
            for c in writer_clients:
                c.recorder = recorder
            arrivals: list[asyncio.Task[None]] = []
            if name == "storm":
                for c in storm_clients:
                    c.recorder = storm
                arrivals = [
                    asyncio.create_task(arrive(c, exam_id, measure_from + offset, storm))
                    for c, offset in zip(storm_clients, offsets, strict=True)
                ]

            async def start_measuring(at: float, recorder: Recorder = recorder) -> None:
                await asyncio.sleep(max(0.0, at - time.monotonic()))
                recorder.measuring = True

            measuring = asyncio.create_task(start_measuring(measure_from))
            counts = await asyncio.gather(
                *(
                    student(
                        c,
                        sid,
                        qids,
                        save_url=save_url,
                        first_seq=seqs[i],
                        start_at=begin,
                        stop_at=stop_at,
                        think_s=0.0,
                        interval_s=interval,
                    )
                    for i, (c, (sid, qids)) in enumerate(zip(writer_clients, joined, strict=True))
                )
            )
            await measuring
            # Late arrivals (ramp) finish within the client timeouts.
            await asyncio.gather(*arrivals)
            seqs = [last for last, _ in counts]
            phases.append({"name": name, "recorder": recorder.to_wire()})
            await asyncio.sleep(max(0.0, stop_at + PHASE_GAP_S - time.monotonic()))
    finally:
        await asyncio.gather(*(c.close() for c in writer_clients + storm_clients))
    return {"phases": phases, "storm": storm.to_wire(), "setup": setup.to_wire()}


def row(name: str, values: list[float], errors: int) -> str:
    values = sorted(values)
    p50, p95, p99 = (percentile(values, p) for p in (50, 95, 99))
    top = values[-1] if values else math.nan
    return (
        f"  {name:<46} {len(values):>6} {p50:>8.1f} {p95:>8.1f} {p99:>8.1f} {top:>8.1f} {errors:>6}"
    )


async def serial_costs(url: str, exam_id: str, emails: list[str], server_pid: int) -> None:
    """Each step once per student, one at a time on an otherwise idle API: CPU per request.

    The API's CPU (its threads' time on a CPU, /proc schedstat) is read around
    each request, so other load on the machine changes the latencies but
    hardly these costs (the API's own idle tasks count in).
    """
    costs: dict[str, list[float]] = {s: [] for s in (LOBBY, START, PAGE)}
    times: dict[str, list[float]] = {s: [] for s in (LOBBY, START, PAGE)}
    for email in emails:
        client = StudentClient(url, Recorder())
        try:
            await client.sign_in(email, PASSWORD)

            async def step(
                name: str, method: str, path: str, client: StudentClient = client, **kw: Any
            ) -> tuple[list[tuple[str, str]], bytes]:
                before, began = sched_seconds(server_pid)[0], time.perf_counter()
                _, headers, body = await client.request(method, path, name, headers=HTML, **kw)
                times[name].append((time.perf_counter() - began) * 1000)
                costs[name].append((sched_seconds(server_pid)[0] - before) * 1000)
                return headers, body

            _, lobby = await step(LOBBY, "GET", f"/exams/{exam_id}")
            headers, _ = await step(
                START,
                "POST",
                f"/exams/{exam_id}/start",
                data=urlencode({"_csrf_token": csrf_field(lobby)}).encode(),
                content_type="application/x-www-form-urlencoded",
                expect=(303,),
            )
            await step(PAGE, "GET", next(v for n, v in headers if n == "location"))
        finally:
            await client.close()
    print(f"one student at a time ({len(emails)}), the API otherwise idle:")
    for name in costs:
        print(
            f"  {name:<46} p50 {percentile(sorted(times[name]), 50):6.1f} ms,"
            f" API CPU per request p50 {percentile(sorted(costs[name]), 50):5.1f} ms"
        )


async def check_sessions(database_url: str, exam_id: str, expected: int) -> int:
    conn = await asyncpg.connect(to_asyncpg_url(database_url).replace("+asyncpg", ""))
    try:
        found: int = await conn.fetchval(
            "SELECT count(*) FROM exam_sessions WHERE exam_id = $1 AND status = 'active'",
            uuid.UUID(exam_id),
        )
        duplicated: int = await conn.fetchval(
            "SELECT count(*) FROM (SELECT user_id FROM exam_sessions WHERE exam_id = $1"
            " GROUP BY user_id HAVING count(*) > 1) d",
            uuid.UUID(exam_id),
        )
    finally:
        await conn.close()
    print(f"database: {found} active sessions of {expected} students, {duplicated} duplicated")
    return 0 if found == expected and not duplicated else 1


async def run(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    async with private_system(
        web_workers=args.web_workers, save_workers=args.save_workers
    ) as system:
        print(f"system up in {time.perf_counter() - started:.1f} s at {system.url}", flush=True)
        run_id = uuid.uuid4().hex[:8]
        accounts = await create_accounts(
            system.database_url, run_id, args.students + args.writers + args.serial
        )
        emails, serial = accounts["students"][args.serial :], accounts["students"][: args.serial]
        writers, stormers = emails[: args.writers], emails[args.writers :]
        educator = StudentClient(system.url, Recorder())
        try:
            await educator.sign_in(accounts["educator"], PASSWORD)
            exam_id = await create_exam(
                educator, f"Start storm {run_id}", kind_questions(coding=True), emails + serial
            )
        finally:
            await educator.close()
        if serial:
            await serial_costs(system.url, exam_id, serial, system.server_pid)
        settings = {
            "window": args.window,
            "warmup": args.warmup,
            "interval_s": args.save_interval_ms / 1000,
            "arrivals": args.arrivals,
            "seed": run_id,
        }
        shards = [
            (
                system.url,
                system.save_url or system.url,
                exam_id,
                writers[i :: args.processes],
                stormers[i :: args.processes],
                settings,
            )
            for i in range(args.processes)
        ]
        cpu: list[float] = [math.nan, math.nan]
        waits: list[float] = [math.nan, math.nan]
        save_cpu: list[float] = [math.nan, math.nan]
        save_waits: list[float] = [math.nan, math.nan]
        save_pid = system.save_pid
        machine: list[float] = [math.nan, math.nan]
        loads: list[str] = []

        def on_all_ready() -> float:
            took = time.perf_counter() - started
            print(f"set-up done in {took:.1f} s: {len(emails)} students signed in", flush=True)
            start_at = time.monotonic() + 0.5

            def sample() -> None:
                for i, (_, measure_from, stop_at) in enumerate(
                    windows(start_at, args.warmup, args.window)
                ):
                    time.sleep(max(0.0, measure_from - time.monotonic()))
                    before = process_cpu_seconds(system.server_pid)
                    sched = sched_seconds(system.server_pid)
                    if save_pid is not None:
                        save_before = sched_seconds(save_pid)
                    busy = machine_busy()
                    loads.append(load_average())
                    time.sleep(max(0.0, stop_at - time.monotonic()))
                    cpu[i] = process_cpu_seconds(system.server_pid) - before
                    after, busy_after = sched_seconds(system.server_pid), machine_busy()
                    waits[i] = after[1] - sched[1]
                    if save_pid is not None:
                        save_after = sched_seconds(save_pid)
                        save_cpu[i] = save_after[0] - save_before[0]
                        save_waits[i] = save_after[1] - save_before[1]
                    machine[i] = (busy_after[0] - busy[0]) / (busy_after[1] - busy[1])

            threading.Thread(target=sample, daemon=True).start()
            return start_at

        total = 2 * (args.warmup + args.window + PHASE_GAP_S) + 120
        children = await asyncio.to_thread(
            run_in_processes,
            client_process,
            shards,
            ready_timeout_s=600,
            total_timeout_s=total,
            on_all_ready=on_all_ready,
        )
        loads.append(load_average())
        status = await check_sessions(system.database_url, exam_id, len(emails) + len(serial))
        system_save_pid = system.save_pid

    storm, phases = Recorder(), {"baseline": Recorder(), "storm": Recorder()}
    for child in children:
        storm.merge_wire(child["storm"])
        for part in child["phases"]:
            phases[part["name"]].merge_wire(part["recorder"])

    print(
        f"\nstorm: {len(stormers)} students arriving ({args.arrivals}) over {args.window:.0f} s;"
        f" {len(writers)} writers autosaving every {args.save_interval_ms:.0f} ms;"
        f" API: uvicorn x {args.web_workers}"
        f"{f', saves: their own uvicorn x {args.save_workers}' if args.save_workers else ''};"
        " load (1/5/15 min) at the phases' starts and end:"
        f" {' | '.join(loads)}"
    )
    print(f"  {'step':<46} {'ok':>6} {'p50':>8} {'p95':>8} {'p99':>8} {'max':>8} {'errors':>6}  ms")
    errors = 0
    for step in (*STEPS, ARRIVAL):
        bad = sum(n for (e, s), n in storm.statuses.items() if e == step and s != EXPECTED[step])
        bad += sum(n for e, n in storm.transport_errors.items() if e.startswith(step))
        errors += bad if step != ARRIVAL else 0
        print(row(step, storm.latencies.get(step, []), bad))
    unexpected = {
        f"{e} {s}": n
        for (e, s), n in sorted(storm.statuses.items())
        if e in EXPECTED and s != EXPECTED[e] and e != ARRIVAL
    }
    print(f"  unexpected statuses: {unexpected or 'none'}")
    print(f"  transport errors: {dict(storm.transport_errors) or 'none'}")
    page_p95 = max(percentile(sorted(storm.latencies.get(s, [])), 95) for s in STEPS[:3])

    print(f"\nautosave during each phase ({args.window:.0f} s measured):")
    print(
        f"  {'phase':<46} {'ok':>6} {'p50':>8} {'p95':>8} {'p99':>8} {'max':>8} {'errors':>6}  ms"
    )
    p99 = {}
    for name, recorder in phases.items():
        bad = sum(n for (e, s), n in recorder.statuses.items() if e == SAVE and s != 200)
        bad += sum(recorder.transport_errors.values())
        errors += bad
        values = recorder.latencies.get(SAVE, [])
        p99[name] = percentile(sorted(values), 99)
        print(row(f"{name} ({len(values) / args.window:.0f} saves/s)", values, bad))
    for name, recorder in phases.items():
        unexpected = {s: n for (e, s), n in recorder.statuses.items() if e == SAVE and s != 200}
        if unexpected or recorder.transport_errors:
            print(f"  {name}: statuses {unexpected}, transport {dict(recorder.transport_errors)}")
    print(
        f"  API CPU in the window: baseline {cpu[0]:.1f} s, storm {cpu[1]:.1f} s;"
        f" its threads runnable but waiting for a CPU: baseline {waits[0]:.1f} s,"
        f" storm {waits[1]:.1f} s; the machine's 2 cores busy: baseline {machine[0]:.0%},"
        f" storm {machine[1]:.0%}"
    )
    if system_save_pid is not None:
        print(
            f"  the saves' own API: CPU baseline {save_cpu[0]:.1f} s, storm {save_cpu[1]:.1f} s;"
            f" runnable but waiting for a CPU: baseline {save_waits[0]:.1f} s,"
            f" storm {save_waits[1]:.1f} s"
        )
    # The API's CPU per arrival barely depends on other load on the machine, unlike latency:
    # the storm's CPU less what its saves cost at the baseline's rate.
    saves = {n: len(r.latencies.get(SAVE, [])) for n, r in phases.items()}
    arrived = len(storm.latencies.get(ARRIVAL, []))
    if arrived and saves["baseline"] and system_save_pid is None:
        extra = cpu[1] - cpu[0] * saves["storm"] / saves["baseline"]
        print(
            f"  API CPU per save {cpu[0] * 1000 / saves['baseline']:.2f} ms (baseline);"
            f" per arrival (lobby, start, page, files) {extra * 1000 / arrived:.1f} ms"
        )
    print(
        f"\nresult: errors {errors} (target 0); slowest step p95 {page_p95:.1f} ms (target < 300);"
        f" autosave p99 {p99['baseline']:.1f} -> {p99['storm']:.1f} ms"
    )
    return 1 if errors or status else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--students", type=int, default=500, help="students in the storm")
    parser.add_argument("--window", type=float, default=60.0, help="seconds the storm spreads over")
    parser.add_argument("--arrivals", choices=("uniform", "ramp"), default="uniform")
    parser.add_argument("--writers", type=int, default=150, help="students autosaving throughout")
    parser.add_argument("--save-interval-ms", type=float, default=1000.0)
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds before each phase")
    parser.add_argument("--processes", type=int, default=2, help="client processes")
    parser.add_argument(
        "--serial", type=int, default=30, help="students first taken one at a time: CPU per step"
    )
    parser.add_argument("--web-workers", type=int, default=2, help="uvicorn processes")
    parser.add_argument(
        "--save-workers",
        type=int,
        default=0,
        help="uvicorn processes of a separate API taking the autosaves (0: the one API)",
    )
    args = parser.parse_args()
    if not 1 <= args.students <= 5_000 or not 0 <= args.writers <= 2_000:
        print("students must be 1..5000 and writers 0..2000", file=sys.stderr)
        return 2
    if not 1 <= args.window <= 600 or not 1 <= args.processes <= 8:
        print("window must be 1..600 s and processes 1..8", file=sys.stderr)
        return 2
    return asyncio.run(run(args))


if __name__ == "__main__":
    sys.exit(main())
