"""Database engine, session factory and the declarative base.

The naming convention makes every constraint name predictable, so Alembic
migrations can drop or alter them by name.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy import DateTime, MetaData, event, func
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = [
    "Base",
    "PoolExhausted",
    "StatementPool",
    "create_engine",
    "create_sessionmaker",
    "new_id",
    "utcnow",
]

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Timestamped:
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False
    )


def new_id() -> uuid.UUID:
    return uuid.uuid4()


def utcnow() -> datetime:
    return datetime.now(UTC)


def _discard_closed_connection(
    dbapi_connection: Any, connection_record: Any, connection_proxy: Any
) -> None:
    # asyncpg marks a connection closed as soon as the server drops it (a
    # restart, a failover): checking that flag costs no round trip, and makes
    # the pool open a fresh connection instead of failing the request with it.
    driver = connection_record.driver_connection
    if driver is not None and driver.is_closed():
        raise DisconnectionError("connection closed by the server")


def create_engine(
    url: str,
    *,
    pool_size: int = 20,
    echo: bool = False,
    connect_timeout: float = 5,
    command_timeout: float = 30,
    pool_timeout: float = 10,
) -> AsyncEngine:
    """The API's engine: bounded waits everywhere, recovery without a restart.

    An unreachable or hung PostgreSQL costs a request at most
    ``connect_timeout`` (opening a connection) or ``command_timeout`` (one
    statement), and a saturated pool ``pool_timeout``; each then fails with an
    error the API answers as 503 (see ``core.errors``). A connection the
    server closed is replaced at checkout, and SQLAlchemy invalidates the
    whole pool at the first disconnect error, so once PostgreSQL is back the
    next requests succeed on fresh connections.
    """
    # No pre-ping: it costs a round trip on every checkout, on the autosave hot
    # path too; the closed-connection check at checkout catches a restarted
    # server for free, and recycling bounds how stale a pooled connection can get.
    # No overflow: under a burst of autosaves, overflow connections were opened
    # and closed for single requests (connect, TLS probe, type codecs, statements
    # prepared again), which cost more than waiting for a pooled connection.
    engine = create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=0,
        pool_recycle=1800,
        pool_timeout=pool_timeout,
        connect_args={"timeout": connect_timeout, "command_timeout": command_timeout},
        echo=echo,
    )
    event.listen(engine.sync_engine.pool, "checkout", _discard_closed_connection)
    return engine


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    # expire_on_commit=False: handlers build responses from objects after commit.
    return async_sessionmaker(engine, expire_on_commit=False)


async def session_scope(maker: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    async with maker() as session:
        yield session


class PoolExhausted(Exception):
    """No connection of a :class:`StatementPool` came free within its timeout."""


async def _keep_session_state(connection: Any) -> None:
    # Statements of a StatementPool run outside transactions and change no
    # session state, so the reset asyncpg runs at every release (RESET ALL,
    # UNLISTEN, advisory unlocks: a round trip) has nothing to undo.
    return None


class StatementPool:
    """asyncpg's own pool, for hot single statements run outside a transaction.

    The autosave is one statement; checking a connection out of SQLAlchemy's
    pool and back in, through its greenlet adaptation, cost more CPU than
    sending the statement and reading its row (cProfile, bench/README.md).
    asyncpg's pool holds the same kind of connection for a fraction of that.
    Its connections are opened on demand (none at start, so the API starts
    while PostgreSQL is down), a connection the server closed is replaced at
    the next checkout, and every wait is bounded: ``connect_timeout`` to open
    one, ``command_timeout`` per statement and ``timeout`` for a free one
    (:class:`PoolExhausted`, answered as 503 ``database_busy``).
    """

    def __init__(
        self,
        dsn: str,
        *,
        size: int = 8,
        timeout: float = 10,
        connect_timeout: float = 5,
        command_timeout: float = 30,
    ) -> None:
        self.dsn = dsn
        self.size = size
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self.command_timeout = command_timeout
        self._pool: asyncpg.Pool | None = None
        self._opening = asyncio.Lock()

    @classmethod
    def for_url(cls, url: str, **options: Any) -> StatementPool:
        """A pool on the database of a SQLAlchemy URL (``postgresql+asyncpg://...``)."""
        dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
        return cls(dsn, **options)

    async def _open(self) -> asyncpg.Pool:
        async with self._opening:
            if self._pool is None:
                self._pool = await asyncpg.create_pool(
                    self.dsn,
                    min_size=0,
                    max_size=self.size,
                    timeout=self.connect_timeout,
                    command_timeout=self.command_timeout,
                    reset=_keep_session_state,
                )
            return self._pool

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[Any]:
        """One connection of the pool, for statements that are each their own transaction."""
        pool = self._pool or await self._open()
        try:
            connection = await pool.acquire(timeout=self.timeout)
        except TimeoutError:
            raise PoolExhausted(
                f"no database connection came free within {self.timeout} s"
            ) from None
        try:
            yield connection
        finally:
            await pool.release(connection)

    async def close(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()
