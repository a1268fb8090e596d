"""The operators' view of async work: queues on the broker, workers, jobs in the ledger."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import msgspec
from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from safexam.core.broker import QUEUES, current_broker, is_rabbitmq
from safexam.core.redis import create_redis
from safexam.core.settings import Settings

__all__ = ["QueueStats", "job_counts", "queue_stats", "recent_workers"]

#: A worker that has not refreshed its presence for this long is not listed.
WORKER_SEEN_SECONDS = 30


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
                    "seen_seconds_ago": round(age, 1),
                }
            )
    if stale:
        await redis.hdel(key, *stale)
    return sorted(workers, key=lambda w: w["name"])


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
                "SELECT id, kind, status, attempts, error, finished_at FROM jobs"
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
            "status": r.status,
            "attempts": r.attempts,
            "error": r.error,
            "finished_at": r.finished_at.isoformat() if r.finished_at else None,
        }
        for r in rows
    ]
