"""Operators' endpoints for async work: queue stats and Prometheus metrics."""

from __future__ import annotations

from typing import Any

from litestar import Controller, MediaType, Response, get

from safexam.auth.guards import admin_only
from safexam.core.deps import DB, RedisDep, SettingsDep
from safexam.ops.metrics import render_metrics
from safexam.ops.queues import dead_jobs, job_counts, queue_stats, recent_workers

__all__ = ["MetricsController", "QueuesController"]


class QueuesController(Controller):
    path = "/ops"
    tags = ["ops"]

    @get("/queues", guards=[admin_only])
    async def queues(self, db: DB, redis: RedisDep, settings: SettingsDep) -> dict[str, Any]:
        """Per queue: depth, delayed, in flight, oldest age, dead letters; workers; jobs."""
        broker, stats = await queue_stats(settings, redis)
        return {
            "broker": broker,
            "queues": [
                {
                    "name": s.name,
                    "depth": s.depth,
                    "delayed": s.delayed,
                    "in_flight": s.in_flight,
                    "oldest_age_seconds": s.oldest_age_seconds,
                    "dead_letters": s.dead_letters,
                }
                for s in stats
            ],
            "workers": await recent_workers(settings, redis),
            "jobs": await job_counts(db),
            "failed_jobs": await dead_jobs(db),
        }


class MetricsController(Controller):
    tags = ["ops"]

    @get("/metrics", include_in_schema=False)
    async def metrics(self, db: DB, redis: RedisDep, settings: SettingsDep) -> Response[bytes]:
        """Prometheus exposition (scrape from the internal network only)."""
        try:
            _, stats = await queue_stats(settings, redis)
        except Exception:
            stats = []
        return Response(
            await render_metrics(db, stats),
            media_type=MediaType.TEXT,
            headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"},
        )
