"""Migrations go up, down and up again on an empty database, and match the models.

Each test uses a database of its own on the test server, so it never disturbs
the shared test database the other tests run against.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import Connection, make_url

from safexam.core.db import create_engine
from safexam.core.migrate import alembic_config, downgrade, upgrade
from safexam.models import Base

if TYPE_CHECKING:
    from tests.helpers import ServiceUrls


async def _admin(server_url: str, sql: str) -> None:
    engine = create_engine(server_url, pool_size=1)
    try:
        async with engine.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text(sql))
    finally:
        await engine.dispose()


@pytest.fixture
async def empty_database(services: ServiceUrls) -> AsyncIterator[str]:
    name = f"safexam_migrations_{secrets.token_hex(4)}"
    await _admin(services.server_url, f'CREATE DATABASE "{name}"')
    try:
        yield make_url(services.server_url).set(database=name).render_as_string(hide_password=False)
    finally:
        await _admin(services.server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def _query(url: str, sql: str) -> list[Any]:
    engine = create_engine(url, pool_size=1)
    try:
        async with engine.connect() as conn:
            return list((await conn.execute(text(sql))).scalars())
    finally:
        await engine.dispose()


# Alembic's env.py runs its own event loop, so migrations run in a worker thread.
async def _upgrade(url: str, revision: str = "head") -> None:
    await asyncio.to_thread(upgrade, url, revision)


async def _downgrade(url: str, revision: str = "base") -> None:
    await asyncio.to_thread(downgrade, url, revision)


_TABLES = (
    "SELECT table_name FROM information_schema.tables"
    " WHERE table_schema = 'public' AND table_name <> 'alembic_version' ORDER BY 1"
)
# Enum types, functions and sequences a downgrade must not leave behind either.
_LEFTOVERS = (
    "SELECT 'type ' || typname FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace"
    " WHERE n.nspname = 'public' AND t.typtype = 'e'"
    " UNION ALL SELECT 'sequence ' || sequence_name FROM information_schema.sequences"
    " WHERE sequence_schema = 'public'"
    " UNION ALL SELECT 'function ' || routine_name FROM information_schema.routines"
    " WHERE routine_schema = 'public'"
)


async def test_upgrade_downgrade_upgrade(empty_database: str) -> None:
    expected = sorted(table.name for table in Base.metadata.sorted_tables)
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()

    await _upgrade(empty_database)
    assert await _query(empty_database, _TABLES) == expected
    assert await _query(empty_database, "SELECT version_num FROM alembic_version") == [head]

    await _downgrade(empty_database)
    assert await _query(empty_database, _TABLES) == []
    assert await _query(empty_database, _LEFTOVERS) == []
    assert await _query(empty_database, "SELECT version_num FROM alembic_version") == []

    await _upgrade(empty_database)
    assert await _query(empty_database, _TABLES) == expected
    assert await _query(empty_database, "SELECT version_num FROM alembic_version") == [head]


async def test_upgrade_is_idempotent(empty_database: str) -> None:
    await _upgrade(empty_database)
    await _upgrade(empty_database)
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert await _query(empty_database, "SELECT version_num FROM alembic_version") == [head]


async def test_migrated_schema_matches_the_models(empty_database: str) -> None:
    """A model changed without its migration (or the reverse) fails here."""
    await _upgrade(empty_database)

    def diff(connection: Connection) -> list[Any]:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "compare_server_default": True}
        )
        return list(compare_metadata(context, Base.metadata))

    engine = create_engine(empty_database, pool_size=1)
    try:
        async with engine.connect() as conn:
            differences = await conn.run_sync(diff)
    finally:
        await engine.dispose()
    assert differences == [], "models and migrations differ:\n" + "\n".join(
        repr(d) for d in differences
    )
