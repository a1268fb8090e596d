"""Redis clients. One URL form for TCP (``redis://``) and unix sockets (``unix://``).

Redis holds the server-side sessions, so production runs it with persistence
(``appendonly yes``): a restart then keeps every signed-in session. Answers,
scores and jobs live in PostgreSQL and do not depend on it.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from datetime import timedelta
from typing import cast

import structlog
from litestar.stores.redis import RedisStore
from litestar.types import Empty, EmptyType
from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

__all__ = ["SessionStore", "create_redis", "incr_fixed_window"]

log = structlog.get_logger(__name__)


def create_redis(url: str, *, max_connections: int = 256) -> Redis:
    """A client whose pool waits for a free connection instead of failing.

    The default pool raises once ``max_connections`` requests are in flight,
    which turned a burst of autosaves into 500s; waiting (up to 5 s) turns it
    into latency, which the client can see and the bench measures.

    After a Redis restart every pooled connection is dead; one immediate retry
    on a connection error (on a fresh connection) lets the first command on
    each succeed instead of failing. Timeouts are not retried: that would
    only double the wait.
    """
    pool = BlockingConnectionPool.from_url(
        url,
        max_connections=max_connections,
        timeout=5,
        socket_connect_timeout=2,
        socket_timeout=5,
        health_check_interval=30,
        retry=Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,)),
    )
    return Redis(connection_pool=pool)


class SessionStore(RedisStore):
    """The Redis store of server-side sessions, riding out a short Redis outage.

    While Redis cannot be reached, a session this process read from (or wrote
    to) Redis in the last ``fallback_seconds`` is still honoured from memory,
    so students keep autosaving (answers go to PostgreSQL) through a Redis
    restart. Why this stays sound:

    - the copy is used only when Redis does not answer, never when it answers
      "no such session": a session signed out or expired while Redis is up is
      refused at once, and its copy dropped;
    - a copy is honoured at most ``fallback_seconds`` after Redis last
      confirmed it, so a sign-out done on another replica is honoured here for
      at most that long, and only during an outage;
    - writes (sign-in, sign-out, any change to a session) still need Redis
      and fail with a 503 rather than being acknowledged by one replica only;
      a sign-out drops this replica's copy even then;
    - the absolute session lifetime is checked on the session's own data, so
      it holds whichever copy is read;
    - memory is bounded: at most ``fallback_size`` sessions, least recently
      used first out.

    A Redis that hangs (a full disk, a stopped process, a partitioned
    network) is worse than one that refuses: every request would wait for the
    socket timeout. A read is therefore given ``read_timeout`` seconds, and
    after a failure this process stops asking Redis for ``pause_seconds`` for
    any session it holds a copy of; a session it has no copy of is still
    asked for, within the same bound, since the only other answer is a 503.
    """

    def __init__(
        self,
        redis: Redis,
        namespace: str | EmptyType | None = Empty,
        handle_client_shutdown: bool = False,
        *,
        fallback_seconds: float = 120.0,
        fallback_size: int = 20_000,
        read_timeout: float = 0.5,
        pause_seconds: float = 3.0,
    ) -> None:
        super().__init__(redis, namespace=namespace, handle_client_shutdown=handle_client_shutdown)
        self.fallback_seconds = fallback_seconds
        self.fallback_size = fallback_size
        self.read_timeout = read_timeout
        self.pause_seconds = pause_seconds
        self._confirmed: OrderedDict[str, tuple[bytes, float]] = OrderedDict()
        self._paused_until = 0.0

    def with_namespace(self, namespace: str) -> SessionStore:
        return type(self)(
            redis=self._redis,
            namespace=f"{self.namespace}_{namespace}" if self.namespace else namespace,
            handle_client_shutdown=self.handle_client_shutdown,
            fallback_seconds=self.fallback_seconds,
            fallback_size=self.fallback_size,
            read_timeout=self.read_timeout,
            pause_seconds=self.pause_seconds,
        )

    def _remember(self, key: str, value: bytes) -> None:
        self._confirmed[key] = (value, time.monotonic())
        self._confirmed.move_to_end(key)
        while len(self._confirmed) > self.fallback_size:
            self._confirmed.popitem(last=False)

    def _copy_of(self, key: str) -> bytes | None:
        copy = self._confirmed.get(key)
        if copy is None or time.monotonic() - copy[1] > self.fallback_seconds:
            return None
        return copy[0]

    async def get(self, key: str, renew_for: int | timedelta | None = None) -> bytes | None:
        if time.monotonic() < self._paused_until:
            copy = self._copy_of(key)
            if copy is not None:
                return copy
        try:
            async with asyncio.timeout(self.read_timeout):
                data = await self._get(key, renew_for)
        except (RedisConnectionError, RedisTimeoutError, TimeoutError) as exc:
            self._paused_until = time.monotonic() + self.pause_seconds
            copy = self._copy_of(key)
            if copy is None:
                if isinstance(exc, TimeoutError):
                    # The error shape maps Redis's own timeout to 503 redis_unavailable.
                    raise RedisTimeoutError("Redis did not answer in time") from exc
                raise
            log.warning("session_from_memory", error=f"{type(exc).__name__}: {exc}"[:200])
            return copy
        if data is None:
            self._confirmed.pop(key, None)
        else:
            self._remember(key, data)
        return data

    async def _get(self, key: str, renew_for: int | timedelta | None) -> bytes | None:
        # GETEX (Redis 6.2+) reads and renews in one command, where the parent
        # class runs a Lua script: every request of a signed-in user reads its
        # session, and the script cost several times the command on both sides.
        # Sessions are always stored with an expiry, so renewing never adds one.
        if not renew_for:
            return cast("bytes | None", await self._redis.get(self._make_key(key)))
        seconds = int(renew_for.total_seconds()) if isinstance(renew_for, timedelta) else renew_for
        return cast("bytes | None", await self._redis.getex(self._make_key(key), ex=seconds))

    async def set(
        self, key: str, value: str | bytes, expires_in: int | timedelta | None = None
    ) -> None:
        await super().set(key, value, expires_in)
        self._remember(key, value.encode("utf-8") if isinstance(value, str) else value)

    async def delete(self, key: str) -> None:
        self._confirmed.pop(key, None)
        await super().delete(key)

    async def delete_all(self) -> None:
        self._confirmed.clear()
        await super().delete_all()


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
