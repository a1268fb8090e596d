"""Real Dramatiq worker processes for tests, and a Redis server a test can stop."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import redis as redis_sync

from tests.helpers import ServiceUrls

ROOT = Path(__file__).resolve().parents[1]
DRAMATIQ = str(Path(sys.executable).parent / "dramatiq")


def worker_env(services: ServiceUrls, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "SAFEXAM_ENV": "test",
            "SAFEXAM_DATABASE_URL": services.database_url,
            "SAFEXAM_REDIS_URL": services.redis_url,
            "SAFEXAM_REDIS_NAMESPACE": services.namespace,
            "SAFEXAM_SECRET_KEY": "worker-secret-key-0123456789",
            "SAFEXAM_LOG_LEVEL": "INFO",
            "SAFEXAM_LOG_FORMAT": "json",
        }
    )
    env.pop("SAFEXAM_BROKER_URL", None)
    env.update(extra)
    return env


class Worker:
    def __init__(self, proc: subprocess.Popen[bytes], log_path: Path) -> None:
        self.proc = proc
        self.log_path = log_path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def kill(self) -> None:
        """SIGKILL the whole worker process group (no graceful shutdown)."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            # To the main process only: it forwards SIGTERM to its worker
            # processes, and a second SIGTERM (as a signal to the whole group
            # would deliver) makes a worker exit at once without stopping its
            # threads, which can hang it until the SIGKILL below.
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()


def _worker_seen(services: ServiceUrls, pids_before: set[str], queue: str) -> bool:
    client = redis_sync.Redis.from_url(services.redis_url)
    try:
        import json

        for name, raw in client.hgetall(f"{services.namespace}:workers").items():
            record = json.loads(raw)
            if name.decode() not in pids_before and queue in record.get("queues", []):
                return True
        return False
    finally:
        client.close()


def _known_workers(services: ServiceUrls) -> set[str]:
    client = redis_sync.Redis.from_url(services.redis_url)
    try:
        return {n.decode() for n in client.hkeys(f"{services.namespace}:workers")}
    finally:
        client.close()


@contextmanager
def running_worker(
    services: ServiceUrls,
    queues: tuple[str, ...] = ("grading", "maintenance"),
    *,
    threads: int = 2,
    wait_ready: bool = True,
    **env: str,
) -> Iterator[Worker]:
    """``dramatiq workers --queues ...`` as a subprocess in its own process group."""
    log_path = services.tmp / f"worker-{time.monotonic_ns()}.log"
    before = _known_workers(services)
    with log_path.open("wb") as log_file:
        proc = subprocess.Popen(
            [
                DRAMATIQ,
                "workers",
                "--processes",
                "1",
                "--threads",
                str(threads),
                "--queues",
                *queues,
            ],
            cwd=ROOT,
            env=worker_env(services, **env),
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    worker = Worker(proc, log_path)
    try:
        if wait_ready:
            deadline = time.monotonic() + 30
            while not _worker_seen(services, before, queues[0]):
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"worker did not start:\n{worker.log()[-3000:]}")
                time.sleep(0.1)
        yield worker
    finally:
        worker.stop()
