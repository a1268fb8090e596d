"""Per-request dependencies shared by every controller."""

from __future__ import annotations

from collections.abc import AsyncIterator

from litestar.datastructures import State
from litestar.di import NamedDependency
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession

from safexam.core.settings import Settings

__all__ = ["DB", "RedisDep", "SettingsDep", "provide_db", "provide_redis", "provide_settings"]


async def provide_db(state: State) -> AsyncIterator[AsyncSession]:
    """A database session per request; services commit, anything uncommitted is rolled back."""
    async with state.sessionmaker() as session:
        yield session


def provide_redis(state: State) -> Redis:
    redis: Redis = state.redis
    return redis


def provide_settings(state: State) -> Settings:
    settings: Settings = state.settings
    return settings


# Explicitly named dependencies (Litestar 3 drops inferred ones). Handlers write
# ``db: DB`` and the name must match the key registered in ``create_app``.
DB = NamedDependency[AsyncSession]
RedisDep = NamedDependency[Redis]
SettingsDep = NamedDependency[Settings]
