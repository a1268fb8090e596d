"""Operators' endpoints for async work: queue stats, their live stream, retries, metrics."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator
from typing import Annotated, Any

import msgspec
from litestar import Controller, MediaType, Request, Response, get, post
from litestar.datastructures import State
from litestar.params import JSONBody
from litestar.response import ServerSentEvent, ServerSentEventMessage

from safexam.auth.guards import CurrentUser, operator_only
from safexam.core.deps import DB, RedisDep, SettingsDep
from safexam.core.errors import unavailable_dependency
from safexam.core.openapi import EVENT_STREAM, error_responses
from safexam.core.settings import Settings
from safexam.ops.metrics import check_metrics_access, render_metrics
from safexam.ops.queues import queue_stats, queues_overview, recent_workers, retry_dead_jobs

__all__ = ["MetricsController", "QueuesController", "RetryAllIn", "RetryAllOut"]

#: Seconds between two readings of the queues for the live stream.
SNAPSHOT_SECONDS = 2.0
#: A stream ends after this long (the browser's EventSource reconnects at once),
#: so that a forgotten tab does not read the queues every two seconds forever.
STREAM_SECONDS = 600.0
#: A comment this often keeps proxies from closing a quiet stream.
KEEPALIVE_SECONDS = 15.0


class RetryAllIn(msgspec.Struct, forbid_unknown_fields=True):
    kind: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]


class RetryAllOut(msgspec.Struct):
    kind: str
    #: Jobs sent again.
    retried: int
    #: Jobs left dead because they cannot run now (another regrade of the exam is active).
    skipped: int


async def queue_snapshots(
    state: State,
    settings: Settings,
    *,
    every: float = SNAPSHOT_SECONDS,
    lifetime: float = STREAM_SECONDS,
) -> AsyncGenerator[ServerSentEventMessage, None]:
    """The overview now, then again each time it has changed (read every ``every`` seconds).

    The ledger has no single channel to listen on (each job has its own), so the
    stream reads; it is for admins only, one short database session per reading.
    """
    started = quiet_since = time.monotonic()
    last: bytes | None = None
    sequence = 0
    while time.monotonic() - started < lifetime:
        try:
            async with state.sessionmaker() as db:
                overview = await queues_overview(db, state.redis, settings)
        except Exception as exc:
            if unavailable_dependency(exc) is None:
                raise
            return  # the browser reconnects and gets a snapshot once there is one
        encoded = msgspec.json.encode(overview)
        if encoded != last:
            last = encoded
            sequence += 1
            quiet_since = time.monotonic()
            yield ServerSentEventMessage(data=encoded.decode(), event="queues", id=sequence)
        elif time.monotonic() - quiet_since >= KEEPALIVE_SECONDS:
            quiet_since = time.monotonic()
            yield ServerSentEventMessage(comment="keep-alive")
        await asyncio.sleep(every)


class QueuesController(Controller):
    path = "/ops"
    tags = ["ops"]

    @get("/queues", guards=[operator_only])
    async def queues(self, db: DB, redis: RedisDep, settings: SettingsDep) -> dict[str, Any]:
        """Per queue: depth, delayed, in flight, oldest age, dead letters, throughput;
        workers; jobs by kind and status; failed and dead jobs; readiness."""
        return await queues_overview(db, redis, settings)

    @get("/queues/events", guards=[operator_only], media_type=EVENT_STREAM)
    async def queue_events(self, state: State, settings: SettingsDep) -> ServerSentEvent:
        """SSE: the overview of ``GET /ops/queues`` now, then whenever it changes (read every
        2 s); the stream ends after 10 minutes and the client reconnects."""
        return ServerSentEvent(queue_snapshots(state, settings))

    @post(
        "/jobs/retry",
        guards=[operator_only],
        status_code=202,
        responses=error_responses(422),
    )
    async def retry_all(
        self, data: JSONBody[RetryAllIn], db: DB, principal: CurrentUser
    ) -> RetryAllOut:
        """Run every failed or dead job of one kind again (attempts start over); audited."""
        retried, skipped = await retry_dead_jobs(db, data.kind, principal.id)
        return RetryAllOut(kind=data.kind, retried=retried, skipped=skipped)


class MetricsController(Controller):
    tags = ["ops"]

    @get("/metrics", include_in_schema=False)
    async def metrics(
        self, request: Request[Any, Any, Any], db: DB, redis: RedisDep, settings: SettingsDep
    ) -> Response[bytes]:
        """Prometheus exposition, for a scraper holding ``SAFEXAM_METRICS_TOKEN``.

        The figures (routes, queue depths, dead jobs) tell an outsider how
        the service is doing and when it is weak: in production they are
        served to the token's holder only, and not at all without a token.
        """
        check_metrics_access(settings, request.headers.get("authorization"))
        try:
            _, stats = await queue_stats(settings, redis)
        except Exception:
            stats = []
        try:
            workers: list[dict[str, Any]] | None = await recent_workers(settings, redis)
        except Exception:
            workers = None
        return Response(
            await render_metrics(db, stats, settings=settings, workers=workers),
            media_type=MediaType.TEXT,
            headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"},
        )
