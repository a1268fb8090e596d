"""HTTP request metrics, counted by the API process as requests pass.

Only what every request costs lives here (a counter and a latency histogram
by route template); the job and queue figures are read from the ledger and
the broker when ``/metrics`` is scraped (``safexam.ops.metrics``).
"""

from __future__ import annotations

import asyncio
import time

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Receive, Scope, Send
from prometheus_client import CollectorRegistry, Counter, Histogram

from safexam.core.outcome import RequestOutcome

__all__ = ["HTTP_LATENCY", "HTTP_REGISTRY", "HTTP_REQUESTS", "MetricsMiddleware"]

HTTP_REGISTRY = CollectorRegistry()
HTTP_REQUESTS = Counter(
    "safexam_http_requests",
    "HTTP requests by route, method and status",
    ["route", "method", "status"],
    registry=HTTP_REGISTRY,
)
HTTP_LATENCY = Histogram(
    "safexam_http_request_duration_seconds",
    "HTTP request latency by route",
    ["route", "method"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
    registry=HTTP_REGISTRY,
)


class MetricsMiddleware:
    """Count and time every HTTP request by its route template (not its concrete path)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        outcome = RequestOutcome(receive, send)
        try:
            await self.app(scope, outcome.receive, outcome.send)
        except asyncio.CancelledError:
            outcome.cancelled = True
            raise
        finally:
            route = scope.get("path_template") or "unmatched"
            method = scope.get("method", "")
            HTTP_REQUESTS.labels(route, method, str(outcome.status)).inc()
            HTTP_LATENCY.labels(route, method).observe(time.perf_counter() - started)
