"""Code submissions end to end: API -> outbox -> judge workers -> sandbox -> database.

20 students each submit a Python solution to 10 coding questions (200
submissions x 10 tests) as fast as the API takes them; a pool of judge
workers (``dramatiq workers --queues judge --processes N --threads 1``)
judges them in fresh bubblewrap sandboxes. Prints submissions per second,
submit -> done p50/p95 (server timestamps), and the ceiling: cores divided
by the CPU time one submission costs (measured alone first).

    SAFEXAM_TEST_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres \\
    SAFEXAM_TEST_REDIS_URL=redis://127.0.0.1:6379/0 \\
    .venv/bin/python bench/coding.py [--students 20] [--questions 10] [--processes 2]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import resource
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import msgspec
import uvicorn
from sqlalchemy import text
from sqlalchemy.engine import make_url

from safexam.app import create_app
from safexam.auth.service import create_user
from safexam.coding.execution import Limits, TestCase
from safexam.coding.sandbox import SandboxRunner
from safexam.core.db import create_engine, create_sessionmaker, utcnow
from safexam.core.migrate import upgrade
from safexam.core.settings import Settings, to_asyncpg_url
from safexam.exams.models import Exam, ExamItem, Question
from safexam.sessions.models import ExamSession

ROOT = Path(__file__).resolve().parents[1]
PASSWORD = "bench password 0123456789"
SOURCE = "def add(a, b):\n    return a + b\n"
TEMPLATE = "{{ SOURCE }}\nprint(add(*map(int, input().split())))\n"


def body(tests: int) -> dict[str, Any]:
    return {
        "languages": ["python"],
        "template": {"python": TEMPLATE},
        "tests": [
            {
                "name": f"t{i}",
                "stdin": f"{i} {i * 7}\n",
                "expected_output": f"{i * 8}\n",
                "points": 1,
                "hidden": i % 2 == 1,
            }
            for i in range(tests)
        ],
        "comparison": "trimmed",
        "limits": {"cpu_time_s": 2, "wall_time_s": 5, "memory_mb": 128, "output_kb": 64},
    }


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def cpu_per_submission(tests: int) -> float:
    """CPU seconds (all children: bwrap, reaper, python) one submission costs, alone."""
    runner = SandboxRunner()
    spec = body(tests)
    cases = [
        TestCase(name=t["name"], stdin=t["stdin"], expected_output=t["expected_output"])
        for t in spec["tests"]
    ]
    program = TEMPLATE.replace("{{ SOURCE }}", SOURCE)
    samples = []
    for _ in range(3):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        result = await runner.judge("python", program, cases, Limits(cpu_time_s=2, wall_time_s=5))
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        assert result.verdict == "accepted", result
        samples.append((after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime))
    return statistics.median(samples)


async def seed(settings: Settings, students: int, questions: int, tests: int) -> list[Any]:
    engine = create_engine(settings.async_database_url)
    maker = create_sessionmaker(engine)
    plan = []
    async with maker() as db:
        educator = await create_user(
            db,
            email="bench-educator@college.edu",
            name="Educator",
            role="educator",
            password=PASSWORD,
        )
        now = utcnow()
        exam = Exam(
            owner_id=educator.id,
            organization_id=educator.organization_id,
            title="Coding bench",
            opens_at=now - timedelta(hours=1),
            closes_at=now + timedelta(hours=3),
            duration_minutes=120,
            release_policy="immediate",
            status="published",
        )
        db.add(exam)
        await db.flush()
        qs = []
        for position in range(questions):
            q = Question(
                owner_id=educator.id,
                organization_id=educator.organization_id,
                kind="coding",
                prompt=f"Add {position}",
                body=body(tests),
                points=1,
                status="active",
            )
            db.add(q)
            await db.flush()
            db.add(ExamItem(exam_id=exam.id, position=position, question_id=q.id, points=10))
            qs.append(q)
        paper = [
            {
                "question_id": str(q.id),
                "points": 10.0,
                "position": i,
                "choice_order": None,
                "variant": None,
            }
            for i, q in enumerate(qs)
        ]
        for n in range(students):
            student = await create_user(
                db,
                email=f"bench-student-{n}@college.edu",
                name=f"S{n}",
                role="student",
                password=PASSWORD,
            )
            session = ExamSession(
                exam_id=exam.id,
                user_id=student.id,
                attempt=1,
                status="active",
                started_at=now,
                deadline_at=now + timedelta(hours=2),
                seed=random.randint(1, 2**31),
                paper=paper,
            )
            db.add(session)
            await db.flush()
            plan.append((student.email, session.id, [q.id for q in qs]))
        await db.commit()
    await engine.dispose()
    return plan


async def student(base: str, email: str, session_id: uuid.UUID, qids: list[uuid.UUID]) -> list[str]:
    async with httpx.AsyncClient(base_url=base, timeout=60) as client:
        token = (await client.get("/api/v1/auth/csrf")).json()["csrf_token"]
        client.headers["X-CSRF-Token"] = token
        response = await client.post(
            "/api/v1/auth/login", json={"email": email, "password": PASSWORD}
        )
        assert response.status_code == 200, response.text
        client.headers["X-CSRF-Token"] = (await client.get("/api/v1/auth/csrf")).json()[
            "csrf_token"
        ]
        ids = []
        for qid in qids:
            response = await client.post(
                f"/api/v1/sessions/{session_id}/submissions",
                json={"question_id": str(qid), "language": "python", "source": SOURCE},
            )
            assert response.status_code == 202, response.text
            ids.append(response.json()["id"])
        return ids


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=20)
    parser.add_argument("--questions", type=int, default=10)
    parser.add_argument("--tests", type=int, default=10)
    parser.add_argument("--processes", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    server_url = os.environ.get("SAFEXAM_TEST_DATABASE_URL") or os.environ["SAFEXAM_DATABASE_URL"]
    redis_url = os.environ.get("SAFEXAM_TEST_REDIS_URL") or os.environ["SAFEXAM_REDIS_URL"]
    run = secrets.token_hex(4)
    admin_url = make_url(to_asyncpg_url(server_url))
    db_name = f"safexam_bench_{run}"
    database_url = admin_url.set(database=db_name).render_as_string(hide_password=False)

    async def admin(sql: str) -> None:
        engine = create_engine(admin_url.render_as_string(hide_password=False))
        async with engine.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text(sql))
        await engine.dispose()

    await admin(f'CREATE DATABASE "{db_name}"')
    worker: subprocess.Popen[bytes] | None = None
    try:
        await asyncio.to_thread(upgrade, database_url)
        namespace = f"safexam-bench-{run}"
        settings = Settings(
            env="test",
            database_url=database_url,
            redis_url=redis_url,
            redis_namespace=namespace,
            secret_key="bench-secret-key-" + run * 4,
            cookie_secure=False,
            log_level="WARNING",
        )
        cpu = await cpu_per_submission(args.tests)
        plan = await seed(settings, args.students, args.questions, args.tests)
        log = Path(tempfile.gettempdir()) / f"bench-judge-{run}.log"
        env = dict(os.environ)
        env.update(
            SAFEXAM_ENV="test",
            SAFEXAM_DATABASE_URL=database_url,
            SAFEXAM_REDIS_URL=redis_url,
            SAFEXAM_REDIS_NAMESPACE=namespace,
            SAFEXAM_SECRET_KEY=settings.secret_key,
            SAFEXAM_LOG_LEVEL="WARNING",
        )
        with log.open("wb") as out:
            worker = subprocess.Popen(  # noqa: ASYNC220 - started once, before timing
                [
                    str(Path(sys.executable).parent / "dramatiq"),
                    "workers",
                    "--processes",
                    str(args.processes),
                    "--threads",
                    str(args.threads),
                    "--queues",
                    "judge",
                ],
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        app = create_app(settings)
        port = 18765 + random.randint(0, 1000)
        server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
        )
        serving = asyncio.create_task(server.serve())
        while not server.started:  # noqa: ASYNC110 - uvicorn exposes a flag, not an event
            await asyncio.sleep(0.02)
        await asyncio.sleep(2)  # the workers boot
        started = time.perf_counter()
        batches = await asyncio.gather(
            *(student(f"http://127.0.0.1:{port}", e, s, q) for e, s, q in plan)
        )
        accepted = time.perf_counter() - started
        total = sum(len(b) for b in batches)
        engine = create_engine(database_url)
        deadline = time.monotonic() + 1800
        async with engine.connect() as conn:
            while time.monotonic() < deadline:
                done = (
                    await conn.execute(
                        text(
                            "SELECT count(*) FROM coding_submissions"
                            " WHERE status IN ('done', 'error')"
                        )
                    )
                ).scalar_one()
                await conn.commit()
                if done >= total:
                    break
                await asyncio.sleep(0.5)
            elapsed = time.perf_counter() - started
            rows = (
                await conn.execute(
                    text(
                        "SELECT verdict, extract(epoch FROM finished_at - created_at) AS latency"
                        " FROM coding_submissions"
                    )
                )
            ).all()
        await engine.dispose()
        server.should_exit = True
        await serving
        latencies = [float(r.latency) for r in rows if r.latency is not None]
        verdicts: dict[str, int] = {}
        for r in rows:
            verdicts[str(r.verdict)] = verdicts.get(str(r.verdict), 0) + 1
        cores = os.cpu_count() or 1
        print(
            f"{total} submissions x {args.tests} tests, {args.processes} judge processes"
            f" x {args.threads} threads,"
            f" {cores} cores"
        )
        print(f"verdicts: {verdicts}")
        print(f"all accepted by the API in {accepted:.2f} s ({total / accepted:.0f}/s)")
        print(f"all judged in {elapsed:.1f} s: {total / elapsed:.2f} submissions/s")
        print(
            f"submit -> done: p50 {percentile(latencies, 0.5):.2f} s,"
            f" p95 {percentile(latencies, 0.95):.2f} s (queueing included: all submitted at once)"
        )
        print(
            f"ceiling: {cores} cores / {cpu * 1000:.0f} ms CPU per submission"
            f" = {cores / cpu:.2f} submissions/s"
            f" ({cpu * 1000 / args.tests:.1f} ms CPU per test run)"
        )
        print(f"throughput / ceiling: {(total / elapsed) / (cores / cpu):.0%}")
    finally:
        if worker is not None and worker.poll() is None:
            os.killpg(worker.pid, signal.SIGTERM)
            try:
                worker.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(worker.pid, signal.SIGKILL)
                worker.wait(timeout=10)
        await admin(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')


if __name__ == "__main__":
    msgspec.json.encode({})  # fail fast if the environment is broken
    asyncio.run(main())
