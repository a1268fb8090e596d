"""Redis clients. One URL form for TCP (``redis://``) and unix sockets (``unix://``)."""

from __future__ import annotations

from redis.asyncio import Redis

__all__ = ["create_redis"]


def create_redis(url: str) -> Redis:
    return Redis.from_url(url, socket_connect_timeout=2, socket_timeout=5, health_check_interval=30)
