"""Log lines: JSON in production, one access line per request with its request id."""

from __future__ import annotations

import io
import json
import uuid
from datetime import UTC, datetime
from typing import Any

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
