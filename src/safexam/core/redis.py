"""Redis clients. One URL form for TCP (``redis://``) and unix sockets (``unix://``)."""

from __future__ import annotations

from redis.asyncio import BlockingConnectionPool, Redis

__all__ = ["create_redis", "incr_fixed_window"]


def create_redis(url: str, *, max_connections: int = 256) -> Redis:
    """A client whose pool waits for a free connection instead of failing.

    The default pool raises once ``max_connections`` requests are in flight,
    which turned a burst of autosaves into 500s; waiting (up to 5 s) turns it
    into latency, which the client can see and the bench measures.
    """
    pool = BlockingConnectionPool.from_url(
        url,
        max_connections=max_connections,
        timeout=5,
        socket_connect_timeout=2,
        socket_timeout=5,
        health_check_interval=30,
    )
    return Redis(connection_pool=pool)


async def incr_fixed_window(redis: Redis, key: str, window_seconds: int) -> tuple[int, int]:
    """Count one event in a fixed window starting at the first event; returns (count, ttl).

    ``SET NX EX`` then ``INCR`` (which keeps the TTL) rather than ``EXPIRE NX``:
    the embedded Redis of ``make run`` is 6.2, which has no ``EXPIRE NX``.
    """
    async with redis.pipeline(transaction=True) as pipe:
        pipe.set(key, 0, ex=window_seconds, nx=True)
        pipe.incr(key)
        pipe.ttl(key)
        _, count, ttl = await pipe.execute()
    return int(count), int(ttl)
