"""Apps built with adjusted settings (tiny expiries, low limits, OIDC issuer)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import msgspec
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from litestar.testing.transport import TestClientTransport

from safexam.app import create_app
from safexam.core.settings import Settings

ClientFactory = Callable[..., Awaitable[AsyncTestClient[Litestar]]]


@pytest.fixture
async def client_with(settings: Settings) -> AsyncIterator[ClientFactory]:
    """``await client_with(session_idle_seconds=1)``: a browser on an app with those settings."""
    clients: list[AsyncTestClient[Litestar]] = []

    async def factory(
        base_url: str = "https://testserver.local", **changes: Any
    ) -> AsyncTestClient[Litestar]:
        app = create_app(msgspec.structs.replace(settings, **changes))
        client = AsyncTestClient(app, base_url=base_url)
        await client.__aenter__()
        clients.append(client)
        return client

    yield factory
    for client in clients:
        await client.__aexit__(None, None, None)


class _AddressTransport(TestClientTransport, httpx.AsyncBaseTransport):  # type: ignore[type-arg]
    """The test transport, but the server sees the request coming from ``address``."""

    def __init__(self, owner: AsyncTestClient[Litestar], address: str) -> None:
        super().__init__(client=owner, raise_server_exceptions=True)
        self.address = address

    def parse_request(self, request: httpx.Request) -> dict[str, Any]:
        scope = super().parse_request(request)
        scope["client"] = (self.address, 40000)
        return scope


def browser(owner: AsyncTestClient[Litestar], address: str = "testclient") -> httpx.AsyncClient:
    """Another browser (own cookie jar, own address) on ``owner``'s running app.

    It runs the app on ``owner``'s event-loop thread: a second AsyncTestClient on
    the same app would start a second loop, and the app's Redis and database
    pools cannot be shared across loops.
    """
    return httpx.AsyncClient(
        transport=_AddressTransport(owner, address), base_url=str(owner.base_url)
    )
