"""Faults under load: workers SIGKILLed at random, Redis and PostgreSQL restarted.

Starts its own private servers, so nothing shared is ever stopped: a
PostgreSQL 15 cluster (``initdb``/``pg_ctl`` from ``--pg-bin``, in a temporary
folder on a free port), a ``redis-server`` with an append-only file, one API
process (``safexam serve``) and three worker pools (``grading``, ``judge``,
``maintenance``) as real ``dramatiq`` processes, restarted by a small
supervisor loop when they die (as systemd or compose would).

Students (``--students``) sign in, start an MCQ exam and a coding exam, and
autosave answers continuously; every few seconds each also submits code
(judged in the sandbox), and between 40 % and 90 % of the run each submits
the MCQ exam (graded). Meanwhile:

- every 3-6 s a random pool (``grading`` or ``judge``) gets SIGKILL (its whole
  process group, mid-job or not); the supervisor starts it again ~1 s later;
- at 25 % of the run Redis is stopped for ``--outage`` seconds, at 55 %
  PostgreSQL (``pg_ctl stop -m fast``), then each is started again.

Then it waits (bounded by ``--settle``) for every job, and prints: jobs
submitted / finished / finished twice (a ``job_done`` logged twice for one job)
and in effect twice (results and test rows checked against the answers),
answers acknowledged vs in the database, what clients saw during each outage
(2xx / 503 / other), and recovery times. Everything is bounded by time and
count, and all traffic goes to 127.0.0.1.

    .venv/bin/python bench/faults.py [--students 24] [--duration 60] [--outage 4]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import secrets
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import text

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

from tests.fault_servers import (  # noqa: E402
    PG_BIN,
    ApiReplica,
    PostgresCluster,
    RedisServer,
    postgres_missing,
)

from safexam.auth.passwords import cheap_hashing  # noqa: E402
from safexam.auth.service import create_user  # noqa: E402
from safexam.core.db import create_engine, create_sessionmaker, utcnow  # noqa: E402
from safexam.core.migrate import upgrade  # noqa: E402
from safexam.core.settings import to_asyncpg_url  # noqa: E402
from safexam.exams.models import Enrollment, Exam, ExamItem, Question  # noqa: E402

DRAMATIQ = str(Path(sys.executable).parent / "dramatiq")
PASSWORD = "bench password 0123456789"
SOURCE = "def add(a, b):\n    return a + b\n"
TEMPLATE = "{{ SOURCE }}\nprint(add(*map(int, input().split())))\n"
CODE_TESTS = 3
MCQ_QUESTIONS = 5


# --------------------------------------------------------------------- processes


class Pool:
    """One ``dramatiq workers`` pool in its own process group."""

    def __init__(self, name: str, queues: list[str], threads: int, env: dict[str, str], logs: Path):
        self.name = name
        self.queues = queues
        self.threads = threads
        self.env = env
        self.log_path = logs / f"pool-{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.kills = 0
        self.starts = 0

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [
                    DRAMATIQ,
                    "workers",
                    "--processes",
                    "1",
                    "--threads",
                    str(self.threads),
                    "--queues",
                    *self.queues,
                ],
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.starts += 1

    def kill(self) -> None:
        if self.alive():
            assert self.proc is not None
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
            self.kills += 1

    def stop(self) -> None:
        if self.alive():
            assert self.proc is not None
            self.proc.terminate()  # the main process forwards it to its workers
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)


# --------------------------------------------------------------------- records


@dataclass
class Record:
    t: float
    what: str
    status: int | str


@dataclass
class Outage:
    name: str
    down_at: float
    up_at: float = 0.0


@dataclass
class Run:
    started: float = field(default_factory=time.monotonic)
    records: list[Record] = field(default_factory=list)
    outages: list[Outage] = field(default_factory=list)
    kills: list[tuple[float, str]] = field(default_factory=list)
    # (session id, question id) -> (client_seq, choice) of the last acknowledged save
    acknowledged: dict[tuple[str, str], tuple[int, str]] = field(default_factory=dict)
    acknowledged_saves: int = 0
    code_submissions: set[str] = field(default_factory=set)
    exams_submitted: set[str] = field(default_factory=set)

    def now(self) -> float:
        return time.monotonic() - self.started

    def note(self, what: str, status: int | str) -> None:
        self.records.append(Record(self.now(), what, status))


# --------------------------------------------------------------------- seed


def question_body_mcq() -> dict[str, Any]:
    return {"choices": [{"id": c, "text": c} for c in "abcd"], "answer": ["b"]}


def question_body_code() -> dict[str, Any]:
    return {
        "languages": ["python"],
        "template": {"python": TEMPLATE},
        "tests": [
            {"name": f"t{i}", "stdin": f"{i} {i}\n", "expected_output": f"{2 * i}\n", "points": 1}
            for i in range(CODE_TESTS)
        ],
        "comparison": "trimmed",
        "limits": {"cpu_time_s": 2, "wall_time_s": 5, "memory_mb": 256, "output_kb": 64},
    }


async def seed(database_url: str, students: int) -> tuple[str, str, list[str]]:
    engine = create_engine(to_asyncpg_url(database_url), pool_size=1)
    maker = create_sessionmaker(engine)
    emails = [f"faults-student-{n}@college.edu" for n in range(students)]
    with cheap_hashing():
        async with maker() as db:
            educator = await create_user(
                db,
                email="faults-educator@college.edu",
                name="E",
                role="educator",
                password=PASSWORD,
            )
            now = utcnow()
            exams = []
            for title, bodies in (
                ("MCQ", [("mcq_single", question_body_mcq()) for _ in range(MCQ_QUESTIONS)]),
                ("Code", [("coding", question_body_code())]),
            ):
                exam = Exam(
                    owner_id=educator.id,
                    organization_id=educator.organization_id,
                    title=title,
                    opens_at=now - timedelta(hours=1),
                    closes_at=now + timedelta(hours=3),
                    duration_minutes=120,
                    release_policy="immediate",
                    status="published",
                )
                db.add(exam)
                await db.flush()
                for position, (kind, body) in enumerate(bodies):
                    question = Question(
                        owner_id=educator.id,
                        organization_id=educator.organization_id,
                        kind=kind,
                        prompt=f"{title} {position}",
                        body=body,
                        points=1,
                        status="active",
                    )
                    db.add(question)
                    await db.flush()
                    db.add(
                        ExamItem(
                            exam_id=exam.id, position=position, question_id=question.id, points=1
                        )
                    )
                exams.append(exam)
            for email in emails:
                user = await create_user(
                    db, email=email, name=email, role="student", password=PASSWORD
                )
                for exam in exams:
                    db.add(Enrollment(exam_id=exam.id, email=email, user_id=user.id))
            await db.commit()
    await engine.dispose()
    return str(exams[0].id), str(exams[1].id), emails


# --------------------------------------------------------------------- students


async def request(run: Run, what: str, call: Any) -> httpx.Response | None:
    try:
        response: httpx.Response = await call
    except httpx.TimeoutException:
        run.note(what, "timeout")
        return None
    except httpx.TransportError:
        run.note(what, "connection error")
        return None
    run.note(what, response.status_code)
    return response


async def signed_in(run: Run, client: httpx.AsyncClient, email: str, deadline: float) -> bool:
    while run.now() < deadline:
        token = await request(run, "csrf", client.get("/api/v1/auth/csrf"))
        if token is not None and token.status_code == 200:
            client.headers["X-CSRF-Token"] = token.json()["csrf_token"]
            login = await request(
                run,
                "login",
                client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD}),
            )
            if login is not None and login.status_code == 200:
                again = await request(run, "csrf", client.get("/api/v1/auth/csrf"))
                if again is not None and again.status_code == 200:
                    client.headers["X-CSRF-Token"] = again.json()["csrf_token"]
                    return True
        await asyncio.sleep(1)
    return False


async def start_session(run: Run, client: httpx.AsyncClient, exam_id: str) -> dict[str, Any]:
    for _ in range(30):
        started = await request(run, "start", client.post(f"/api/v1/exams/{exam_id}/sessions"))
        if started is not None and started.status_code in (200, 201):
            body: dict[str, Any] = started.json()
            return body
        await asyncio.sleep(1)
    raise RuntimeError(f"could not start a session of {exam_id}")


def retry_after(response: httpx.Response | None) -> float:
    if response is not None and response.status_code in (429, 503):
        return min(float(response.headers.get("retry-after", "1")), 2.0)
    return 0.0


async def save_choice(
    run: Run, what: str, client: httpx.AsyncClient, session_id: str, question: str, seq: int
) -> httpx.Response | None:
    """Autosave a random choice; a 200 is an acknowledged answer the end check looks for."""
    choice = random.choice("abcd")
    saved = await request(
        run,
        what,
        client.put(
            f"/api/v1/sessions/{session_id}/responses/{question}",
            json={"answer": {"choice": choice}, "client_seq": seq},
        ),
    )
    if saved is not None and saved.status_code == 200:
        run.acknowledged[(session_id, question)] = (seq, choice)
        run.acknowledged_saves += 1
    return saved


async def submit_exam(run: Run, client: httpx.AsyncClient, session_id: str, until: float) -> None:
    while run.now() < until and session_id not in run.exams_submitted:
        done = await request(run, "submit", client.post(f"/api/v1/sessions/{session_id}/submit"))
        if done is not None and done.status_code == 202:
            run.exams_submitted.add(session_id)
            return
        await asyncio.sleep(retry_after(done) or 0.5)


async def student(
    run: Run, base: str, email: str, mcq_exam: str, code_exam: str, duration: float
) -> None:
    async with httpx.AsyncClient(base_url=base, timeout=10) as client:
        if not await signed_in(run, client, email, duration):
            return
        mcq = await start_session(run, client, mcq_exam)
        code = await start_session(run, client, code_exam)
        questions = [q["id"] for q in mcq["questions"]]
        code_question = code["questions"][0]["id"]
        submit_at = random.uniform(0.4, 0.9) * duration
        next_code = run.now() + random.uniform(1, 8)
        seq = 0
        while run.now() < submit_at:
            if run.now() >= next_code:
                next_code = run.now() + random.uniform(7, 10)  # under the 10 a minute limit
                sent = await request(
                    run,
                    "code",
                    client.post(
                        f"/api/v1/sessions/{code['id']}/submissions",
                        json={"question_id": code_question, "language": "python", "source": SOURCE},
                    ),
                )
                if sent is not None and sent.status_code == 202:
                    run.code_submissions.add(sent.json()["id"])
                continue
            seq += 1
            question = random.choice(questions)
            saved = await save_choice(run, "autosave", client, mcq["id"], question, seq)
            await asyncio.sleep(retry_after(saved) or random.uniform(0.05, 0.25))
        await submit_exam(run, client, mcq["id"], duration + 30)


# --------------------------------------------------------------------- chaos


async def supervise(pools: list[Pool], stop: asyncio.Event) -> None:
    """Start a pool again about a second after it died (a process supervisor's job)."""
    down_since: dict[str, float] = {}
    while not stop.is_set():
        for pool in pools:
            if pool.alive():
                down_since.pop(pool.name, None)
            elif time.monotonic() - down_since.setdefault(pool.name, time.monotonic()) > 1.0:
                await asyncio.to_thread(pool.start)
                down_since.pop(pool.name, None)
        await asyncio.sleep(0.2)


JOB_KIND = {"grading": "grade_session", "judge": "judge"}


async def busy(database_url: str, kind: str, within: float) -> bool:
    """Wait (up to ``within`` s) for a running job of ``kind``; False if none or no database."""
    engine = create_engine(to_asyncpg_url(database_url), pool_size=1, connect_timeout=1)
    deadline = time.monotonic() + within
    try:
        async with engine.connect() as conn:
            while time.monotonic() < deadline:
                running = (
                    await conn.execute(
                        text("SELECT 1 FROM jobs WHERE kind = :k AND status = 'running' LIMIT 1"),
                        {"k": kind},
                    )
                ).first()
                await conn.rollback()
                if running is not None:
                    return True
                await asyncio.sleep(0.01)
    except Exception:
        return False
    finally:
        await engine.dispose()
    return False


async def killer(run: Run, pools: list[Pool], database_url: str, until: float) -> None:
    """Every 3-6 s, SIGKILL a random pool, preferably while one of its jobs runs."""
    while run.now() < until:
        await asyncio.sleep(random.uniform(3, 6))
        pool = random.choice(pools)
        mid_job = await busy(database_url, JOB_KIND[pool.name], within=3.0)
        if pool.alive():
            await asyncio.to_thread(pool.kill)
            run.kills.append((run.now(), f"{pool.name} ({'mid-job' if mid_job else 'idle'})"))


async def probe(run: Run, base: str, email: str, mcq_exam: str, duration: float) -> None:
    """One student autosaving every 100 ms whatever the answer: the recovery clock."""
    async with httpx.AsyncClient(base_url=base, timeout=10) as client:
        if not await signed_in(run, client, email, duration):
            return
        mcq = await start_session(run, client, mcq_exam)
        question = mcq["questions"][0]["id"]
        seq = 0
        while run.now() < duration:
            seq += 1
            await save_choice(run, "probe", client, mcq["id"], question, seq)
            await asyncio.sleep(0.1)


async def outages(
    run: Run, duration: float, outage: float, redis: RedisServer, pg: PostgresCluster
) -> None:
    for name, at, stop, start in (
        ("redis", 0.25 * duration, redis.stop, redis.start),
        ("postgresql", 0.55 * duration, pg.stop, pg.start),
    ):
        await asyncio.sleep(max(0.0, at - run.now()))
        record = Outage(name, run.now())
        run.outages.append(record)
        await asyncio.to_thread(stop)
        await asyncio.sleep(outage)
        await asyncio.to_thread(start)
        record.up_at = run.now()


# --------------------------------------------------------------------- report


def pool_events(pools: list[Pool]) -> tuple[Counter[str], Counter[str]]:
    """Per job id: how many times a worker logged it done (succeeded), and fenced attempts."""
    done: Counter[str] = Counter()
    fenced: Counter[str] = Counter()
    for pool in pools:
        if not pool.log_path.exists():
            continue
        for line in pool.log_path.read_text(errors="replace").splitlines():
            if not line.startswith("{"):
                continue
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if event.get("event") == "job_done" and event.get("status") == "succeeded":
                done[str(event.get("job_id"))] += 1
            elif event.get("event") == "job_claim_lost":
                fenced[str(event.get("job_id"))] += 1
    return done, fenced


def window(run: Run, outage: Outage, what: str = "probe") -> dict[str, Any]:
    """What clients saw from the moment the server stopped until saves succeed again.

    Recovery is timed on the probe (an autosave every 100 ms that ignores
    Retry-After), from the moment the server was started again.
    """
    recovered_at = next(
        (
            r.t
            for r in run.records
            if r.what == what
            and r.t >= outage.up_at
            and isinstance(r.status, int)
            and r.status < 300
        ),
        None,
    )
    end = recovered_at if recovered_at is not None else run.now()
    seen = [r for r in run.records if outage.down_at <= r.t <= end]
    by_status = Counter(str(r.status) for r in seen)
    by_what_503 = Counter(r.what for r in seen if r.status == 503)
    return {
        "down_s": round(outage.up_at - outage.down_at, 2),
        "recovery_s": None if recovered_at is None else round(recovered_at - outage.up_at, 3),
        "statuses": dict(sorted(by_status.items())),
        "503_by_request": dict(by_what_503),
        "autosave_2xx_while_down": sum(
            1
            for r in seen
            if r.what == "autosave"
            and r.t < outage.up_at
            and isinstance(r.status, int)
            and r.status < 300
        ),
    }


async def settle(database_url: str, deadline: float) -> dict[str, Counter[str]]:
    engine = create_engine(to_asyncpg_url(database_url), pool_size=1)
    try:
        while True:
            async with engine.connect() as conn:
                rows = (
                    await conn.execute(
                        text(
                            "SELECT kind, status, count(*) FROM jobs"
                            " WHERE kind IN ('grade_session', 'judge') GROUP BY kind, status"
                        )
                    )
                ).all()
            jobs: dict[str, Counter[str]] = defaultdict(Counter)
            for kind, status, count in rows:
                jobs[kind][status] = count
            open_jobs = sum(
                n
                for c in jobs.values()
                for s, n in c.items()
                if s in ("pending", "queued", "running")
            )
            if open_jobs == 0 or time.monotonic() > deadline:
                return jobs
            await asyncio.sleep(1)
    finally:
        await engine.dispose()


async def verify(database_url: str, run: Run) -> dict[str, Any]:
    engine = create_engine(to_asyncpg_url(database_url), pool_size=1)
    try:
        async with engine.connect() as conn:
            saved = {
                (str(s), str(q)): (seq, (answer or {}).get("choice"))
                for s, q, seq, answer in (
                    await conn.execute(
                        text("SELECT session_id, question_id, client_seq, answer FROM responses")
                    )
                ).all()
            }
            lost = [
                key
                for key, (seq, choice) in run.acknowledged.items()
                if key not in saved
                or saved[key][0] < seq
                or (saved[key][0] == seq and saved[key][1] != choice)
            ]
            # Grading in effect once: one result per submitted session, whose score is
            # exactly the number of right answers stored (a second application would
            # have to add up or leave another row).
            results = (
                await conn.execute(
                    text(
                        "SELECT s.id, count(r.session_id), max(r.score),"
                        " (SELECT count(*) FROM responses x WHERE x.session_id = s.id"
                        "   AND x.answer->>'choice' = 'b')"
                        " FROM exam_sessions s LEFT JOIN results r ON r.session_id = s.id"
                        " WHERE s.id = ANY(:ids) GROUP BY s.id"
                    ),
                    {"ids": [uuid.UUID(s) for s in run.exams_submitted]},
                )
            ).all()
            graded_once = sum(1 for _, n, score, right in results if n == 1 and score == right)
            ungraded = sum(1 for _, n, _, _ in results if n == 0)
            wrong = [
                (str(s), n, score, right)
                for s, n, score, right in results
                if n > 1 or (n == 1 and score != right)
            ]
            # Judging in effect once: every test result stored once, full marks.
            subs = (
                await conn.execute(
                    text(
                        "SELECT id, status, verdict, score, max_score, tests_done, tests_total,"
                        " jsonb_array_length(tests) FROM coding_submissions WHERE id = ANY(:ids)"
                    ),
                    {"ids": [uuid.UUID(s) for s in run.code_submissions]},
                )
            ).all()
            judged_once = sum(
                1
                for _, status, verdict, score, top, done, total, stored in subs
                if status == "done"
                and verdict == "accepted"
                and score == top
                and done == total == stored == CODE_TESTS
            )
            judged_badly = [
                (str(i), status, verdict, score, done, stored)
                for i, status, verdict, score, _, done, _, stored in subs
                if status == "done"
                and not (verdict == "accepted" and stored == CODE_TESTS and done == CODE_TESTS)
            ]
            attempts = (
                await conn.execute(
                    text(
                        "SELECT kind, max(attempts), avg(attempts)::float FROM jobs"
                        " WHERE kind IN ('grade_session', 'judge') GROUP BY kind"
                    )
                )
            ).all()
    finally:
        await engine.dispose()
    return {
        "acknowledged_pairs": len(run.acknowledged),
        "acknowledged_saves": run.acknowledged_saves,
        "lost": lost,
        "sessions_submitted": len(run.exams_submitted),
        "graded_once": graded_once,
        "ungraded": ungraded,
        "graded_wrong_or_twice": wrong,
        "code_submitted": len(run.code_submissions),
        "judged_once": judged_once,
        "judged_badly": judged_badly,
        "attempts": {kind: (top, round(mean, 2)) for kind, top, mean in attempts},
    }


# --------------------------------------------------------------------- main


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=24)
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of traffic")
    parser.add_argument("--outage", type=float, default=4.0, help="seconds each server is down")
    parser.add_argument("--settle", type=float, default=150.0, help="max seconds to wait for jobs")
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args()
    if args.seed is not None:
        random.seed(args.seed)
    missing = postgres_missing()
    if missing:
        print(f"cannot start a private PostgreSQL: {missing} (looked in {PG_BIN})")
        return 2
    load_before = os.getloadavg()
    logs = Path(tempfile.mkdtemp(prefix="safexam-faults-"))
    pg = PostgresCluster()
    redis = RedisServer(appendonly=True)
    pools: list[Pool] = []
    api: ApiReplica | None = None
    try:
        pg.start()
        redis.start()
        admin = create_engine(to_asyncpg_url(pg.url()), pool_size=1)
        async with admin.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text("CREATE DATABASE safexam"))
        await admin.dispose()
        database_url = pg.url("safexam")
        await asyncio.to_thread(upgrade, to_asyncpg_url(database_url))
        mcq_exam, code_exam, emails = await seed(database_url, args.students + 1)
        env = {
            **os.environ,
            "SAFEXAM_ENV": "test",
            "SAFEXAM_DATABASE_URL": database_url,
            "SAFEXAM_REDIS_URL": redis.url,
            "SAFEXAM_REDIS_NAMESPACE": f"faults-{secrets.token_hex(3)}",
            "SAFEXAM_SECRET_KEY": secrets.token_urlsafe(32),
            "SAFEXAM_COOKIE_SECURE": "false",
            "SAFEXAM_LOG_FORMAT": "json",
            "SAFEXAM_LOG_LEVEL": "INFO",
        }
        env.pop("SAFEXAM_BROKER_URL", None)
        api = ApiReplica({**env, "SAFEXAM_LOG_LEVEL": "WARNING"}, logs / "api.log")
        api.start()
        pools = [
            Pool("grading", ["grading"], 4, env, logs),
            Pool("judge", ["judge"], 1, env, logs),
            Pool("maintenance", ["maintenance"], 2, env, logs),
        ]
        for pool in pools:
            pool.start()
        await asyncio.to_thread(api.wait_ready)

        run = Run()
        stop_supervisor = asyncio.Event()
        supervisor = asyncio.create_task(supervise(pools, stop_supervisor))
        chaos = [
            asyncio.create_task(killer(run, pools[:2], database_url, args.duration + 5)),
            asyncio.create_task(outages(run, args.duration, args.outage, redis, pg)),
        ]
        await asyncio.gather(
            probe(run, api.url, emails[0], mcq_exam, args.duration),
            *(
                student(run, api.url, email, mcq_exam, code_exam, args.duration)
                for email in emails[1:]
            ),
        )
        traffic_end = run.now()
        await asyncio.gather(*chaos)
        faults_end = run.now()
        jobs = await settle(database_url, time.monotonic() + args.settle)
        settled = run.now()
        stop_supervisor.set()
        await supervisor
        done, fenced = pool_events(pools)
        checked = await verify(database_url, run)
    finally:
        for pool in pools:
            pool.stop()
        if api is not None:
            api.stop()
        redis.close()
        pg.close()

    # ------------------------------------------------------------------ print
    statuses = Counter((r.what, str(r.status)) for r in run.records)
    total_jobs = {kind: sum(c.values()) for kind, c in jobs.items()}
    twice = sum(1 for n in done.values() if n > 1)
    print(
        f"faults bench: {args.students} students, {args.duration:.0f} s of traffic, "
        f"{args.outage:.0f} s outages; load (1 min) before {load_before[0]:.2f},"
        f" after {os.getloadavg()[0]:.2f}"
    )
    print(
        f"kills: {len(run.kills)} SIGKILLs "
        f"({', '.join(f'{n} {p}' for p, n in Counter(p for _, p in run.kills).items())}); "
        f"pool starts: {', '.join(f'{p.name} {p.starts}' for p in pools)}"
    )
    for kind in ("grade_session", "judge"):
        c = jobs.get(kind, Counter())
        print(
            f"jobs {kind}: submitted {total_jobs.get(kind, 0)}, finished {c.get('succeeded', 0)}, "
            f"failed {c.get('failed', 0)}, dead {c.get('dead', 0)}, "
            f"still open {sum(n for s, n in c.items() if s in ('pending', 'queued', 'running'))}; "
            f"attempts max/mean {checked['attempts'].get(kind)}"
        )
    print(
        f"finished twice (job_done logged twice for one job): {twice}; "
        f"stale attempts fenced (work rolled back): {sum(fenced.values())}"
    )
    print(
        f"grading in effect: {checked['graded_once']} of {checked['sessions_submitted']} submitted "
        f"sessions have exactly one result equal to their right answers; ungraded "
        f"{checked['ungraded']}; double or wrong {len(checked['graded_wrong_or_twice'])} "
        f"{checked['graded_wrong_or_twice'][:3]}"
    )
    print(
        f"judging in effect: {checked['judged_once']} of {checked['code_submitted']} "
        "code submissions "
        f"accepted with each of {CODE_TESTS} tests stored once; bad {len(checked['judged_badly'])} "
        f"{checked['judged_badly'][:3]}"
    )
    print(
        f"answers: {checked['acknowledged_saves']} saves acknowledged (200) on "
        f"{checked['acknowledged_pairs']} (session, question) pairs; in the database: "
        f"{checked['acknowledged_pairs'] - len(checked['lost'])}; lost {len(checked['lost'])}"
    )
    for outage in run.outages:
        print(f"{outage.name} outage at {outage.down_at:.1f} s: {window(run, outage)}")
    errors = {k: n for k, n in statuses.items() if k[1] in ("500", "connection error", "timeout")}
    print(
        f"all requests: {sum(statuses.values())};"
        f" 500s/connection errors/timeouts: {errors or 'none'}"
    )
    print(
        f"timeline: traffic ended {traffic_end:.1f} s, faults ended {faults_end:.1f} s, "
        f"all jobs settled {settled:.1f} s ({settled - faults_end:.1f} s after the last fault)"
    )
    print(f"logs: {logs}")
    ok = (
        not checked["lost"]
        and twice == 0
        and not checked["graded_wrong_or_twice"]
        and not checked["judged_badly"]
        and checked["ungraded"] == 0
        and not errors
    )
    print("result:", "OK" if ok else "PROBLEMS (see above)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
