"""Which real errors are an outage (503, retry) and which are bugs (500): ``core.errors``."""

from __future__ import annotations

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from safexam.core.db import create_engine
from safexam.core.errors import unavailable_dependency
from safexam.core.redis import create_redis
from tests.fault_servers import free_port


async def error_of(engine: AsyncEngine, *statements: str) -> BaseException:
    with pytest.raises(Exception) as caught:
        async with engine.connect() as conn:
            for statement in statements:
                await conn.execute(text(statement))
    return caught.value


async def test_database_faults_are_unavailable_and_bugs_are_not(engine: AsyncEngine) -> None:
    nobody = create_engine(f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/x")
    assert unavailable_dependency(await error_of(nobody, "SELECT 1")) == "database_unavailable"
    await nobody.dispose()

    # A statement that waits too long for a lock is a busy database, worth a retry.
    async with engine.connect() as holder:
        await holder.execute(text("LOCK TABLE users IN ACCESS EXCLUSIVE MODE"))
        waited = await error_of(engine, "SET lock_timeout = '50ms'", "SELECT count(*) FROM users")
        await holder.rollback()
    assert unavailable_dependency(waited) == "database_busy"

    # Bugs and bad data stay 500s: a retry would not help.
    assert unavailable_dependency(await error_of(engine, "SELECT * FROM no_such_table")) is None
    assert unavailable_dependency(await error_of(engine, "SELECT 1 / 0")) is None
    duplicate = await error_of(
        engine,
        "CREATE TEMP TABLE t (id int PRIMARY KEY)",
        "INSERT INTO t VALUES (1), (1)",
    )
    assert unavailable_dependency(duplicate) is None
    assert unavailable_dependency(ValueError("bug")) is None
    assert unavailable_dependency(OSError("not from a database driver")) is None


async def test_redis_refusing_connections_is_unavailable() -> None:
    client = create_redis(f"redis://127.0.0.1:{free_port()}/0")
    with pytest.raises(Exception) as caught:
        await client.get("x")
    assert unavailable_dependency(caught.value) == "redis_unavailable"
    await client.aclose()


async def test_raw_driver_mistakes_are_bugs_and_a_lost_connection_is_an_outage(
    engine: AsyncEngine,
) -> None:
    """The raw asyncpg path (autosave): its InterfaceError means both, only one is a 503."""
    dsn = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    raw = await asyncpg.connect(dsn)
    try:
        with pytest.raises(asyncpg.InterfaceError) as wrong_arguments:
            await raw.fetchval("SELECT $1::int + $2::int", 1)
        assert unavailable_dependency(wrong_arguments.value) is None

        pid = await raw.fetchval("SELECT pg_backend_pid()")
        async with engine.connect() as killer:
            await killer.execute(text(f"SELECT pg_terminate_backend({int(pid)})"))
        # Depending on timing asyncpg says "connection was closed", "is
        # closed" or that its protocol is in a bad state: an outage, all.
        for _ in range(2):
            with pytest.raises(Exception) as gone:
                await raw.fetchval("SELECT 1")
            assert unavailable_dependency(gone.value) == "database_unavailable", gone.value
    finally:
        raw.terminate()

    # Through SQLAlchemy, a wrong parameter is still a bug.
    async with engine.connect() as conn:
        with pytest.raises(Exception) as wrapped:
            await conn.execute(text("SELECT CAST(:a AS int)"), {"b": 1})
    assert unavailable_dependency(wrapped.value) is None
