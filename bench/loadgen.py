"""The load generator shared by the HTTP benchmarks: cheap clients, spread over processes.

The benchmarks run on the same two cores as the server they measure, so the
client must cost little: a minimal HTTP/1.1 client on uvloop with one
keep-alive connection per simulated student (what a browser tab holds),
msgspec for JSON, and the students split over a few client processes so one
Python process is never the bottleneck. Traffic goes only to the URL given,
which the callers restrict to this machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import multiprocessing
import os
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import msgspec

__all__ = [
    "Recorder",
    "StudentClient",
    "check_local_url",
    "percentile",
    "process_cpu_seconds",
    "process_tree",
    "run_in_processes",
    "summary_lines",
]

LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}


def check_local_url(url: str) -> None:
    """Benchmarks send traffic to this machine only."""
    host = urlsplit(url).hostname or ""
    if host not in LOCAL_HOSTS and not host.startswith("127."):
        raise SystemExit(f"refusing to load {url}: benchmarks only target this machine")


@dataclass
class Recorder:
    """Latencies (ms) and status codes per endpoint name, from one client process."""

    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    statuses: Counter[tuple[str, int]] = field(default_factory=Counter)
    transport_errors: Counter[str] = field(default_factory=Counter)
    measuring: bool = True

    def add(self, endpoint: str, status: int, elapsed_ms: float) -> None:
        if not self.measuring:
            return
        self.statuses[(endpoint, status)] += 1
        if status < 400:
            self.latencies[endpoint].append(elapsed_ms)

    def to_wire(self) -> dict[str, Any]:
        return {
            "latencies": dict(self.latencies),
            "statuses": [[e, s, n] for (e, s), n in self.statuses.items()],
            "transport_errors": dict(self.transport_errors),
        }

    def merge_wire(self, wire: dict[str, Any]) -> None:
        for endpoint, values in wire["latencies"].items():
            self.latencies[endpoint].extend(values)
        for endpoint, status, n in wire["statuses"]:
            self.statuses[(endpoint, int(status))] += n
        self.transport_errors.update(wire["transport_errors"])


class HttpError(Exception):
    def __init__(self, endpoint: str, status: int, body: bytes) -> None:
        super().__init__(f"{endpoint}: HTTP {status}: {body[:300]!r}")
        self.status = status


class TransportError(Exception):
    """The connection failed, closed or timed out before a whole response arrived."""


def _parse_response(buffer: bytearray) -> tuple[int, int, list[tuple[str, str]], bytes] | None:
    """(bytes used, status, headers, body) once ``buffer`` holds a whole response, else None."""
    end = buffer.find(b"\r\n\r\n")
    if end < 0:
        return None
    lines = bytes(buffer[:end]).decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = []
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(":")
        name, value = name.strip().lower(), value.strip()
        headers.append((name, value))
        if name == "content-length":
            length = int(value)
        elif name == "transfer-encoding" and value.lower() != "identity":
            raise TransportError(f"unsupported transfer-encoding {value}")
    total = end + 4 + length
    if len(buffer) < total:
        return None
    return total, status, headers, bytes(buffer[end + 4 : total])


class _Connection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection with at most one request in flight."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.waiter: asyncio.Future[tuple[int, list[tuple[str, str]], bytes]] | None = None
        self.closed = False
        self.used = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports do not subclass asyncio.Transport; they behave as one.
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        waiter = self.waiter
        if waiter is None or waiter.done():
            return
        try:
            parsed = _parse_response(self.buffer)
        except (TransportError, ValueError, IndexError) as exc:
            waiter.set_exception(TransportError(f"bad response: {exc}"))
            return
        if parsed is not None:
            used, status, headers, body = parsed
            del self.buffer[:used]
            waiter.set_result((status, headers, body))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(TransportError("connection closed by the server"))

    def close(self) -> None:
        if self.transport is not None and not self.closed:
            self.transport.close()


class StudentClient:
    """One browser: its own cookies, CSRF header and keep-alive connection per server.

    A minimal HTTP/1.1 client on asyncio (uvloop in the client processes): the
    requests are small JSON calls with a ``Content-Length`` answer, so a few
    dozen lines do what a general client does at several times the CPU, which
    the server would otherwise lose on these two shared cores.
    """

    def __init__(self, base_url: str, recorder: Recorder, *, timeout_s: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.recorder = recorder
        self.timeout_s = timeout_s
        # Cookies do not depend on the port, so a peer server on another port of
        # this host gets the same session cookie (bench/peer_compare.py).
        self.cookies: dict[str, str] = {}
        self.headers: dict[str, str] = {"User-Agent": "safexam-bench"}
        self._idle: dict[tuple[str, int], list[_Connection]] = {}

    async def _connection(self, host: str, port: int) -> _Connection:
        # Like a browser: an idle kept-alive connection if there is one, else a new one
        # (the autosave timer, the integrity events and a code run can overlap).
        idle = self._idle.setdefault((host, port), [])
        while idle:
            connection = idle.pop()
            if not connection.closed:
                return connection
        loop = asyncio.get_running_loop()
        _, connection = await loop.create_connection(_Connection, host, port)
        return connection

    async def _exchange(
        self, host: str, port: int, request: bytes
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        for attempt in range(2):
            connection = await self._connection(host, port)
            reused = connection.used
            connection.used = True
            connection.waiter = asyncio.get_running_loop().create_future()
            assert connection.transport is not None
            connection.transport.write(request)
            try:
                async with asyncio.timeout(self.timeout_s):
                    answer = await connection.waiter
            except TransportError:
                # A kept-alive connection the server closed meanwhile: once more on a new one.
                if not (reused and connection.closed and attempt == 0):
                    raise
                continue
            except BaseException:
                connection.close()
                raise
            if any(n == "connection" and v.lower() == "close" for n, v in answer[1]):
                connection.close()
            else:
                self._idle[(host, port)].append(connection)
            return answer
        raise TransportError("unreachable")

    async def call(
        self,
        method: str,
        path: str,
        endpoint: str,
        body: Any = None,
        *,
        expect: Iterable[int] = (200, 201, 202),
        base_url: str | None = None,
    ) -> Any:
        """Send one request, record it under ``endpoint``, return the decoded JSON body.

        ``base_url`` sends it to another server than the client's own.
        """
        data = msgspec.json.encode(body) if body is not None else None
        _, _, raw = await self.request(
            method,
            path,
            endpoint,
            data,
            content_type="application/json",
            expect=expect,
            base_url=base_url,
        )
        return msgspec.json.decode(raw) if raw else None

    async def request(
        self,
        method: str,
        path: str,
        endpoint: str,
        data: bytes | None = None,
        *,
        content_type: str | None = None,
        headers: dict[str, str] | None = None,
        expect: Iterable[int] = (200,),
        base_url: str | None = None,
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        """Send one request (any body), record it under ``endpoint``; (status, headers, body).

        Pages and static files use this directly: their bodies are not JSON.
        """
        url = urlsplit(base_url or self.base_url)
        host, port = url.hostname or "127.0.0.1", url.port or 80
        head = [f"{method} {path} HTTP/1.1", f"Host: {host}:{port}"]
        head.extend(f"{k}: {v}" for k, v in {**self.headers, **(headers or {})}.items())
        if self.cookies:
            head.append("Cookie: " + "; ".join(f"{k}={v}" for k, v in self.cookies.items()))
        if data is not None and content_type:
            head.append(f"Content-Type: {content_type}")
        head.append(f"Content-Length: {len(data or b'')}")
        request = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + (data or b"")
        began = time.perf_counter()
        try:
            status, answer_headers, raw = await self._exchange(host, port, request)
        except (OSError, TransportError, TimeoutError) as exc:
            self.recorder.transport_errors[f"{endpoint}: {type(exc).__name__}"] += 1
            raise
        self.recorder.add(endpoint, status, (time.perf_counter() - began) * 1000)
        for name, value in answer_headers:
            if name == "set-cookie":
                self._keep_cookie(value)
        if status not in expect:
            raise HttpError(endpoint, status, raw)
        return status, answer_headers, raw

    def _keep_cookie(self, header: str) -> None:
        pair, _, attributes = header.partition(";")
        name, _, value = pair.strip().partition("=")
        if "max-age=0" in attributes.lower().replace(" ", "") or value in ("", '""', "null"):
            self.cookies.pop(name, None)
        else:
            self.cookies[name] = value

    async def refresh_csrf(self) -> None:
        token = await self.call("GET", "/api/v1/auth/csrf", "GET /auth/csrf")
        self.headers["X-CSRF-Token"] = token["csrf_token"]

    async def sign_in(self, email: str, password: str, *, timeout_s: float | None = None) -> None:
        """CSRF token, sign-in, new CSRF token; ``timeout_s`` for the sign-in itself."""
        await self.refresh_csrf()
        usual, self.timeout_s = self.timeout_s, timeout_s or self.timeout_s
        try:
            await self.call(
                "POST",
                "/api/v1/auth/login",
                "POST /auth/login",
                {"email": email, "password": password},
            )
        finally:
            self.timeout_s = usual
        # The CSRF token is bound to the session that sign-in replaced.
        await self.refresh_csrf()

    async def close(self) -> None:
        for connections in self._idle.values():
            for connection in connections:
                connection.close()
        self._idle.clear()


async def publish_and_enrol(
    educator: StudentClient, exam_id: str, emails: Sequence[str], *, batch: int = 1000
) -> None:
    """Publish the exam and enrol ``emails`` through the API, ``batch`` students a request."""
    await educator.call("POST", f"/api/v1/exams/{exam_id}/publish", "POST /exams/{id}/publish")
    for i in range(0, len(emails), batch):
        await educator.call(
            "PUT",
            f"/api/v1/exams/{exam_id}/enrollments",
            "PUT /exams/{id}/enrollments",
            {"students": [{"email": e} for e in emails[i : i + batch]]},
        )


def percentile(sorted_values: Sequence[float], p: float) -> float:
    if not sorted_values:
        return math.nan
    index = min(len(sorted_values) - 1, max(0, math.ceil(p / 100 * len(sorted_values)) - 1))
    return sorted_values[index]


def summary_lines(recorder: Recorder) -> list[str]:
    """p50/p95/p99 per endpoint and the count of every status code, as printed lines."""
    lines = [f"{'endpoint':<44} {'ok':>7} {'p50':>8} {'p95':>8} {'p99':>8} {'max':>8}  ms"]
    endpoints = sorted({e for e, _ in recorder.statuses} | set(recorder.latencies))
    for endpoint in endpoints:
        values = sorted(recorder.latencies.get(endpoint, []))
        lines.append(
            f"{endpoint:<44} {len(values):>7} {percentile(values, 50):>8.1f} "
            f"{percentile(values, 95):>8.1f} {percentile(values, 99):>8.1f} "
            f"{(values[-1] if values else math.nan):>8.1f}"
        )
    errors = Counter[int]()
    for (_, status), n in recorder.statuses.items():
        if status >= 400:
            errors[status] += n
    by_endpoint = {f"{e} {s}": n for (e, s), n in sorted(recorder.statuses.items()) if s >= 400}
    lines.append(f"errors by status: {dict(errors) or 'none'}")
    if by_endpoint:
        lines.append(f"errors by endpoint: {by_endpoint}")
    lines.append(f"transport errors: {dict(recorder.transport_errors) or 'none'}")
    return lines


def process_tree(root_pid: int) -> set[int]:
    """``root_pid`` and all its descendants (Linux /proc)."""
    pending = [root_pid]
    seen: set[int] = set()
    while pending:
        pid = pending.pop()
        if pid in seen:
            continue
        seen.add(pid)
        with contextlib.suppress(OSError):
            for task in os.listdir(f"/proc/{pid}/task"):
                with contextlib.suppress(OSError), open(f"/proc/{pid}/task/{task}/children") as f:
                    pending.extend(int(c) for c in f.read().split())
    return seen


def process_cpu_seconds(root_pid: int, *, exclude: Iterable[int] = ()) -> float:
    """User + system CPU seconds of ``root_pid`` and its descendants, less ``exclude``'s trees."""
    ticks = os.sysconf("SC_CLK_TCK")
    skip: set[int] = set()
    for pid in exclude:
        skip |= process_tree(pid)
    total = 0.0
    for pid in process_tree(root_pid) - skip:
        with contextlib.suppress(OSError), open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / ticks
    return total


def _child_main(
    target: Callable[..., Awaitable[dict[str, Any]]],
    args: tuple[Any, ...],
    ready: Any,
    go: Any,
    results: Any,
) -> None:
    import uvloop

    async def main() -> dict[str, Any]:
        return await target(*args, ready=ready, go=go)

    try:
        results.put(("ok", uvloop.run(main())))
    except BaseException as exc:  # reported to the parent, which fails the run
        results.put(("error", f"{type(exc).__name__}: {exc}"))


def run_in_processes(
    target: Callable[..., Awaitable[dict[str, Any]]],
    shards: Sequence[tuple[Any, ...]],
    *,
    ready_timeout_s: float,
    total_timeout_s: float,
    on_all_ready: Callable[[], float] | None = None,
) -> list[dict[str, Any]]:
    """Run ``target(*shard, ready=, go=)`` in one process per shard.

    Each child sets ``ready`` once its students are signed in, then waits on
    ``go`` (a shared value holding the common monotonic start time, set when
    every child is ready). Returns every child's result; raises if one failed
    or the run overstayed ``total_timeout_s``.
    """
    ctx = multiprocessing.get_context("spawn")
    results = ctx.Queue()
    go = ctx.Value("d", 0.0)
    readies = [ctx.Event() for _ in shards]
    procs = [
        ctx.Process(target=_child_main, args=(target, shard, ready, go, results), daemon=True)
        for shard, ready in zip(shards, readies, strict=True)
    ]
    for proc in procs:
        proc.start()
    collected: list[dict[str, Any]] = []
    try:
        deadline = time.monotonic() + ready_timeout_s
        for ready in readies:
            if not ready.wait(max(0.0, deadline - time.monotonic())):
                # A child that failed during sign-in says why on the results queue.
                with contextlib.suppress(Exception):
                    kind, payload = results.get(timeout=1)
                    if kind == "error":
                        raise RuntimeError(f"a client process failed: {payload}")
                raise RuntimeError("client processes were not ready in time")
        go.value = on_all_ready() if on_all_ready else time.monotonic() + 0.5
        deadline = time.monotonic() + total_timeout_s
        for _ in procs:
            kind, payload = results.get(timeout=max(1.0, deadline - time.monotonic()))
            if kind == "error":
                raise RuntimeError(f"a client process failed: {payload}")
            collected.append(payload)
    finally:
        for proc in procs:
            proc.join(timeout=5)
            if proc.is_alive():
                proc.terminate()
    return collected


async def join_exam(
    clients: Sequence[StudentClient],
    emails: Sequence[str],
    password: str,
    exam_id: str,
    *,
    kind: str | None = None,
) -> list[tuple[str, list[str]]]:
    """Sign each student in and start their attempt: (session id, question ids) each.

    Only questions of ``kind`` are listed when it is given. Four at a time:
    sign-ins are argon2-bound on the server, and a crowd of them only queues.
    """
    gate = asyncio.Semaphore(4)

    async def join(client: StudentClient, email: str) -> tuple[str, list[str]]:
        async with gate:
            await client.sign_in(email, password)
            started = await client.call(
                "POST", f"/api/v1/exams/{exam_id}/sessions", "POST /exams/{id}/sessions"
            )
        questions = started["questions"]
        return started["id"], [q["id"] for q in questions if kind is None or q["kind"] == kind]

    return list(await asyncio.gather(*(join(c, e) for c, e in zip(clients, emails, strict=True))))


async def wait_for_go(ready: Any, go: Any) -> float:
    """Tell the parent this process is ready and wait (bounded) for the common start time."""
    ready.set()
    for _ in range(6000):  # 10 minutes at most
        if go.value:
            break
        await asyncio.sleep(0.1)
    start_at: float = go.value
    if not start_at:
        raise RuntimeError("no start signal from the parent")
    await asyncio.sleep(max(0.0, start_at - time.monotonic()))
    return start_at
