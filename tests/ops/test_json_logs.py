"""Production logs: every line JSON, from uvicorn, Dramatiq, SQLAlchemy and Alembic too.

The process tests start the real commands (``safexam serve``, ``safexam
worker``, ``safexam db upgrade``) with ``SAFEXAM_ENV=production`` and parse
every line they write to stderr as JSON.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from safexam.core.logging import configure_logging
from safexam.core.settings import Settings
from safexam.jobs import enqueue
from safexam.jobs.kinds import AUTOSUBMIT
from safexam.jobs.models import Job
from tests.fault_servers import free_port
from tests.helpers import ServiceUrls

ROOT = Path(__file__).resolve().parents[2]
SAFEXAM = str(Path(sys.executable).parent / "safexam")


def _production_env(services: ServiceUrls) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SAFEXAM_")}
    env.update(
        {
            "SAFEXAM_ENV": "production",
            "SAFEXAM_DATABASE_URL": services.database_url,
            "SAFEXAM_REDIS_URL": services.redis_url,
            "SAFEXAM_REDIS_NAMESPACE": services.namespace,
            "SAFEXAM_SECRET_KEY": "json-logs-secret-key-0123456789",
            "SAFEXAM_LOG_LEVEL": "INFO",
        }
    )
    return env


def _json_lines(path: Path) -> list[dict[str, Any]]:
    """Every line of ``path`` decoded; fails naming the first line that is not a JSON object."""
    lines = []
    for number, raw in enumerate(path.read_text().splitlines(), 1):
        try:
            line = json.loads(raw)
        except json.JSONDecodeError:
            pytest.fail(f"{path.name} line {number} is not JSON: {raw[:300]!r}")
        assert isinstance(line, dict) and "event" in line and "level" in line, raw
        lines.append(line)
    return lines


def _start(argv: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            argv, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )


def _stop(*procs: subprocess.Popen[bytes]) -> None:
    """SIGTERM to each main process (a graceful stop, as Kubernetes does), then wait."""
    for proc in procs:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def test_standard_library_records_carry_the_bound_context() -> None:
    out = io.StringIO()
    try:
        configure_logging(Settings(env="production", log_level="INFO", secret_key="x" * 16))
        # Read from our root handler itself: the loggers configured here stay
        # bound to the process's stderr, not to a stream this test closes.
        (handler,) = [h for h in logging.getLogger().handlers if type(h).__name__ == "_OurHandler"]
        handler.setStream(out)  # type: ignore[attr-defined]
        structlog.contextvars.bind_contextvars(job_id="job-7", session_id="s-1")
        logging.getLogger("sqlalchemy.engine.Engine").warning("slow %s", "query")
        logging.getLogger("alembic.runtime.migration").info("Running upgrade")
        structlog.contextvars.clear_contextvars()
        logging.getLogger("uvicorn.error").info("Started server process")
    finally:
        configure_logging(Settings(env="test", log_level="WARNING"))
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [(line["logger"], line["event"]) for line in lines] == [
        ("sqlalchemy.engine.Engine", "slow query"),
        ("alembic.runtime.migration", "Running upgrade"),
        ("uvicorn.error", "Started server process"),
    ]
    assert lines[0]["job_id"] == "job-7" and lines[0]["session_id"] == "s-1"
    assert lines[0]["level"] == "warning" and "timestamp" in lines[0]
    assert "job_id" not in lines[2]


async def test_server_worker_and_migrations_write_only_json(
    services: ServiceUrls, db: AsyncSession, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    env = _production_env(services)
    tmp = services.tmp
    port = free_port()
    server_log = tmp / f"server-{uuid.uuid4().hex}.log"
    worker_log = tmp / f"worker-{uuid.uuid4().hex}.log"
    server = _start([SAFEXAM, "serve", "--host", "127.0.0.1", "--port", str(port)], env, server_log)
    worker = _start(
        [SAFEXAM, "worker", "--queues", "maintenance", "--processes", "1", "--threads", "1"],
        env,
        worker_log,
    )
    try:
        # While the server and the worker start (already at head: Alembic only reports).
        migrate_log = tmp / f"migrate-{uuid.uuid4().hex}.log"
        with migrate_log.open("wb") as out:
            subprocess.run(
                [SAFEXAM, "db", "upgrade"],
                cwd=ROOT,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=out,
                timeout=120,
                check=True,
            )
        assert any(
            line.get("logger", "").startswith("alembic") for line in _json_lines(migrate_log)
        )
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            for _ in range(600):
                try:
                    if (await http.get("/healthz")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert server.poll() is None, server_log.read_text()[-2000:]
                await asyncio.sleep(0.05)
            traced = await http.get(
                "/api/v1/exams/not-a-uuid", headers={"X-Request-ID": "trace-77"}
            )
            assert traced.status_code in (401, 404), traced.text
        # A job the worker runs, so its lines carry the job's id.
        job = await enqueue(db, AUTOSUBMIT, args={"session_id": str(uuid.uuid4())})
        await db.commit()
        deadline = time.monotonic() + 30
        while True:
            async with sessionmaker() as check:
                row = await check.get(Job, job.id)
                assert row is not None
                if row.status == "succeeded":
                    break
            assert time.monotonic() < deadline, worker_log.read_text()[-3000:]
            assert worker.poll() is None, worker_log.read_text()[-3000:]
            await asyncio.sleep(0.1)
    finally:
        _stop(server, worker)

    served = _json_lines(server_log)
    loggers = {line.get("logger") for line in served}
    assert "uvicorn.error" in loggers, served
    assert any(
        line["event"] == "request" and line.get("request_id") == "trace-77" for line in served
    )
    worked = _json_lines(worker_log)
    assert any(line.get("logger", "").startswith("dramatiq") for line in worked), worked
    assert any("booting up" in line["event"] for line in worked), worked
    assert any(
        line["event"] == "job_done" and line.get("job_id") == str(job.id) for line in worked
    ), worked
