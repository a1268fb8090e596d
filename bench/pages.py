"""What the student-page benchmarks share: a private system, accounts, and exams of every kind.

``private_system`` creates a database of its own (``SAFEXAM_BENCH_DATABASE_URL``
names the server, default the local one; dropped afterwards), then starts the
API as production would (``uvicorn --factory safexam.app:create_app --workers
2 --loop uvloop --http httptools``, JSON logs, no access log) on a free port
of 127.0.0.1, and the worker pools (``dramatiq workers --queues ...``, as the
Procfile does), on ``SAFEXAM_BENCH_REDIS_URL`` under a namespace of its own.

The accounts go straight into the database with one shared password hash
(hashing is not what these benches measure); everything an educator does
(questions of every kind, the exam, publishing, enrolments) goes through the
API, so the exam is what a real educator would have made.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

from sqlalchemy import insert, text

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from loadgen import StudentClient, publish_and_enrol  # noqa: E402

from grading import bench_database  # noqa: E402
from safexam.auth.models import User  # noqa: E402
from safexam.auth.passwords import hash_password  # noqa: E402
from safexam.core.db import create_engine  # noqa: E402
from safexam.core.settings import Settings, to_asyncpg_url  # noqa: E402

PASSWORD = "student-pages-bench-123"
# name: (processes, threads); the pools an exam needs running (Procfile, exam_day's set-up:
# one judge process on two cores, see bench/README.md).
DEFAULT_POOLS = {"grading": (1, 4), "judge": (1, 1), "maintenance": (1, 2)}

# The coding question of every bench exam: add two integers, in Python or C.
CODING_PROMPT = """Write `add(a, b)` returning the sum of two integers.

The program reads one line such as `1 2` and prints the sum:

```python
print(add(*map(int, input().split())))
```
"""
CODING_BODY: dict[str, Any] = {
    "languages": ["python", "c"],
    "starter_code": {
        "python": "def add(a, b):\n    pass\n",
        "c": "int add(int a, int b) {\n    return 0;\n}\n",
    },
    "template": {
        "python": "{{ SOURCE }}\nprint(add(*map(int, input().split())))\n",
        "c": '#include <stdio.h>\n{{ SOURCE }}\nint main(void) { int a, b; scanf("%d %d", &a, &b);'
        ' printf("%d\\n", add(a, b)); return 0; }\n',
    },
    "tests": [
        {"name": "small", "stdin": "1 2\n", "expected_output": "3\n", "points": 5},
        {"name": "big", "stdin": "10 20\n", "expected_output": "30\n", "points": 5, "hidden": True},
    ],
    "comparison": "trimmed",
    "limits": {"cpu_time_s": 2, "wall_time_s": 5, "memory_mb": 256, "output_kb": 64},
}


def kind_questions(mcq: int = 4, *, coding: bool) -> list[dict[str, Any]]:
    """Question payloads of every kind: ``mcq`` single-choice ones, then one of each other kind
    (the coding question last, when asked for). Prompts are Markdown, as educators write them."""
    choices = [{"id": c, "text": f"`{c}` is choice {c}"} for c in "abcd"]
    questions: list[dict[str, Any]] = [
        {
            "kind": "mcq_single",
            "prompt": f"**Question {i + 1}.** Which choice is right? See `choice b`.",
            "points": 1,
            "status": "active",
            "body": {"choices": choices, "answer": ["b"]},
        }
        for i in range(mcq)
    ]
    questions += [
        {
            "kind": "mcq_multi",
            "prompt": "Which of these are *prime*?",
            "points": 2,
            "status": "active",
            "body": {
                "choices": [
                    {"id": c, "text": t}
                    for c, t in zip("abcd", ["2", "9", "11", "15"], strict=True)
                ],
                "answer": ["a", "c"],
                "partial_credit": True,
            },
        },
        {
            "kind": "numeric",
            "prompt": "What is 7 * 8.5? Give the number.",
            "points": 1,
            "status": "active",
            "body": {"answer": 59.5, "tolerance": 0.01},
        },
        {
            "kind": "short_text",
            "prompt": "Name the Python keyword that defines a function.",
            "points": 1,
            "status": "active",
            "body": {"answers": ["def"], "case_sensitive": False},
        },
    ]
    if coding:
        questions.append(
            {
                "kind": "coding",
                "prompt": CODING_PROMPT,
                "points": 10,
                "status": "active",
                "body": CODING_BODY,
            }
        )
    return questions


async def create_accounts(database_url: str, run: str, students: int) -> dict[str, Any]:
    """An educator and ``students`` students, inserted in one statement with one hash."""
    engine = create_engine(to_asyncpg_url(database_url), pool_size=1)
    password_hash = hash_password(PASSWORD)
    educator = f"pages-{run}-educator@staff.example"
    emails = [f"pages-{run}-{i}@students.example" for i in range(students)]
    people = [(educator, "Bench Educator", "educator")] + [
        (email, f"Student {i}", "student") for i, email in enumerate(emails)
    ]
    async with engine.begin() as conn:
        organization = (
            await conn.execute(text("SELECT id FROM organizations WHERE slug = 'default'"))
        ).scalar_one()
        await conn.execute(
            insert(User),
            [
                {
                    "id": uuid.uuid4(),
                    "email": e,
                    "name": n,
                    "role": r,
                    "password_hash": password_hash,
                    "organization_id": organization,
                }
                for e, n, r in people
            ],
        )
    await engine.dispose()
    return {"educator": educator, "students": emails}


async def create_exam(
    educator: StudentClient,
    title: str,
    questions: Sequence[dict[str, Any]],
    emails: Sequence[str],
    *,
    minutes: int = 90,
) -> str:
    """The educator's part, through the API: questions, exam, publish, enrol ``emails``."""
    ids = []
    for question in questions:
        created = await educator.call("POST", "/api/v1/questions", "POST /questions", question)
        ids.append(created["id"])
    now = datetime.now(UTC)
    exam = await educator.call(
        "POST",
        "/api/v1/exams",
        "POST /exams",
        {
            "title": title,
            "description": "Every kind of question, for the student-page benchmarks.",
            "opens_at": (now - timedelta(minutes=1)).isoformat(),
            "closes_at": (now + timedelta(minutes=minutes + 60)).isoformat(),
            "duration_minutes": minutes,
            "release_policy": "immediate",
            "items": [{"question_id": q} for q in ids],
        },
    )
    await publish_and_enrol(educator, str(exam["id"]), emails)
    return str(exam["id"])


_CSRF_FIELD = re.compile(rb'name="_csrf_token" value="([^"]+)"')
_ASSET = re.compile(rb'(?:href|src)="(/static/[^"]+)"')


def csrf_field(html: bytes) -> str:
    """The CSRF token a page's form carries (what a browser would post back)."""
    found = _CSRF_FIELD.search(html)
    if not found:
        raise RuntimeError("the page has no form with a CSRF token")
    return found.group(1).decode()


def static_urls(html: bytes) -> list[str]:
    """The stylesheets, scripts and icons a page names (not what its modules import)."""
    return list(dict.fromkeys(m.decode() for m in _ASSET.findall(html)))


# ---------------------------------------------------------------- a private system


@dataclass
class System:
    url: str
    database_url: str
    settings: Settings
    server_pid: int
    pools: dict[str, int] = field(default_factory=dict)
    # A separate API for autosaves (what the proxy routes saves to), when one was started.
    save_url: str | None = None
    save_pid: int | None = None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _env(settings: Settings) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "SAFEXAM_ENV": "development",
            "SAFEXAM_DATABASE_URL": settings.database_url or "",
            "SAFEXAM_REDIS_URL": settings.redis_url or "",
            "SAFEXAM_REDIS_NAMESPACE": settings.redis_namespace,
            "SAFEXAM_SECRET_KEY": settings.secret_key,
            "SAFEXAM_COOKIE_SECURE": "false",
            "SAFEXAM_LOG_FORMAT": "json",
            "SAFEXAM_LOG_LEVEL": "WARNING",
        }
    )
    return env


def _start_api(
    bin_dir: Path, env: dict[str, str], port: int, workers: int, log: IO[bytes]
) -> subprocess.Popen[bytes]:
    """``uvicorn`` serving the app on ``port`` with ``workers`` processes."""
    command = [
        str(bin_dir / "uvicorn"),
        "--factory",
        "safexam.app:create_app",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--loop",
        "uvloop",
        "--http",
        "httptools",
        "--no-access-log",
    ]
    return subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )


def _stop_all(procs: list[subprocess.Popen[bytes]], grace_s: float = 10.0) -> None:
    """SIGTERM to every process group, then SIGKILL to what is left after ``grace_s``."""
    for proc in procs:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    for proc in procs:
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


@asynccontextmanager
async def private_system(
    *,
    web_workers: int = 2,
    pools: dict[str, tuple[int, int]] | None = None,
    save_workers: int = 0,
) -> AsyncIterator[System]:
    """A fresh database, the API (``web_workers`` uvicorn processes) and the worker pools.

    Output of the servers goes to ``SAFEXAM_BENCH_LOG`` (default: nowhere).
    """
    pools = DEFAULT_POOLS if pools is None else pools
    bin_dir = Path(sys.executable).parent
    log = open(os.environ.get("SAFEXAM_BENCH_LOG", os.devnull), "ab")  # noqa: SIM115, ASYNC230
    started: list[subprocess.Popen[bytes]] = []
    try:
        async with bench_database() as (database_url, settings):
            env = _env(settings)
            port = free_port()
            server = _start_api(bin_dir, env, port, web_workers, log)
            started.append(server)
            save_url, save_pid = None, None
            if save_workers:
                save_port = free_port()
                saves = _start_api(bin_dir, env, save_port, save_workers, log)
                started.append(saves)
                save_url, save_pid = f"http://127.0.0.1:{save_port}", saves.pid
            pool_pids = {}
            for queue, (processes, threads) in pools.items():
                proc = subprocess.Popen(  # noqa: ASYNC220
                    [
                        str(bin_dir / "dramatiq"),
                        "workers",
                        "--queues",
                        queue,
                        "--processes",
                        str(processes),
                        "--threads",
                        str(threads),
                    ],
                    cwd=ROOT,
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
                started.append(proc)
                pool_pids[queue] = proc.pid
            url = f"http://127.0.0.1:{port}"
            await _wait_until_serving(url, server, web_workers)
            if save_url is not None:
                await _wait_until_serving(save_url, saves, save_workers)
            await _wait_for_pools(settings, sum(p for p, _ in pools.values()), started)
            yield System(url, database_url, settings, server.pid, pool_pids, save_url, save_pid)
    finally:
        _stop_all(started)
        log.close()


async def _wait_until_serving(url: str, server: subprocess.Popen[bytes], workers: int) -> None:
    """Until /healthz answers several times in a row (every uvicorn worker has started)."""
    import httpx

    deadline = time.monotonic() + 60
    ok = 0
    async with httpx.AsyncClient(base_url=url, timeout=2) as client:
        while ok < 4 * workers:
            if server.poll() is not None:
                raise RuntimeError("the API exited at start-up (set SAFEXAM_BENCH_LOG to see why)")
            if time.monotonic() > deadline:
                raise RuntimeError("the API did not answer /healthz within 60 s")
            try:
                ok = ok + 1 if (await client.get("/healthz")).status_code == 200 else 0
            except httpx.HTTPError:
                ok = 0
                await asyncio.sleep(0.2)
    await asyncio.sleep(1.0)  # the other worker's start-up (the heap frozen, pools warmed)


async def _wait_for_pools(
    settings: Settings, processes: int, started: list[subprocess.Popen[bytes]]
) -> None:
    import redis.asyncio as redis

    client = redis.Redis.from_url(settings.redis_url or "")
    try:
        deadline = time.monotonic() + 90
        while await client.hlen(f"{settings.redis_namespace}:workers") < processes:
            if any(p.poll() is not None for p in started):
                raise RuntimeError("a worker pool exited at start-up (see SAFEXAM_BENCH_LOG)")
            if time.monotonic() > deadline:
                raise RuntimeError("the worker pools did not start within 90 s")
            await asyncio.sleep(0.2)
    finally:
        await client.aclose()
