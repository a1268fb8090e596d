"""The exam world the security tests share, served by a real uvicorn."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from safexam.core.settings import Settings
from tests.live import live_server
from tests.security.world import World, build_world


@pytest.fixture
async def world(
    settings: Settings, db: AsyncSession, sessionmaker: async_sessionmaker[AsyncSession]
) -> AsyncIterator[World]:
    """The exam world on a real uvicorn (real HTTP parsing, real header encoding)."""
    clients: list[httpx.AsyncClient] = []
    async with live_server(settings) as base:

        async def new_client() -> httpx.AsyncClient:
            client = httpx.AsyncClient(base_url=base, timeout=30)
            clients.append(client)
            return client

        try:
            yield await build_world(new_client, db, sessionmaker)
        finally:
            for client in clients:
                await client.aclose()
