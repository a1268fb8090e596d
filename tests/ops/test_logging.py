"""Log lines: JSON in production, one access line per request with its request id."""

from __future__ import annotations

import io
import json
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
import structlog

from safexam.core.logging import configure_logging
from safexam.core.settings import Settings


def test_json_lines_carry_every_value_readably() -> None:
    out = io.StringIO()
    try:
        configure_logging(Settings(env="test", log_format="json", log_level="INFO"))
        # A logger of its own: the app's cache theirs at first use.
        log: Any = structlog.wrap_logger(
            structlog.PrintLogger(out), wrapper_class=structlog.make_filtering_bound_logger(20)
        )
        when = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
        user = uuid.uuid4()
        structlog.contextvars.bind_contextvars(request_id="abc123")
        try:
            raise ValueError("bad \u00e9 value")
        except ValueError as exc:
            log.warning("saved", user=user, at=when, error=exc, score=1.5, path="/x\n")
        structlog.contextvars.clear_contextvars()
    finally:
        configure_logging(Settings(env="test", log_level="WARNING"))
    line = json.loads(out.getvalue())
    assert line["event"] == "saved" and line["level"] == "warning"
    assert line["request_id"] == "abc123"
    assert line["user"] == str(user)
    assert line["at"] == "2026-11-25T12:00:00Z"
    assert line["error"] == "bad \u00e9 value"
    assert line["score"] == 1.5 and line["path"] == "/x\n"
    assert datetime.fromisoformat(line["timestamp"]).tzinfo is not None


async def test_every_response_has_a_distinct_request_id(client: Any) -> None:
    ids = {(await client.get("/healthz")).headers["x-request-id"] for _ in range(20)}
    assert len(ids) == 20 and all(len(i) == 32 for i in ids)
    echoed = await client.get("/healthz", headers={"X-Request-ID": "trace-42"})
    assert echoed.headers["x-request-id"] == "trace-42"
    forged = await client.get("/healthz", headers={"X-Request-ID": "a b\r\nX: y"})
    assert forged.headers["x-request-id"] != "a b\r\nX: y"


async def test_a_client_gone_before_any_response_is_499_not_a_server_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The access line and the request counter say 499 for a request its client
    abandoned (a proxy's health check giving up, a closed tab); a handler that
    ends without answering a client still there is a 500."""
    from safexam.core import logging as our_logging
    from safexam.core.logging import RequestContextMiddleware
    from safexam.core.metrics import HTTP_REQUESTS, MetricsMiddleware

    # The access lines, read back: the app's own logger was cached at first use.
    out = io.StringIO()
    monkeypatch.setattr(
        our_logging,
        "access_log",
        structlog.wrap_logger(
            structlog.PrintLogger(out),
            processors=[structlog.processors.JSONRenderer()],
            wrapper_class=structlog.BoundLogger,
        ),
    )

    async def waits_then_gives_up(scope: Any, receive: Any, send: Any) -> None:
        # As a streaming handler does: it stops once the client has gone.
        while (await receive())["type"] != "http.disconnect":
            pass

    async def never_answers(scope: Any, receive: Any, send: Any) -> None:
        return None

    def count(route: str, status: str) -> float:
        return float(HTTP_REQUESTS.labels(route, "GET", status)._value.get())

    async def request(app: Any, route: str, messages: list[dict[str, Any]]) -> list[Any]:
        scope = {
            "type": "http",
            "method": "GET",
            "path": route,
            "path_template": route,
            "headers": [],
        }
        pending = list(messages)

        async def receive() -> dict[str, Any]:
            return pending.pop(0)

        sent: list[Any] = []

        async def send(message: Any) -> None:
            sent.append(message)

        out.seek(0)
        out.truncate()
        await RequestContextMiddleware(MetricsMiddleware(app))(scope, receive, send)
        return [json.loads(line) for line in out.getvalue().splitlines()]

    gone = "/test/client-gone/" + uuid.uuid4().hex
    before = count(gone, "499"), count(gone, "500")
    lines = await request(
        waits_then_gives_up,
        gone,
        [{"type": "http.request", "body": b"", "more_body": False}, {"type": "http.disconnect"}],
    )
    assert [line["status"] for line in lines] == [499]
    assert (count(gone, "499"), count(gone, "500")) == (before[0] + 1, before[1])

    broken = "/test/never-answers/" + uuid.uuid4().hex
    lines = await request(never_answers, broken, [])
    assert [line["status"] for line in lines] == [500]
    assert count(broken, "500") == 1
