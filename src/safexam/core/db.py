"""Database engine, session factory and the declarative base.

The naming convention makes every constraint name predictable, so Alembic
migrations can drop or alter them by name.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime, MetaData, event, func
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.util import greenlet_spawn

__all__ = [
    "Base",
    "create_engine",
    "create_sessionmaker",
    "driver_connection",
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


@asynccontextmanager
async def driver_connection(engine: AsyncEngine) -> AsyncIterator[Any]:
    """The asyncpg connection of one pooled connection, for a hot path's single statement.

    The pool (its size, timeout and closed-connection check) is the engine's,
    but without a SQLAlchemy ``Connection`` around it: no events, no
    transaction bookkeeping. The caller runs statements outside a transaction
    (each is its own), so returning the connection needs no rollback.
    """
    pooled = await engine.raw_connection()
    try:
        yield pooled.driver_connection
    finally:
        # Returning it may close a connection the pool discards: run that where
        # SQLAlchemy's async adaptation can await.
        await greenlet_spawn(pooled.close)
