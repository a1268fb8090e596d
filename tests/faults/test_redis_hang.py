"""A Redis that hangs (stopped with SIGSTOP: connections open, no answer).

A refused connection fails at once; a hung one would make every request of a
signed-in user wait for the socket timeout (5 s). The session read is bounded
(``SessionStore.read_timeout``): a session this replica saw recently is
honoured from memory within a fraction of a second, the next reads skip Redis
for a while, and a session it has never seen is a prompt 503.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable
from typing import Any, TypeVar

import msgspec
import pytest
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy.ext.asyncio import AsyncSession

from safexam.app import create_app
from safexam.core.redis import SessionStore, create_redis
from safexam.core.settings import Settings
from tests.fault_servers import RedisServer
from tests.faults.conftest import browser
from tests.helpers import login, make_user

T = TypeVar("T")


async def timed(call: Awaitable[T]) -> tuple[T, float]:
    started = time.monotonic()
    result = await call
    return result, time.monotonic() - started


async def test_a_hung_redis_costs_a_session_read_a_fraction_of_a_second(
    private_redis: RedisServer,
) -> None:
    redis = create_redis(private_redis.url)
    store = SessionStore(redis, namespace="hang", read_timeout=0.3, pause_seconds=2.0)
    try:
        await store.set("known", b"signed-in", expires_in=600)
        assert await store.get("known", renew_for=600) == b"signed-in"
        private_redis.freeze()
        try:
            value, first = await timed(store.get("known", renew_for=600))
            assert value == b"signed-in" and first < 1.0, first
            # Redis is not asked again for a while: the next reads answer at once.
            for _ in range(20):
                value, again = await timed(store.get("known", renew_for=600))
                assert value == b"signed-in" and again < 0.05, again
            # A session this process never saw: asked for, within the bound, then a 503.
            started = time.monotonic()
            with pytest.raises(RedisTimeoutError):
                await store.get("unknown", renew_for=600)
            assert time.monotonic() - started < 1.0
        finally:
            private_redis.thaw()
        await asyncio.sleep(2.1)
        # Back: Redis answers again, and a session deleted there is refused at once.
        await redis.delete("hang:known")
        assert await store.get("known", renew_for=600) is None
    finally:
        await redis.aclose()


async def test_signed_in_requests_stay_fast_while_redis_hangs(
    settings: Settings, private_redis: RedisServer, db: AsyncSession
) -> None:
    student = await make_user(db, "student")
    app = create_app(msgspec.structs.replace(settings, redis_url=private_redis.url))
    async with browser(app) as client:
        await login(client, student.email)
        private_redis.freeze()
        try:
            timings: list[float] = []
            for _ in range(5):
                response: Any
                response, elapsed = await timed(client.get("/api/v1/auth/me"))
                assert response.status_code == 200, response.text
                timings.append(elapsed)
            assert max(timings) < 1.0, timings
            assert sum(timings[1:]) < 0.5, timings
        finally:
            private_redis.thaw()
