"""Fixtures for fault tests: private servers that a test may stop, hang and restart.

The machine's shared PostgreSQL and Redis are never touched: every fault is
injected into a server this folder started in a temporary directory on a
free port, and stopped at the end.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import text

from safexam.core.db import create_engine
from safexam.core.migrate import upgrade
from safexam.core.settings import to_asyncpg_url
from tests.fault_servers import PostgresCluster, RedisServer, postgres_missing


@pytest.fixture
async def private_postgres() -> AsyncIterator[PostgresCluster]:
    """A migrated database ``safexam`` on a private PostgreSQL 15 cluster."""
    reason = postgres_missing()
    if reason is not None:
        pytest.skip(f"no private PostgreSQL cluster: {reason}")
    cluster = PostgresCluster()
    try:
        await asyncio.to_thread(cluster.start)
        admin = create_engine(to_asyncpg_url(cluster.url()), pool_size=1)
        async with admin.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text("CREATE DATABASE safexam"))
        await admin.dispose()
        # Alembic's environment runs its own event loop: give it a thread.
        await asyncio.to_thread(upgrade, to_asyncpg_url(cluster.url("safexam")))
        yield cluster
    finally:
        await asyncio.to_thread(cluster.close)


@pytest.fixture
def private_redis() -> Iterator[RedisServer]:
    """A private redis-server with an append-only file, as production should run it."""
    server = RedisServer(appendonly=True)
    server.start()
    try:
        yield server
    finally:
        server.close()


def browser(app: Litestar, portal_from: AsyncTestClient[Litestar] | None = None) -> Any:
    """An https test client (Secure cookies come back, as in a browser) sharing one loop."""
    client = AsyncTestClient(app, base_url="https://testserver.local")
    if portal_from is not None:
        client.blocking_portal = portal_from.blocking_portal
    return client
