"""Failed-login counters in Redis, shared by every API replica.

Three fixed windows: per (email, address) pair, per address (password
spraying) and per email over all addresses (a distributed guess). A correct
password clears only the pair it came from, so a user signing in from their
own machine never resets the count an attacker built up elsewhere.

The address window never refuses a correct password: a classroom behind one
NAT address starts an exam with dozens of typos in a minute, and one pupil
guessing other emails must not lock the room out. Past that window a wrong
password is answered 429 instead of 401, while the pair and email windows
still bound how often any one account can be guessed.
"""

from __future__ import annotations

import hashlib

from redis.asyncio import Redis

from safexam.core.errors import RateLimited
from safexam.core.redis import incr_fixed_window
from safexam.core.settings import Settings

__all__ = ["LoginLimiter"]


def _h(value: str) -> str:
    # Hash emails so Redis never holds them in clear text.
    return hashlib.sha256(value.encode()).hexdigest()[:32]


class LoginLimiter:
    def __init__(self, redis: Redis, settings: Settings) -> None:
        self.redis = redis
        self.window = settings.login_failure_window_seconds
        ns = settings.redis_namespace
        self._limits = {
            "pair": settings.login_max_failures_per_email,
            "ip": settings.login_max_failures_per_ip,
            "email": settings.login_max_failures_per_email * 10,
        }
        self._prefix = f"{ns}:loginfail"

    def _keys(self, email: str, ip: str) -> dict[str, str]:
        return {
            "pair": f"{self._prefix}:pair:{_h(email)}:{ip}",
            "ip": f"{self._prefix}:ip:{ip}",
            "email": f"{self._prefix}:email:{_h(email)}",
        }

    async def check(self, email: str, ip: str) -> RateLimited | None:
        """Raise 429 with Retry-After if the pair's or the email's window is exhausted.

        An exhausted address window is returned, not raised: the caller refuses
        with it only when the password turns out wrong.
        """
        keys = self._keys(email, ip)
        async with self.redis.pipeline(transaction=False) as pipe:
            for key in keys.values():
                pipe.get(key)
                pipe.ttl(key)
            replies = await pipe.execute()
        address: RateLimited | None = None
        for index, (name, _key) in enumerate(keys.items()):
            count = int(replies[index * 2] or 0)
            ttl = int(replies[index * 2 + 1])
            if count >= self._limits[name]:
                limited = RateLimited(
                    "Too many failed sign-in attempts; try again later",
                    retry_after=ttl if ttl > 0 else self.window,
                )
                if name != "ip":
                    raise limited
                address = limited
        return address

    async def record_failure(self, email: str, ip: str) -> None:
        # The window stays fixed from the first failure instead of sliding forever.
        for key in self._keys(email, ip).values():
            await incr_fixed_window(self.redis, key, self.window)

    async def record_success(self, email: str, ip: str) -> None:
        await self.redis.delete(self._keys(email, ip)["pair"])
