"""Autosave load: N simulated students saving answers concurrently against a running API.

Usage (the API must be running, and this script must reach its database for
the set-up step, which creates an educator, an exam and the students)::

    SAFEXAM_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/safexam_bench \\
        .venv/bin/python bench/autosave.py --url http://127.0.0.1:8123 --students 200 --duration 20

Each student signs in over HTTP, starts the exam session, then autosaves,
cycling through the questions with an increasing ``client_seq``. Two shapes:

- closed loop (default): the next save as soon as the previous one answered,
  optionally after ``--think-ms`` (jittered by +-50 %): the ceiling;
- ``--interval-ms``: each student saves on its own clock every interval
  (offered load = students / interval), never two requests at once, as a
  browser's autosave timer does: the latency at a given rate.

The students are spread over ``--processes`` client processes (bench/loadgen.py).
The run is bounded by ``--duration`` seconds. It prints the sustained saves
per second over the measured window, latency percentiles, the count of every
non-200 status and, with ``--server-pid``, the server's CPU time per save
(robust to other load on the machine). The API must run with
``SAFEXAM_COOKIE_SECURE=false`` when served over plain http.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import random
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import insert

from safexam.auth.models import User
from safexam.auth.passwords import hash_password
from safexam.core.db import create_engine, create_sessionmaker
from safexam.core.settings import to_asyncpg_url
from safexam.exams.models import Enrollment, Exam, ExamItem, Question
from safexam.orgs.service import default_organization_id

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

PASSWORD = "bench-password-123"


async def set_up(database_url: str, students: int, questions: int) -> tuple[uuid.UUID, list[str]]:
    """An educator, ``questions`` MCQs, a published open exam, and enrolled students."""
    engine = create_engine(to_asyncpg_url(database_url), pool_size=2)
    maker = create_sessionmaker(engine)
    run = uuid.uuid4().hex[:8]
    # One argon2 hash for every bench student: hashing 1,000 passwords is not what we measure.
    password_hash = hash_password(PASSWORD)
    emails = [f"bench-{run}-{i}@students.example" for i in range(students)]
    async with maker() as db:
        organization = await default_organization_id(db)
        educator = User(
            organization_id=organization,
            email=f"bench-{run}-educator@staff.example",
            name="Bench Educator",
            role="educator",
            password_hash=password_hash,
        )
        db.add(educator)
        await db.flush()
        now = datetime.now(UTC)
        exam = Exam(
            owner_id=educator.id,
            organization_id=organization,
            title=f"Autosave bench {run}",
            opens_at=now - timedelta(minutes=5),
            closes_at=now + timedelta(hours=4),
            duration_minutes=180,
            release_policy="manual",
            status="published",
            published_at=now,
        )
        db.add(exam)
        await db.flush()
        for position in range(1, questions + 1):
            question = Question(
                owner_id=educator.id,
                organization_id=organization,
                kind="mcq_single",
                prompt=f"Bench question {position}",
                body={
                    "choices": [{"id": c, "text": f"choice {c}"} for c in "abcd"],
                    "answer": ["b"],
                },
                status="active",
            )
            db.add(question)
            await db.flush()
            db.add(ExamItem(exam_id=exam.id, position=position, question_id=question.id, points=1))
        user_ids = [uuid.uuid4() for _ in emails]
        await db.execute(
            insert(User),
            [
                {
                    "id": uid,
                    "email": email,
                    "name": email.split("@")[0],
                    "role": "student",
                    "organization_id": organization,
                    "password_hash": password_hash,
                }
                for uid, email in zip(user_ids, emails, strict=True)
            ],
        )
        await db.execute(
            insert(Enrollment),
            [
                {"id": uuid.uuid4(), "exam_id": exam.id, "email": email, "user_id": uid}
                for uid, email in zip(user_ids, emails, strict=True)
            ],
        )
        await db.commit()
        exam_id = exam.id
    await engine.dispose()
    return exam_id, emails


SAVE = "PUT /sessions/{id}/responses/{qid}"


async def student(
    client: StudentClient,
    session_id: str,
    question_ids: list[str],
    *,
    save_url: str,
    first_seq: int,
    start_at: float,
    stop_at: float,
    think_s: float,
    interval_s: float,
) -> tuple[int, int]:
    """Save until ``stop_at``; returns the last ``client_seq`` and the ``applied: false`` count."""
    not_applied = 0
    seq = first_seq
    jitter = random.Random(session_id)
    pause = interval_s or think_s
    # Students do not save in lock-step: spread the first save over one pause.
    next_at = start_at + jitter.uniform(0, pause)
    # Bounded by time (stop_at) and, as a backstop, by count.
    for seq in range(first_seq + 1, first_seq + 10_000_000):
        await asyncio.sleep(max(0.0, next_at - time.monotonic()))
        if time.monotonic() >= stop_at:
            seq -= 1
            break
        question = question_ids[seq % len(question_ids)]
        try:
            body = await client.call(
                "PUT",
                f"/api/v1/sessions/{session_id}/responses/{question}",
                SAVE,
                {"answer": {"choice": "abcd"[seq % 4]}, "client_seq": seq},
                expect=(200,),
                base_url=save_url,
            )
        except Exception:  # recorded by the client; keep saving like a browser would
            body = None
        if body is not None and not body.get("applied", False):
            not_applied += 1
        if interval_s:
            next_at += interval_s
        else:
            next_at = time.monotonic() + (think_s * jitter.uniform(0.5, 1.5) if think_s else 0)
    return seq, not_applied


@dataclass(frozen=True)
class Phase:
    """One measured stretch of saving, against ``save_url`` (default: the API itself)."""

    name: str
    save_url: str
    warmup_s: float
    duration_s: float


@dataclass
class PhaseResult:
    phase: Phase
    recorder: Recorder
    not_applied: int
    cpu_s: dict[str, float]


PHASE_GAP_S = 2.0  # lets the last saves of a phase drain before the next one starts


def phase_windows(start_at: float, phases: list[Phase]) -> list[tuple[float, float, float]]:
    """(start, measure from, stop) on the monotonic clock for each phase."""
    windows = []
    at = start_at
    for phase in phases:
        windows.append((at, at + phase.warmup_s, at + phase.warmup_s + phase.duration_s))
        at += phase.warmup_s + phase.duration_s + PHASE_GAP_S
    return windows


async def client_process(
    url: str,
    emails: list[str],
    exam_id: str,
    think_s: float,
    interval_s: float,
    phases: list[Phase],
    *,
    ready: object,
    go: object,
) -> dict[str, object]:
    """One client process: sign its students in, start their sessions, then save per phase."""
    setup = Recorder()
    clients = [StudentClient(url, setup) for _ in emails]
    out: list[dict[str, object]] = []
    try:
        joined = await join_exam(clients, emails, PASSWORD, exam_id)
        start_at = await wait_for_go(ready, go)
        seqs = [0] * len(clients)
        for phase, (begin, measure_from, stop_at) in zip(
            phases, phase_windows(start_at, phases), strict=True
        ):
            recorder = Recorder(measuring=False)
            for c in clients:
                c.recorder = recorder

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
                        save_url=phase.save_url,
                        first_seq=seqs[i],
                        start_at=begin,
                        stop_at=stop_at,
                        think_s=think_s,
                        interval_s=interval_s,
                    )
                    for i, (c, (sid, qids)) in enumerate(zip(clients, joined, strict=True))
                )
            )
            await measuring
            seqs = [last for last, _ in counts]
            out.append({"recorder": recorder.to_wire(), "not_applied": sum(n for _, n in counts)})
            # Sleep through the gap to the next phase's start.
            await asyncio.sleep(max(0.0, stop_at + PHASE_GAP_S - time.monotonic()))
    finally:
        await asyncio.gather(*(c.close() for c in clients))
    return {"phases": out}


def run_phases(
    *,
    url: str,
    emails: list[str],
    exam_id: uuid.UUID,
    phases: list[Phase],
    processes: int,
    think_ms: float,
    interval_ms: float,
    server_pids: dict[str, int],
    started: float,
) -> list[PhaseResult]:
    """Run every phase with the students spread over ``processes`` client processes.

    CPU seconds of each ``server_pids`` process tree (and of this load generator)
    are sampled over each phase's measured window.
    """
    shards = [
        (url, emails[i::processes], str(exam_id), think_ms / 1000, interval_ms / 1000, phases)
        for i in range(processes)
        if emails[i::processes]
    ]
    cpu: list[dict[str, float]] = [{} for _ in phases]

    def sample_cpu(start_at: float) -> None:
        for i, (_, measure_from, stop_at) in enumerate(phase_windows(start_at, phases)):
            time.sleep(max(0.0, measure_from - time.monotonic()))
            before = {n: process_cpu_seconds(pid) for n, pid in server_pids.items()}
            before["client"] = process_cpu_seconds(os.getpid(), exclude=server_pids.values())
            time.sleep(max(0.0, stop_at - time.monotonic()))
            after = {n: process_cpu_seconds(pid) for n, pid in server_pids.items()}
            after["client"] = process_cpu_seconds(os.getpid(), exclude=server_pids.values())
            cpu[i] = {n: after[n] - before[n] for n in after}

    def on_all_ready() -> float:
        took = time.perf_counter() - started
        print(f"set-up: {len(emails)} students signed in and started in {took:.1f} s", flush=True)
        start_at = time.monotonic() + 0.5
        threading.Thread(target=sample_cpu, args=(start_at,), daemon=True).start()
        return start_at

    total = sum(p.warmup_s + p.duration_s + PHASE_GAP_S for p in phases)
    children = run_in_processes(
        client_process,
        shards,
        ready_timeout_s=600,
        total_timeout_s=total + 120,
        on_all_ready=on_all_ready,
    )
    time.sleep(0.2)  # the sampler's last reading
    results = []
    for i, phase in enumerate(phases):
        recorder = Recorder()
        not_applied = 0
        for child in children:
            part = child["phases"][i]
            recorder.merge_wire(part["recorder"])
            not_applied += part["not_applied"]
        results.append(PhaseResult(phase, recorder, not_applied, cpu[i]))
    return results


def phase_figures(result: PhaseResult) -> dict[str, float]:
    lat = sorted(result.recorder.latencies.get(SAVE, []))
    ok = result.recorder.statuses.get((SAVE, 200), 0)
    figures = {
        "saves_per_s": ok / result.phase.duration_s,
        "p50": percentile(lat, 50),
        "p95": percentile(lat, 95),
        "p99": percentile(lat, 99),
        "ok": ok,
        "errors": sum(n for (e, s), n in result.recorder.statuses.items() if e == SAVE and s != 200)
        + sum(result.recorder.transport_errors.values()),
    }
    for name, seconds in result.cpu_s.items():
        figures[f"cpu_ms_per_save_{name}"] = seconds * 1000 / ok if ok else math.nan
    return figures


def print_phase(result: PhaseResult) -> None:
    f = phase_figures(result)
    lat = sorted(result.recorder.latencies.get(SAVE, []))
    other = {s: n for (e, s), n in result.recorder.statuses.items() if e == SAVE and s != 200}
    print(
        f"[{result.phase.name}] {result.phase.duration_s:.0f} s measured after "
        f"{result.phase.warmup_s:.0f} s warm-up: {int(f['ok'])} saves, "
        f"{f['saves_per_s']:.0f} saves/s"
    )
    if lat:
        print(
            f"  latency ms: p50={f['p50']:.1f} p95={f['p95']:.1f} p99={f['p99']:.1f} "
            f"max={lat[-1]:.1f}"
        )
    print(
        f"  non-200: {other or 'none'}  transport errors: "
        f"{dict(result.recorder.transport_errors) or 'none'}  applied=false: {result.not_applied}"
    )
    if result.cpu_s and f["ok"]:
        per = ", ".join(
            f"{n} {s:.1f} s ({s * 1000 / f['ok']:.2f} ms/save)" for n, s in result.cpu_s.items()
        )
        print(f"  CPU in the window: {per}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--students", type=int, default=200)
    parser.add_argument("--duration", type=float, default=20.0, help="measured seconds")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds not measured")
    parser.add_argument("--questions", type=int, default=10)
    parser.add_argument("--think-ms", type=float, default=0.0, help="closed loop: pause")
    parser.add_argument(
        "--interval-ms", type=float, default=0.0, help="open loop: each student saves this often"
    )
    parser.add_argument("--processes", type=int, default=2, help="client processes")
    parser.add_argument(
        "--server-pid", type=int, help="the API's main process: report its CPU time per save"
    )
    parser.add_argument("--database-url", default=os.environ.get("SAFEXAM_DATABASE_URL"))
    args = parser.parse_args()
    check_local_url(args.url)
    if not args.database_url:
        print("set SAFEXAM_DATABASE_URL (or --database-url) for the set-up step", file=sys.stderr)
        return 2
    if not 1 <= args.students <= 5_000 or not 0 < args.duration <= 600:
        print("students must be 1..5000 and duration 0..600 s", file=sys.stderr)
        return 2
    if not 1 <= args.processes <= 8:
        print("processes must be 1..8", file=sys.stderr)
        return 2

    started = time.perf_counter()
    exam_id, emails = asyncio.run(set_up(args.database_url, args.students, args.questions))
    [result] = run_phases(
        url=args.url,
        emails=emails,
        exam_id=exam_id,
        phases=[Phase("safexam", args.url, args.warmup, args.duration)],
        processes=args.processes,
        think_ms=args.think_ms,
        interval_ms=args.interval_ms,
        server_pids={"server": args.server_pid} if args.server_pid else {},
        started=started,
    )
    print(
        f"students={args.students} questions={args.questions} think_ms={args.think_ms} "
        f"interval_ms={args.interval_ms} client processes={args.processes}"
    )
    print_phase(result)
    figures = phase_figures(result)
    return 0 if figures["ok"] and not figures["errors"] else 1


if __name__ == "__main__":
    sys.exit(main())
