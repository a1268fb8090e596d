"""Fixtures for the cross-host tests: a whole deployment on network namespaces.

These tests bring their own PostgreSQL and Redis (on the database host), so
the shared test database and Redis namespace of ``tests/conftest.py`` are
neither created nor cleaned here.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from safexam.core.db import create_engine, create_sessionmaker
from safexam.core.settings import to_asyncpg_url
from tests.hosts.netns import Cluster, cluster, missing

# Short enough that a cut-off worker's job is taken over within seconds; the
# workers beat at a third of it.
STALE_AFTER_SECONDS = 3


@pytest.fixture(autouse=True)
def _clean_state() -> Iterator[None]:
    """Nothing of the shared test database or Redis is used here."""
    yield


@pytest.fixture(scope="module")
def hosts() -> Iterator[Cluster]:
    """Proxy, two API hosts, the database host, and worker host 2's pools running."""
    reason = missing()
    if reason is not None:
        pytest.skip(reason)
    with cluster(
        env={
            "SAFEXAM_JOB_STALE_AFTER_SECONDS": str(STALE_AFTER_SECONDS),
            "SAFEXAM_AUTOSUBMIT_GRACE_SECONDS": "1",
        }
    ) as made:
        made.start_workers(2)
        yield made


@pytest.fixture(scope="module")
async def hosts_db(hosts: Cluster) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """Sessions on the database host's PostgreSQL, from the test's own address."""
    engine = create_engine(to_asyncpg_url(hosts.database_url), pool_size=3)
    yield create_sessionmaker(engine)
    await engine.dispose()
