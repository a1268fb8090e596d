"""Prometheus metrics: HTTP traffic as counted by core, jobs and queues read at scrape time.

Job outcomes and durations are computed from the jobs ledger when scraped,
so every worker process on every host is counted without a multiprocess
registry or a push gateway; queue depths come from the broker the same way.
"""

from __future__ import annotations

import hmac
import os
from datetime import UTC, datetime
from typing import Any

import structlog
from prometheus_client import CollectorRegistry, generate_latest, multiprocess
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from safexam.core.errors import NotAuthenticated, NotFound, unavailable_dependency
from safexam.core.metrics import HTTP_REGISTRY
from safexam.core.settings import Settings
from safexam.ops.capacity import exam_day, judge_prewarm_replicas
from safexam.ops.queues import QueueStats

__all__ = ["check_metrics_access", "render_metrics"]

log = structlog.get_logger(__name__)

JOB_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)


async def _job_families(db: AsyncSession) -> list[object]:
    counts = GaugeMetricFamily(
        "safexam_jobs", "Jobs in the ledger by kind and status", labels=["kind", "status"]
    )
    for kind, status, n in (
        await db.execute(text("SELECT kind, status, count(*) FROM jobs GROUP BY 1, 2"))
    ).all():
        counts.add_metric([kind, status], n)
    bucket_sql = ", ".join(f"count(*) FILTER (WHERE d <= {b})" for b in JOB_BUCKETS)
    durations = HistogramMetricFamily(
        "safexam_job_duration_seconds",
        "Run time of finished jobs (started to finished) by kind and outcome",
        labels=["kind", "outcome"],
    )
    rows = (
        await db.execute(
            text(
                f"""
                SELECT kind, status, count(*), coalesce(sum(d), 0), {bucket_sql}
                  FROM (SELECT kind, status,
                               extract(epoch FROM finished_at - started_at) AS d
                          FROM jobs
                         WHERE status IN ('succeeded', 'failed', 'dead')
                           AND finished_at IS NOT NULL AND started_at IS NOT NULL) AS t
                 GROUP BY kind, status
                """  # noqa: S608 - the bucket bounds are our constants
            )
        )
    ).all()
    for row in rows:
        kind, outcome, total, seconds, *cumulative = row
        buckets = [(str(b), c) for b, c in zip(JOB_BUCKETS, cumulative, strict=True)]
        buckets.append(("+Inf", total))
        durations.add_metric([kind, outcome], buckets, float(seconds))
    return [counts, durations]


async def _exam_day_families(db: AsyncSession, settings: Settings) -> list[object]:
    now = datetime.now(UTC)
    prewarm = GaugeMetricFamily(
        "safexam_judge_prewarm_replicas",
        "Judge replicas wanted for exams with code opening within SAFEXAM_PREWARM_MINUTES",
    )
    prewarm.add_metric(
        [],
        await judge_prewarm_replicas(
            db,
            now=now,
            minutes=settings.prewarm_minutes,
            students_per_judge=settings.prewarm_students_per_judge,
        ),
    )
    day = await exam_day(db, now=now, grace_seconds=settings.autosubmit_grace_seconds)
    open_exams = GaugeMetricFamily("safexam_exams_open", "Published exams open now")
    open_exams.add_metric([], day.open_exams)
    overdue = GaugeMetricFamily(
        "safexam_sessions_overdue", "Sessions still active past their deadline and the grace"
    )
    overdue.add_metric([], day.overdue_sessions)
    lag = GaugeMetricFamily(
        "safexam_autosubmit_lag_seconds",
        "How long past its deadline and the grace the oldest overdue session is",
    )
    lag.add_metric([], day.autosubmit_lag_seconds)
    return [prewarm, open_exams, overdue, lag]


def _queue_families(
    stats: list[QueueStats], workers: list[dict[str, Any]] | None = None
) -> list[object]:
    depth = GaugeMetricFamily("safexam_queue_depth", "Messages waiting", labels=["queue"])
    delayed = GaugeMetricFamily("safexam_queue_delayed", "Delayed messages", labels=["queue"])
    dead = GaugeMetricFamily("safexam_queue_dead_letters", "Dead letters", labels=["queue"])
    oldest = GaugeMetricFamily(
        "safexam_queue_oldest_age_seconds",
        "How long the oldest waiting message has waited (0 when none waits)",
        labels=["queue"],
    )
    for s in stats:
        if s.depth is not None:
            depth.add_metric([s.name], s.depth)
        if s.delayed is not None:
            delayed.add_metric([s.name], s.delayed)
        if s.dead_letters is not None:
            dead.add_metric([s.name], s.dead_letters)
        if s.depth is not None:
            oldest.add_metric([s.name], s.oldest_age_seconds or 0.0)
    families: list[object] = [depth, delayed, dead, oldest]
    if workers is not None:
        processes = GaugeMetricFamily(
            "safexam_workers",
            "Worker processes seen in the last 30 s, by the queue they consume",
            labels=["queue"],
        )
        counts = {s.name: 0 for s in stats}
        for worker in workers:
            for queue in worker.get("queues", []):
                counts[queue] = counts.get(queue, 0) + 1
        for queue, n in sorted(counts.items()):
            processes.add_metric([queue], n)
        families.append(processes)
    return families


class _Snapshot:
    def __init__(self, families: list[object]) -> None:
        self.families = families

    def collect(self) -> list[object]:
        return self.families


def check_metrics_access(settings: Settings, authorization: str | None) -> None:
    """Refuse a scrape without the configured bearer token (404 in production without one)."""
    token = settings.metrics_token or None  # an empty value (compose's default) is none
    if token is None:
        if settings.env == "production":
            raise NotFound("Metrics are off: set SAFEXAM_METRICS_TOKEN and scrape with it")
        return
    scheme, _, given = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip(), token):
        raise NotAuthenticated(
            "Metrics need the bearer token of SAFEXAM_METRICS_TOKEN",
            headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
        )


def _http_registry() -> CollectorRegistry:
    """This process's HTTP counters, or every API process's under ``--workers N``.

    ``safexam serve`` with several workers sets PROMETHEUS_MULTIPROC_DIR: each
    process then writes its counters to files there, and a scrape answered by
    any one of them adds them all up.
    """
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return HTTP_REGISTRY
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return registry


async def render_metrics(
    db: AsyncSession,
    stats: list[QueueStats],
    *,
    settings: Settings | None = None,
    workers: list[dict[str, Any]] | None = None,
) -> bytes:
    """The Prometheus text exposition of HTTP, job, queue and exam-day metrics."""
    try:
        jobs = await _job_families(db)
        if settings is not None:
            jobs += await _exam_day_families(db, settings)
    except Exception as exc:
        if unavailable_dependency(exc) is None:
            raise
        # A PostgreSQL outage is when the HTTP counters matter most (the rise of
        # 503s): the scrape still succeeds, without the job ledger.
        log.warning("metrics_without_jobs", error=f"{type(exc).__name__}: {exc}"[:200])
        jobs = []
    scrape = CollectorRegistry()
    scrape.register(_Snapshot(jobs + _queue_families(stats, workers)))  # type: ignore[arg-type]
    data: bytes = generate_latest(_http_registry()) + generate_latest(scrape)
    return data
