"""The operators' view of async work: queues on the broker, workers, jobs in the ledger."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import msgspec
from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from safexam.core.audit import record_audit
from safexam.core.broker import QUEUES, current_broker, is_rabbitmq
from safexam.core.errors import Unprocessable
from safexam.core.redis import create_redis
from safexam.core.settings import Settings
from safexam.jobs.kinds import JOB_KINDS
from safexam.jobs.models import Job
from safexam.jobs.service import requeue_job, requeue_jobs_of_kind

__all__ = [
    "THROUGHPUT_WINDOW_SECONDS",
    "QueueStats",
    "dead_jobs",
    "job_counts",
    "queue_stats",
    "queues_overview",
    "readiness",
    "recent_workers",
    "retry_dead_jobs",
    "retry_one_job",
    "throughput",
]

#: A worker that has not refreshed its presence for this long is not listed.
WORKER_SEEN_SECONDS = 30
#: Throughput is the jobs finished over this window, per minute.
THROUGHPUT_WINDOW_SECONDS = 300
#: As ``/readyz``: a dependency that does not answer within this is not ready.
PROBE_TIMEOUT_SECONDS = 3.0


class QueueStats(msgspec.Struct):
    name: str
    depth: int | None
    delayed: int | None
    in_flight: int | None
    oldest_age_seconds: float | None
    dead_letters: int | None


async def _redis_queue(client: Redis, namespace: str, queue: str) -> QueueStats:
    key = f"{namespace}:{queue}"
    pipe = client.pipeline(transaction=False)
    pipe.llen(key)
    pipe.hlen(f"{key}.msgs")
    pipe.hlen(f"{key}.DQ.msgs")
    pipe.zcard(f"{key}.XQ")
    pipe.lindex(key, 0)
    depth, stored, delayed, dead, head = await pipe.execute()
    oldest: float | None = None
    if head is not None:
        raw = await client.hget(f"{key}.msgs", head)
        if raw is not None:
            try:
                stamp = msgspec.json.decode(raw).get("message_timestamp")
                oldest = max(0.0, time.time() - stamp / 1000) if stamp else None
            except msgspec.DecodeError:
                oldest = None
    return QueueStats(
        name=queue,
        depth=int(depth),
        delayed=int(delayed),
        in_flight=max(0, int(stored) - int(depth)),
        oldest_age_seconds=round(oldest, 3) if oldest is not None else None,
        dead_letters=int(dead),
    )


async def queue_stats(settings: Settings, redis: Redis) -> tuple[str, list[QueueStats]]:
    """Per queue: waiting, delayed, in flight, age of the oldest waiting message, dead letters."""
    url = settings.effective_broker_url
    if is_rabbitmq(url):
        broker: Any = current_broker()
        if broker is None:
            return "rabbitmq", []

        def counts() -> list[QueueStats]:
            stats = []
            for queue in QUEUES:
                depth, delayed, dead = broker.get_queue_message_counts(queue)
                stats.append(QueueStats(queue, depth, delayed, None, None, dead))
            return stats

        return "rabbitmq", await asyncio.to_thread(counts)
    client = redis if url == settings.redis_url else create_redis(url)
    try:
        namespace = f"{settings.redis_namespace}:dramatiq"
        return "redis", [await _redis_queue(client, namespace, q) for q in QUEUES]
    finally:
        if client is not redis:
            await client.aclose()


async def recent_workers(settings: Settings, redis: Redis) -> list[dict[str, Any]]:
    """Worker processes that reported in the last :data:`WORKER_SEEN_SECONDS`."""
    key = f"{settings.redis_namespace}:workers"
    now = time.time()
    workers = []
    stale = []
    for name, raw in (await redis.hgetall(key)).items():
        record = msgspec.json.decode(raw)
        age = now - float(record.get("seen_at", 0))
        label = name.decode() if isinstance(name, bytes) else str(name)
        if age > 10 * WORKER_SEEN_SECONDS:
            stale.append(label)
        if age <= WORKER_SEEN_SECONDS:
            workers.append(
                {
                    "name": label,
                    "queues": record.get("queues", []),
                    "pid": record.get("pid"),
                    "seen_seconds_ago": round(age, 1),
                }
            )
    if stale:
        await redis.hdel(key, *stale)
    return sorted(workers, key=lambda w: w["name"])


async def throughput(db: AsyncSession, window_seconds: int = 300) -> dict[str, float]:
    """Jobs finished per minute, per queue, over the last ``window_seconds`` (from the ledger,
    so every worker on every host counts)."""
    rows = (
        await db.execute(
            text(
                "SELECT queue, count(*) AS n FROM jobs"
                " WHERE status IN ('succeeded', 'failed', 'dead')"
                " AND finished_at > now() - make_interval(secs => :window)"
                " GROUP BY queue"
            ),
            {"window": window_seconds},
        )
    ).all()
    return {r.queue: round(int(r.n) * 60 / window_seconds, 2) for r in rows}


async def readiness(db: AsyncSession, redis: Redis) -> dict[str, str]:
    """The checks of ``/readyz``, through this request's own connections."""

    async def check_db() -> None:
        await db.execute(text("SELECT 1"))

    async def check_redis() -> None:
        await redis.ping()

    checks = {}
    for name, probe in (("database", check_db), ("redis", check_redis)):
        try:
            await asyncio.wait_for(probe(), timeout=PROBE_TIMEOUT_SECONDS)
        except Exception as exc:
            checks[name] = f"error: {type(exc).__name__}"
        else:
            checks[name] = "ok"
    return checks


async def queues_overview(db: AsyncSession, redis: Redis, settings: Settings) -> dict[str, Any]:
    """Everything the queues page and ``GET /api/v1/ops/queues`` show, read now."""
    broker, stats = await queue_stats(settings, redis)
    rates = await throughput(db, THROUGHPUT_WINDOW_SECONDS)
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
                "throughput_per_minute": rates.get(s.name, 0.0),
            }
            for s in stats
        ],
        "throughput_window_seconds": THROUGHPUT_WINDOW_SECONDS,
        "workers": await recent_workers(settings, redis),
        "jobs": await job_counts(db),
        "failed_jobs": await dead_jobs(db),
        "readiness": await readiness(db, redis),
    }


async def retry_one_job(db: AsyncSession, job_id: uuid.UUID, actor_id: uuid.UUID) -> Job:
    """An operator's retry of one failed or dead job, on the audit trail. Commits."""
    # Added first: requeue_job commits it with the change, or nothing commits.
    record_audit(db, actor_id=actor_id, action="job.retry", subject_type="job", subject_id=job_id)
    return await requeue_job(db, job_id)


async def retry_dead_jobs(db: AsyncSession, kind: str, actor_id: uuid.UUID) -> tuple[int, int]:
    """Retry every failed or dead job of ``kind``; (retried, left as they were). Commits."""
    if kind not in JOB_KINDS:
        raise Unprocessable(f"kind must be one of {', '.join(sorted(JOB_KINDS))}", field="kind")
    requeued, skipped = await requeue_jobs_of_kind(db, kind)
    record_audit(
        db,
        actor_id=actor_id,
        action="job.retry_all",
        subject_type="job",
        details={
            "kind": kind,
            "retried": len(requeued),
            "skipped": skipped,
            "job_ids": [str(job.id) for job in requeued][:1000],
        },
    )
    await db.commit()
    return len(requeued), skipped


async def job_counts(db: AsyncSession) -> list[dict[str, Any]]:
    rows = (
        await db.execute(
            text("SELECT kind, status, count(*) AS n FROM jobs GROUP BY kind, status ORDER BY 1, 2")
        )
    ).all()
    return [{"kind": r.kind, "status": r.status, "count": int(r.n)} for r in rows]


async def dead_jobs(db: AsyncSession, limit: int = 50) -> list[dict[str, Any]]:
    rows = (
        await db.execute(
            text(
                "SELECT id, kind, queue, status, attempts, error, finished_at FROM jobs"
                " WHERE status IN ('dead', 'failed') ORDER BY finished_at DESC NULLS LAST"
                " LIMIT :limit"
            ),
            {"limit": limit},
        )
    ).all()
    return [
        {
            "id": str(r.id),
            "kind": r.kind,
            "queue": r.queue,
            "status": r.status,
            "attempts": r.attempts,
            "error": r.error,
            "finished_at": r.finished_at.isoformat() if r.finished_at else None,
        }
        for r in rows
    ]
