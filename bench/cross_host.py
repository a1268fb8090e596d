"""Judged submissions per second with one worker host and with two, side by side in one run.

The deployment of ``tests/hosts/test_cross_host.py`` (``tests/hosts/netns.py``):
network namespaces as hosts, a Caddy proxy, two API hosts, a database host
with its own PostgreSQL and Redis, and two worker hosts, each running the
Procfile's ``judge`` (one process, one thread), ``grading`` and
``maintenance`` lines. Needs root.

Students sign in through the proxy and submit code (the add program of the
coding questions, ``--tests`` tests each, judged in the sandbox). After a
warm-up judged on both hosts, each round measures a burst of
``--submissions`` submissions twice: with worker host 2's judge frozen
(SIGSTOP while idle, so it holds no message: one worker host) and with both.
The figure is the burst's size over the time from its first request to its
last verdict in PostgreSQL; the median time from submission to verdict is
printed beside it.

Both worker hosts are namespaces on the same machine: they share its cores
(2 here), the database host's and the API hosts' processes run on those
cores too, so the ratio says how far a second judge process helps on this
machine, not what a second machine would give. Bounded: every wait has a
deadline (``--timeout``), and all traffic stays on the private bridge.

    sudo .venv/bin/python bench/cross_host.py [--submissions 24] [--rounds 2] [--tests 5]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import text

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

from tests.factories import (  # noqa: E402
    PASSWORD,
    coding_body,
    enroll,
    make_exam,
    make_question,
    make_user,
)
from tests.hosts.netns import Cluster, cluster, missing  # noqa: E402

from safexam.auth.models import User  # noqa: E402
from safexam.auth.passwords import cheap_hashing  # noqa: E402
from safexam.core.db import create_engine, create_sessionmaker  # noqa: E402
from safexam.core.settings import to_asyncpg_url  # noqa: E402
from safexam.exams.models import Question  # noqa: E402

SOURCE = "def add(a, b):\n    return a + b\n"
# Enough that no student passes the limit of 10 submissions a minute.
STUDENTS = 24


@dataclass
class Burst:
    hosts: int
    submissions: int
    seconds: float
    median_latency: float

    @property
    def rate(self) -> float:
        return self.submissions / self.seconds


def tests(count: int) -> list[dict[str, Any]]:
    return [
        {"name": f"t{i}", "stdin": f"{i} {i + 1}\n", "expected_output": f"{2 * i + 1}\n"}
        for i in range(count)
    ]


async def signed_in(proxy: str, student: User) -> httpx.AsyncClient:
    client = httpx.AsyncClient(base_url=proxy, timeout=30, trust_env=False)
    for step in ("csrf", "login", "csrf"):
        if step == "login":
            answer = await client.post(
                "/api/v1/auth/login", json={"email": student.email, "password": PASSWORD}
            )
        else:
            answer = await client.get("/api/v1/auth/csrf")
        answer.raise_for_status()
        if step == "csrf":
            client.headers["X-CSRF-Token"] = answer.json()["csrf_token"]
    return client


async def burst(
    hosts: Cluster,
    maker: Any,
    pairs: list[tuple[httpx.AsyncClient, str, Question]],
    *,
    worker_hosts: int,
    bound: float,
) -> Burst:
    """Submit one submission per (student, session, question) at once; wait for every verdict."""
    started = time.monotonic()

    async def submit(client: httpx.AsyncClient, session: str, question: Question) -> str:
        answer = await client.post(
            f"/api/v1/sessions/{session}/submissions",
            json={"question_id": str(question.id), "language": "python", "source": SOURCE},
        )
        if answer.status_code != 202:
            raise RuntimeError(f"submission refused: {answer.status_code} {answer.text}")
        return str(answer.json()["id"])

    ids = [uuid.UUID(s) for s in await asyncio.gather(*(submit(*p) for p in pairs))]
    deadline = started + bound
    while True:
        async with maker() as db:
            rows = (
                await db.execute(
                    text(
                        "SELECT status, verdict, extract(epoch FROM finished_at - created_at)"
                        " AS latency FROM coding_submissions WHERE id = ANY(:ids)"
                    ),
                    {"ids": ids},
                )
            ).all()
        if all(r.status == "done" for r in rows):
            break
        if time.monotonic() > deadline:
            raise RuntimeError(f"not judged within {bound:.0f} s: {[r.status for r in rows]}")
        await asyncio.sleep(0.05)
    seconds = time.monotonic() - started
    wrong = [r.verdict for r in rows if r.verdict != "accepted"]
    if wrong:
        raise RuntimeError(f"verdicts other than accepted: {wrong}")
    return Burst(worker_hosts, len(ids), seconds, statistics.median(float(r.latency) for r in rows))


def freeze(hosts: Cluster, host: int, sig: signal.Signals) -> None:
    """SIGSTOP / SIGCONT the judge pool of ``work<host>`` (every process of its group)."""
    os.killpg(hosts.procs[f"work{host}-judge"].pid, sig)


async def run(args: argparse.Namespace) -> list[Burst]:
    per_student = -(-args.submissions // STUDENTS)
    rounds: list[Burst] = []
    with cluster() as hosts:
        hosts.start_workers(1, 2)
        engine = create_engine(to_asyncpg_url(hosts.database_url), pool_size=3)
        maker = create_sessionmaker(engine)
        clients: list[httpx.AsyncClient] = []
        try:
            async with maker() as db:
                with cheap_hashing():
                    educator = await make_user(db, "educator")
                    students = [await make_user(db, "student") for _ in range(STUDENTS)]
                questions = [
                    await make_question(
                        db,
                        educator,
                        "coding",
                        body=coding_body(languages=["python"], tests=tests(args.tests)),
                    )
                    for _ in range(1 + 2 * args.rounds * per_student)
                ]
                exam = await make_exam(db, educator, questions)
                for student in students:
                    await enroll(db, exam, student)
            clients = list(await asyncio.gather(*(signed_in(hosts.proxy_url, s) for s in students)))
            sessions = []
            for client in clients:
                answer = await client.post(f"/api/v1/exams/{exam.id}/sessions")
                answer.raise_for_status()
                sessions.append(answer.json()["id"])
            # Warm-up: every student's first submission, judged on both hosts.
            await burst(
                hosts,
                maker,
                [(c, s, questions[0]) for c, s in zip(clients, sessions, strict=True)],
                worker_hosts=2,
                bound=args.timeout,
            )
            batches = iter(range(1, len(questions), per_student))
            for _ in range(args.rounds):
                for worker_hosts in (1, 2):
                    first = next(batches)
                    pairs = [
                        (c, s, q)
                        for q in questions[first : first + per_student]
                        for c, s in zip(clients, sessions, strict=True)
                    ][: args.submissions]
                    if worker_hosts == 1:
                        freeze(hosts, 2, signal.SIGSTOP)
                    try:
                        rounds.append(
                            await burst(
                                hosts,
                                maker,
                                pairs,
                                worker_hosts=worker_hosts,
                                bound=args.timeout,
                            )
                        )
                    finally:
                        if worker_hosts == 1:
                            freeze(hosts, 2, signal.SIGCONT)
                    print(
                        f"  {worker_hosts} worker host(s): {rounds[-1].submissions} in"
                        f" {rounds[-1].seconds:.2f} s = {rounds[-1].rate:.2f}/s",
                        flush=True,
                    )
        finally:
            for client in clients:
                await client.aclose()
            await engine.dispose()
    return rounds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--submissions", type=int, default=24, help="per burst (default 24)")
    parser.add_argument("--rounds", type=int, default=2, help="bursts per host count (default 2)")
    parser.add_argument("--tests", type=int, default=5, help="tests per submission (default 5)")
    parser.add_argument("--timeout", type=float, default=180, help="bound of one burst, seconds")
    args = parser.parse_args()
    if not 1 <= args.submissions <= 200 or not 1 <= args.rounds <= 5:
        parser.error("--submissions must be 1..200 and --rounds 1..5")
    reason = missing()
    if reason is not None:
        print(f"cannot make hosts here: {reason}")
        return 2
    load_before = os.getloadavg()
    started = time.monotonic()
    rounds = asyncio.run(run(args))
    load_after = os.getloadavg()
    print()
    print(f"submissions per burst: {args.submissions}, tests each: {args.tests}")
    print("| worker hosts | burst | seconds | judged/s | median submit -> verdict |")
    print("|---|---|---|---|---|")
    for number, b in enumerate(rounds, 1):
        print(
            f"| {b.hosts} | {(number + 1) // 2} | {b.seconds:.2f} | {b.rate:.2f}"
            f" | {b.median_latency:.2f} s |"
        )
    one = statistics.mean(b.rate for b in rounds if b.hosts == 1)
    two = statistics.mean(b.rate for b in rounds if b.hosts == 2)
    print(f"\nmean judged/s: one host {one:.2f}, two hosts {two:.2f}, ratio {two / one:.2f}")
    print(
        f"load average (1, 5, 15 min) before {tuple(round(x, 2) for x in load_before)},"
        f" after {tuple(round(x, 2) for x in load_after)}; {os.cpu_count()} cores;"
        f" run took {time.monotonic() - started:.0f} s"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
