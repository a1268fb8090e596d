"""Grading throughput and latency through real Dramatiq workers.

Throughput: an exam of ``--sessions`` sessions x ``--questions`` MCQ closes
(every session is submitted and its grading job committed in one go); we time
until every session has its result. Target: 2,000 x 50 = 100,000 responses
graded in 10 s or less on a 2-core machine.

Latency (``--latency N``): one session at a time on an idle system, submit ->
result row visible, p50 and p95. Target: p50 under 250 ms.

Needs PostgreSQL and Redis (``SAFEXAM_BENCH_DATABASE_URL`` names a server; a
fresh database is created and dropped; ``SAFEXAM_BENCH_REDIS_URL``), e.g.::

    SAFEXAM_BENCH_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres \\
    SAFEXAM_BENCH_REDIS_URL=redis://127.0.0.1:6379/0 \\
    .venv/bin/python bench/grading.py --sessions 2000 --questions 50 --processes 2 --threads 8
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import secrets
import signal
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import timedelta
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

from safexam.core.broker import create_broker, use_broker  # noqa: E402
from safexam.core.db import create_engine, create_sessionmaker, utcnow  # noqa: E402
from safexam.core.migrate import upgrade  # noqa: E402
from safexam.core.settings import Settings, to_asyncpg_url  # noqa: E402
from safexam.jobs import enqueue, outbox  # noqa: E402
from safexam.jobs.kinds import GRADE_SESSION  # noqa: E402
from safexam.models import Base  # noqa: E402, F401

CHOICES = [{"id": c, "text": f"choice {c}"} for c in "abcd"]
# The bench's rows belong to the organization every fresh database has.
DEFAULT_ORGANIZATION = "(SELECT id FROM organizations WHERE slug = 'default')"


@asynccontextmanager
async def bench_database() -> AsyncIterator[tuple[str, Settings]]:
    server = os.environ.get(
        "SAFEXAM_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
    )
    redis_url = os.environ.get("SAFEXAM_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
    run = secrets.token_hex(4)
    admin_url = make_url(to_asyncpg_url(server))
    url = admin_url.set(database=f"safexam_bench_{run}").render_as_string(hide_password=False)

    async def admin(sql: str) -> None:
        engine = create_engine(admin_url.render_as_string(hide_password=False))
        async with engine.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text(sql))
        await engine.dispose()

    await admin(f'CREATE DATABASE "safexam_bench_{run}"')
    try:
        await asyncio.to_thread(upgrade, url)
        settings = Settings(
            env="test",
            database_url=url,
            redis_url=redis_url,
            redis_namespace=f"safexam-bench-{run}",
            secret_key="bench-secret-key-0123456789",
            log_level="WARNING",
        )
        yield url, settings
    finally:
        await admin(f'DROP DATABASE IF EXISTS "safexam_bench_{run}" WITH (FORCE)')
        import redis

        client = redis.Redis.from_url(redis_url)
        for key in client.scan_iter(match=f"safexam-bench-{run}*", count=1000):
            client.delete(key)


@contextmanager
def workers(
    settings: Settings, queues: list[str], processes: int, threads: int
) -> Iterator[subprocess.Popen[bytes]]:
    env = dict(os.environ)
    env.update(
        {
            "SAFEXAM_ENV": "test",
            "SAFEXAM_DATABASE_URL": settings.database_url or "",
            "SAFEXAM_REDIS_URL": settings.redis_url or "",
            "SAFEXAM_REDIS_NAMESPACE": settings.redis_namespace,
            "SAFEXAM_SECRET_KEY": settings.secret_key,
            "SAFEXAM_LOG_LEVEL": "WARNING",
        }
    )
    log = open(os.environ.get("SAFEXAM_BENCH_WORKER_LOG", os.devnull), "ab")  # noqa: SIM115
    proc = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "dramatiq"),
            "workers",
            "--processes",
            str(processes),
            "--threads",
            str(threads),
            "--queues",
            *queues,
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        import redis

        client = redis.Redis.from_url(settings.redis_url or "")
        deadline = time.monotonic() + 30
        while client.hlen(f"{settings.redis_namespace}:workers") < processes:
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError("workers did not start")
            time.sleep(0.1)
        yield proc
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()


async def seed(
    maker: async_sessionmaker[AsyncSession], sessions: int, questions: int
) -> tuple[uuid.UUID, list[uuid.UUID], list[uuid.UUID]]:
    """An exam of ``questions`` MCQ and ``sessions`` finished (not yet graded) sessions."""
    now = utcnow()
    educator = uuid.uuid4()
    exam = uuid.uuid4()
    qids = [uuid.uuid4() for _ in range(questions)]
    sids = [uuid.uuid4() for _ in range(sessions)]
    users = [uuid.uuid4() for _ in range(sessions)]
    rng = random.Random(7)
    async with maker() as db:
        await db.execute(
            text(
                "INSERT INTO users (id, email, name, role, organization_id)"
                f" VALUES (:id, :email, 'Ed', 'educator', {DEFAULT_ORGANIZATION})"
            ),
            {"id": educator, "email": f"ed-{exam.hex[:8]}@bench.local"},
        )
        await db.execute(
            text(
                "INSERT INTO exams (id, owner_id, title, opens_at, closes_at, duration_minutes,"
                " release_policy, status, organization_id) VALUES (:id, :owner, 'Bench', :o, :c,"
                f" 60, 'immediate', 'published', {DEFAULT_ORGANIZATION})"
            ),
            {"id": exam, "owner": educator, "o": now - timedelta(hours=2), "c": now},
        )
        import json

        await db.execute(
            text(
                "INSERT INTO questions (id, owner_id, kind, prompt, body, points, status,"
                " organization_id) SELECT q, :owner, 'mcq_single', 'Q', CAST(:body AS jsonb), 1,"
                f" 'active', {DEFAULT_ORGANIZATION}"
                " FROM unnest(CAST(:ids AS uuid[])) AS q"
            ),
            {
                "owner": educator,
                "ids": qids,
                "body": json.dumps({"choices": CHOICES, "answer": ["b"]}),
            },
        )
        await db.execute(
            text(
                "INSERT INTO exam_items (id, exam_id, position, question_id, points)"
                " SELECT gen_random_uuid(), :exam, p, q, 2"
                " FROM unnest(CAST(:ids AS uuid[])) WITH ORDINALITY AS t(q, p)"
            ),
            {"exam": exam, "ids": qids},
        )
        await db.execute(
            text(
                "INSERT INTO users (id, email, name, role, organization_id)"
                " SELECT u, 's-' || u::text || '@bench.local', 'Student', 'student',"
                f" {DEFAULT_ORGANIZATION}"
                " FROM unnest(CAST(:ids AS uuid[])) AS u"
            ),
            {"ids": users},
        )
        paper = json.dumps(
            [
                {
                    "question_id": str(q),
                    "points": 2.0,
                    "position": i,
                    "choice_order": None,
                    "variant": None,
                }
                for i, q in enumerate(qids)
            ]
        )
        await db.execute(
            text(
                "INSERT INTO exam_sessions (id, exam_id, user_id, attempt, status, started_at,"
                " deadline_at, submitted_at, seed, paper)"
                " SELECT s, :exam, u, 1, 'active', :start, :deadline, NULL, 1,"
                " CAST(:paper AS jsonb)"
                " FROM unnest(CAST(:sids AS uuid[]), CAST(:uids AS uuid[])) AS t(s, u)"
            ),
            {
                "exam": exam,
                "sids": sids,
                "uids": users,
                "start": now - timedelta(minutes=60),
                "deadline": now + timedelta(minutes=1),
                "paper": paper,
            },
        )
        batch = 20_000
        rows_s: list[uuid.UUID] = []
        rows_q: list[uuid.UUID] = []
        rows_a: list[str] = []
        for s in sids:
            for q in qids:
                rows_s.append(s)
                rows_q.append(q)
                rows_a.append(json.dumps({"choice": rng.choice("abcd")}))
        for i in range(0, len(rows_s), batch):
            await db.execute(
                text(
                    "INSERT INTO responses"
                    " (id, session_id, question_id, answer, client_seq, saved_at)"
                    " SELECT gen_random_uuid(), s, q, CAST(a AS jsonb), 1, now()"
                    " FROM unnest(CAST(:s AS uuid[]), CAST(:q AS uuid[]), CAST(:a AS text[]))"
                    " AS t(s, q, a)"
                ),
                {
                    "s": rows_s[i : i + batch],
                    "q": rows_q[i : i + batch],
                    "a": rows_a[i : i + batch],
                },
            )
        await db.commit()
    return exam, qids, sids


async def close_exam(
    maker: async_sessionmaker[AsyncSession], exam: uuid.UUID, sids: list[uuid.UUID]
) -> None:
    """What the deadline does: every session submitted, one grading job each, one commit."""
    async with maker() as db:
        await db.execute(
            text(
                "UPDATE exam_sessions SET status = 'expired', submitted_at = now()"
                " WHERE exam_id = :e"
            ),
            {"e": exam},
        )
        for sid in sids:
            await enqueue(
                db,
                GRADE_SESSION,
                args={"session_id": str(sid)},
                exam_id=exam,
                session_id=sid,
            )
        await db.commit()
    await outbox.drain(wait_seconds=60)


async def graded_count(engine: AsyncEngine, exam: uuid.UUID) -> int:
    async with engine.connect() as conn:
        return int(
            (
                await conn.execute(
                    text(
                        "SELECT count(*) FROM results r JOIN exam_sessions s ON s.id = r.session_id"
                        " WHERE s.exam_id = :e"
                    ),
                    {"e": exam},
                )
            ).scalar_one()
        )


async def throughput(args: argparse.Namespace) -> None:
    async with bench_database() as (_url, settings):
        engine = create_engine(settings.async_database_url)
        maker = create_sessionmaker(engine)
        broker = create_broker(settings)
        use_broker(broker)
        started = time.perf_counter()
        exam, _, sids = await seed(maker, args.sessions, args.questions)
        print(
            f"seeded {args.sessions} sessions x {args.questions} MCQ"
            f" in {time.perf_counter() - started:.1f} s"
        )
        with workers(settings, ["grading"], args.processes, args.threads):
            t0 = time.perf_counter()
            await close_exam(maker, exam, sids)
            t_enqueued = time.perf_counter() - t0
            deadline = time.monotonic() + args.timeout
            done = 0
            while done < len(sids) and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
                done = await graded_count(engine, exam)
            elapsed = time.perf_counter() - t0
        responses = args.sessions * args.questions
        print(
            f"grading: {done}/{len(sids)} sessions ({responses} responses)"
            f" graded in {elapsed:.2f} s"
            f" (jobs committed+sent in {t_enqueued:.2f} s) -> {done / elapsed:.0f} sessions/s,"
            f" {done * args.questions / elapsed:.0f} responses/s"
            f" [workers: {args.processes} processes x {args.threads} threads]"
        )
        broker.close()
        await engine.dispose()


async def latency(args: argparse.Namespace) -> None:
    async with bench_database() as (_url, settings):
        engine = create_engine(settings.async_database_url)
        maker = create_sessionmaker(engine)
        broker = create_broker(settings)
        use_broker(broker)
        exam, _, sids = await seed(maker, args.latency, args.questions)
        samples: list[float] = []
        with workers(settings, ["grading"], 1, args.threads):
            await asyncio.sleep(2)  # let the consumers settle into their idle polling
            for sid in sids:
                await asyncio.sleep(random.uniform(0.3, 0.8))  # an idle system between submits
                t0 = time.perf_counter()
                async with maker() as db:
                    await db.execute(
                        text(
                            "UPDATE exam_sessions SET status = 'submitted',"
                            " submitted_at = now() WHERE id = :s"
                        ),
                        {"s": sid},
                    )
                    await enqueue(
                        db,
                        GRADE_SESSION,
                        args={"session_id": str(sid)},
                        exam_id=exam,
                        session_id=sid,
                    )
                    await db.commit()
                while True:
                    async with engine.connect() as conn:
                        found = (
                            await conn.execute(
                                text("SELECT 1 FROM results WHERE session_id = :s"), {"s": sid}
                            )
                        ).first()
                    if found:
                        break
                    await asyncio.sleep(0.002)
                samples.append((time.perf_counter() - t0) * 1000)
        samples.sort()
        p50 = statistics.median(samples)
        p95 = samples[int(len(samples) * 0.95) - 1]
        print(
            f"submit -> graded on an idle system ({len(samples)} sessions x {args.questions} MCQ):"
            f" p50 {p50:.0f} ms, p95 {p95:.0f} ms, max {samples[-1]:.0f} ms"
        )
        broker.close()
        await engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sessions", type=int, default=2000)
    parser.add_argument("--questions", type=int, default=50)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--timeout", type=float, default=120)
    parser.add_argument("--latency", type=int, default=0, help="measure N single submits instead")
    args = parser.parse_args()
    asyncio.run(latency(args) if args.latency else throughput(args))


if __name__ == "__main__":
    main()
