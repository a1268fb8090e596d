"""Apps built with adjusted settings (tiny expiries, low limits, OIDC issuer)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import httpx
import msgspec
import pytest
from litestar import Litestar, delete, get, patch, post, put
from litestar.testing import AsyncTestClient
from litestar.testing.transport import TestClientTransport

from safexam.app import create_app
from safexam.auth.guards import (
    CurrentUser,
    Principal,
    admin_only,
    authenticated,
    educator_or_admin,
    ensure_owner,
    student_only,
)
from safexam.auth.passwords import cheap_hashing
from safexam.core.errors import NotFound
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


def guarded_routes() -> list[Any]:
    """Test-only routes built on the shared guards, standing in for domain routes."""

    @get("/test/signed-in", guards=[authenticated])
    async def signed_in_area(principal: CurrentUser) -> dict[str, str]:
        return {"id": str(principal.id), "role": principal.role}

    @get("/test/students", guards=[student_only])
    async def student_area() -> dict[str, str]:
        return {"area": "students"}

    @get("/test/staff", guards=[educator_or_admin])
    async def staff_area() -> dict[str, str]:
        return {"area": "staff"}

    @get("/test/admin", guards=[admin_only])
    async def admin_area() -> dict[str, str]:
        return {"area": "admin"}

    async def owned(owner_id: uuid.UUID, principal: Principal) -> dict[str, str]:
        # The "object" exists for any owner id except the nil UUID; it belongs to owner_id.
        if owner_id == uuid.UUID(int=0):
            raise NotFound("thing not found")
        # The "thing" lives in the principal's own organization.
        ensure_owner(owner_id, principal, "thing", organization_id=principal.organization_id)
        return {"owner_id": str(owner_id)}

    @get("/test/things/{owner_id:uuid}", guards=[authenticated])
    async def read_thing(owner_id: uuid.UUID, principal: CurrentUser) -> dict[str, str]:
        return await owned(owner_id, principal)

    @put("/test/things/{owner_id:uuid}", guards=[authenticated])
    async def put_thing(owner_id: uuid.UUID, principal: CurrentUser) -> dict[str, str]:
        return await owned(owner_id, principal)

    @patch("/test/things/{owner_id:uuid}", guards=[authenticated])
    async def patch_thing(owner_id: uuid.UUID, principal: CurrentUser) -> dict[str, str]:
        return await owned(owner_id, principal)

    @delete("/test/things/{owner_id:uuid}", guards=[authenticated], status_code=200)
    async def delete_thing(owner_id: uuid.UUID, principal: CurrentUser) -> dict[str, str]:
        return await owned(owner_id, principal)

    @post("/test/things", guards=[authenticated])
    async def create_thing(principal: CurrentUser) -> dict[str, str]:
        return {"owner_id": str(principal.id)}

    return [
        signed_in_area,
        student_area,
        staff_area,
        admin_area,
        read_thing,
        put_thing,
        patch_thing,
        delete_thing,
        create_thing,
    ]


@pytest.fixture
async def guarded(settings: Settings) -> AsyncIterator[AsyncTestClient[Litestar]]:
    """A browser on the real app plus the test-only guarded routes."""
    app = create_app(settings)
    for handler in guarded_routes():
        app.register(handler)
    async with AsyncTestClient(app, base_url="https://testserver.local") as client:
        yield client


@pytest.fixture(autouse=True)
def _cheap_password_hashing() -> Iterator[None]:
    # Auth tests sign in constantly; the real argon2 cost is covered in test_passwords.py.
    with cheap_hashing():
        yield
