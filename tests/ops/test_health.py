"""Liveness and readiness probes."""

from __future__ import annotations

import gc
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import msgspec
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from safexam.app import create_app, freeze_startup_heap
from safexam.core.settings import Settings

ClientFactory = Callable[..., Awaitable[AsyncTestClient[Litestar]]]


@pytest.fixture
async def client_with(settings: Settings) -> AsyncIterator[ClientFactory]:
    """A browser on an app built with some settings changed."""
    clients: list[AsyncTestClient[Litestar]] = []

    async def factory(**changes: Any) -> AsyncTestClient[Litestar]:
        app = create_app(msgspec.structs.replace(settings, **changes))
        client = AsyncTestClient(app, base_url="https://testserver.local")
        await client.__aenter__()
        clients.append(client)
        return client

    yield factory
    for client in clients:
        await client.__aexit__(None, None, None)


def closed_port() -> int:
    """A local TCP port with nothing listening (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def test_healthz(client: Any) -> None:
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert response.headers["x-request-id"]


async def test_readyz_when_everything_answers(client: Any) -> None:
    response = await client.get("/readyz")
    assert response.status_code == 200, response.text
    assert response.json() == {"status": "ready", "checks": {"database": "ok", "redis": "ok"}}


async def test_readyz_names_redis_when_it_is_down(client_with: ClientFactory) -> None:
    app = await client_with(redis_url=f"redis://127.0.0.1:{closed_port()}/0")
    response = await app.get("/readyz")
    assert response.status_code == 503, response.text
    error = response.json()["error"]
    assert error["code"] == "not_ready"
    assert "redis" in error["message"] and "database" not in error["message"]
    assert error["details"]["redis"].startswith("error")
    assert error["details"]["database"] == "ok"
    # Liveness does not depend on Redis: the process itself is fine.
    assert (await app.get("/healthz")).status_code == 200


async def test_readyz_names_the_database_when_it_is_down(client_with: ClientFactory) -> None:
    url = f"postgresql://postgres@127.0.0.1:{closed_port()}/safexam"
    app = await client_with(database_url=url)
    response = await app.get("/readyz")
    assert response.status_code == 503, response.text
    error = response.json()["error"]
    assert "database" in error["message"] and "redis" not in error["message"]
    assert error["details"]["database"].startswith("error")
    assert error["details"]["redis"] == "ok"
    assert (await app.get("/healthz")).status_code == 200


def _counter(metrics: str, labels: str) -> float:
    """The value of ``safexam_http_requests_total{labels}`` in a scrape (0 when absent)."""
    for line in metrics.splitlines():
        if line.startswith(f"safexam_http_requests_total{{{labels}}} "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def test_metrics_are_scraped_while_the_database_is_down(client_with: ClientFactory) -> None:
    """The 503s of a PostgreSQL outage are visible to Prometheus: the scrape itself succeeds."""
    url = f"postgresql://postgres@127.0.0.1:{closed_port()}/safexam"
    app = await client_with(database_url=url, database_connect_timeout_seconds=1)
    labels = 'method="GET",route="/readyz",status="503"'
    before = await app.get("/metrics")
    assert before.status_code == 200, before.text
    assert (await app.get("/readyz")).status_code == 503
    after = await app.get("/metrics")
    assert after.status_code == 200, after.text
    assert _counter(after.text, labels) == _counter(before.text, labels) + 1
    # The job ledger lives in the database: left out rather than failing the scrape.
    assert "safexam_jobs{" not in after.text


async def test_an_api_process_freezes_its_startup_heap_once(
    client_with: ClientFactory,
) -> None:
    """Full collections skip what start-up built (the exam-load pauses), once per process."""
    await client_with()
    frozen = gc.get_freeze_count()
    assert frozen > 10_000  # the app, its routes and mappers, not a handful
    await client_with()
    freeze_startup_heap()
    assert gc.get_freeze_count() == frozen  # later apps (tests make many) are collected as usual


async def test_a_scrape_needs_the_token_when_one_is_set(client_with: ClientFactory) -> None:
    app = await client_with(metrics_token="scrape-token-123")
    refused = await app.get("/metrics")
    assert refused.status_code == 401, refused.text
    assert refused.json()["error"]["code"] == "not_authenticated"
    assert refused.headers["www-authenticate"].startswith("Bearer")
    wrong = await app.get("/metrics", headers={"Authorization": "Bearer guess"})
    assert wrong.status_code == 401
    scraped = await app.get("/metrics", headers={"Authorization": "Bearer scrape-token-123"})
    assert scraped.status_code == 200 and "safexam_http_requests_total" in scraped.text
