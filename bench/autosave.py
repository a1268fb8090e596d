"""Autosave load: N simulated students saving answers concurrently against a running API.

Usage (the API must be running, and this script must reach its database for
the set-up step, which creates an educator, an exam and the students)::

    SAFEXAM_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/safexam_bench \\
        .venv/bin/python bench/autosave.py --url http://127.0.0.1:8123 --students 200 --duration 20

Each student signs in over HTTP, starts the exam session, then autosaves in a
closed loop (next save as soon as the previous one answered, optionally after
``--think-ms``), cycling through the questions with an increasing
``client_seq``; with ``--think-ms`` each pause is jittered by +-50 % so
students do not save in lock-step. The run is bounded by ``--duration`` seconds. It prints the
sustained saves per second over the measured window, latency percentiles and
the count of every non-200 status. The API must run with
``SAFEXAM_COOKIE_SECURE=false`` when served over plain http.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import insert

from safexam.auth.models import User
from safexam.auth.passwords import hash_password
from safexam.core.db import create_engine, create_sessionmaker
from safexam.core.settings import to_asyncpg_url
from safexam.exams.models import Enrollment, Exam, ExamItem, Question

PASSWORD = "bench-password-123"


@dataclass
class Stats:
    latencies_ms: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    not_applied: int = 0
    errors: Counter[str] = field(default_factory=Counter)


async def set_up(database_url: str, students: int, questions: int) -> tuple[uuid.UUID, list[str]]:
    """An educator, ``questions`` MCQs, a published open exam, and enrolled students."""
    engine = create_engine(to_asyncpg_url(database_url), pool_size=2)
    maker = create_sessionmaker(engine)
    run = uuid.uuid4().hex[:8]
    # One argon2 hash for every bench student: hashing 1,000 passwords is not what we measure.
    password_hash = hash_password(PASSWORD)
    emails = [f"bench-{run}-{i}@students.example" for i in range(students)]
    async with maker() as db:
        educator = User(
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


async def csrf(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/auth/csrf")
    response.raise_for_status()
    client.headers["X-CSRF-Token"] = response.json()["csrf_token"]


async def join(
    url: str, email: str, exam_id: uuid.UUID, gate: asyncio.Semaphore
) -> tuple[httpx.AsyncClient, str, list[str]]:
    """Sign in and start the session; returns the client, session id and question ids."""
    client = httpx.AsyncClient(base_url=url, timeout=30.0)
    async with gate:
        await csrf(client)
        login = await client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
        login.raise_for_status()
        await csrf(client)
        started = await client.post(f"/api/v1/exams/{exam_id}/sessions")
        started.raise_for_status()
    body = started.json()
    return client, body["id"], [q["id"] for q in body["questions"]]


async def student_loop(
    client: httpx.AsyncClient,
    session_id: str,
    question_ids: list[str],
    *,
    start_at: float,
    measure_from: float,
    stop_at: float,
    think_s: float,
    stats: Stats,
) -> None:
    seq = 0
    choices = "abcd"
    jitter = random.Random(session_id)
    # Students do not save in lock-step: spread the first save over one think time.
    await asyncio.sleep(max(0.0, start_at - time.perf_counter()) + jitter.uniform(0, think_s))
    # Bounded by time (stop_at) and, as a backstop, by count.
    for _ in range(10_000_000):
        now = time.perf_counter()
        if now >= stop_at:
            return
        seq += 1
        question = question_ids[seq % len(question_ids)]
        began = time.perf_counter()
        try:
            response = await client.put(
                f"/api/v1/sessions/{session_id}/responses/{question}",
                json={"answer": {"choice": choices[seq % 4]}, "client_seq": seq},
            )
            status = response.status_code
            applied = status == 200 and response.json().get("applied", False)
        except httpx.HTTPError as exc:
            stats.errors[type(exc).__name__] += 1
            continue
        elapsed_ms = (time.perf_counter() - began) * 1000
        if began >= measure_from:
            stats.statuses[status] += 1
            if status == 200:
                stats.latencies_ms.append(elapsed_ms)
                if not applied:
                    stats.not_applied += 1
        if think_s:
            await asyncio.sleep(think_s * jitter.uniform(0.5, 1.5))


def percentile(sorted_values: list[float], p: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, round(p / 100 * len(sorted_values)) - 1))
    return sorted_values[index]


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--students", type=int, default=200)
    parser.add_argument("--duration", type=float, default=20.0, help="measured seconds")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds not measured")
    parser.add_argument("--questions", type=int, default=10)
    parser.add_argument("--think-ms", type=float, default=0.0, help="pause between saves")
    parser.add_argument("--database-url", default=os.environ.get("SAFEXAM_DATABASE_URL"))
    args = parser.parse_args()
    if not args.database_url:
        print("set SAFEXAM_DATABASE_URL (or --database-url) for the set-up step", file=sys.stderr)
        return 2
    if not 1 <= args.students <= 5_000 or not 0 < args.duration <= 600:
        print("students must be 1..5000 and duration 0..600 s", file=sys.stderr)
        return 2

    t0 = time.perf_counter()
    exam_id, emails = await set_up(args.database_url, args.students, args.questions)
    gate = asyncio.Semaphore(8)  # sign-ins are argon2-bound on the server
    joined = await asyncio.gather(*(join(args.url, e, exam_id, gate) for e in emails))
    took = time.perf_counter() - t0
    print(f"set-up: {len(joined)} students signed in and started in {took:.1f} s")

    stats = Stats()
    start_at = time.perf_counter() + 0.5
    measure_from = start_at + args.warmup
    stop_at = measure_from + args.duration
    await asyncio.gather(
        *(
            student_loop(
                client,
                session_id,
                questions,
                start_at=start_at,
                measure_from=measure_from,
                stop_at=stop_at,
                think_s=args.think_ms / 1000,
                stats=stats,
            )
            for client, session_id, questions in joined
        )
    )
    window = time.perf_counter() - measure_from
    for client, _, _ in joined:
        await client.aclose()

    lat = sorted(stats.latencies_ms)
    ok = stats.statuses.get(200, 0)
    print(f"students={args.students} questions={args.questions} think_ms={args.think_ms}")
    print(f"measured window: {window:.1f} s (after {args.warmup:.0f} s warm-up)")
    print(f"saves ok: {ok}  sustained: {ok / window:.0f} saves/s")
    if lat:
        print(
            "latency ms: "
            f"p50={percentile(lat, 50):.1f} p95={percentile(lat, 95):.1f} "
            f"p99={percentile(lat, 99):.1f} max={lat[-1]:.1f} mean={statistics.fmean(lat):.1f}"
        )
    other = {s: n for s, n in stats.statuses.items() if s != 200}
    print(f"non-200 statuses: {other or 'none'}  transport errors: {dict(stats.errors) or 'none'}")
    print(f"saves answered applied=false: {stats.not_applied}")
    return 0 if ok and not other and not stats.errors else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
