"""Schemathesis against the app's own OpenAPI document, as each kind of caller.

The app is served by uvicorn on 127.0.0.1 in a thread of its own (schemathesis
calls it synchronously, over real HTTP, against the real PostgreSQL and
Redis). For each role, every operation of the schema gets a bounded,
derandomized set of generated requests (schema examples, boundary and
negative values, then fuzzing), half of them with the real ids of the world's
objects in the path. A response must never be a 5xx, must match what the
schema declares (status, content type, headers, body), must refuse data the
schema rules out, and every 4xx must be the one JSON error shape.
"""

from __future__ import annotations

import threading
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import hypothesis
import msgspec
import pytest
import requests
import schemathesis
import uvicorn
from hypothesis import strategies as st
from redis.asyncio import Redis
from schemathesis import Case
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.specs.openapi.checks import (
    missing_required_header,
    negative_data_rejection,
    response_headers_conformance,
    unsupported_method,
)
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from safexam.app import create_app
from safexam.core.settings import Settings
from safexam.models import Base
from tests.fault_servers import free_port
from tests.helpers import PASSWORD
from tests.security.shape import error_shape_problem
from tests.security.world import World, build_world

ROLES = ("anonymous", "student", "educator", "admin")
# Per operation and role; with the schema's own examples and the boundary
# cases this keeps the whole run within about two minutes on two cores.
MAX_EXAMPLES = 8
# Not allow_header_conformance: Litestar's automatic OPTIONS answer lists only the
# methods of the first handler registered on a path (its 405 Allow is right).
CHECKS = (
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
    negative_data_rejection,
    missing_required_header,
    unsupported_method,
)
# Path parameters the world has a real object for.
REAL_IDS = {
    "exam_id": "exam_id",
    "session_id": "session_id",
    "question_id": "question_id",
    "response_id": "response_id",
    "job_id": "job_id",
    "submission_id": "submission_id",
    "email": "student_email",
}


class ThreadedServer:
    """uvicorn in a thread with its own event loop, so synchronous callers cannot block it."""

    def __init__(self, settings: Settings) -> None:
        self.port = free_port()
        self.server = uvicorn.Server(
            uvicorn.Config(
                create_app(settings),
                host="127.0.0.1",
                port=self.port,
                log_level="warning",
                lifespan="on",
            )
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> ThreadedServer:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            assert self.thread.is_alive(), "uvicorn stopped at start-up"
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture(scope="module")
def server(settings: Settings) -> Iterator[ThreadedServer]:
    # Plain http, so cookies are not Secure; a fuzzed login must not lock the
    # test's own address out before it signs in again after a fuzzed logout.
    served = msgspec.structs.replace(
        settings, cookie_secure=False, login_max_failures_per_ip=1_000_000
    )
    with ThreadedServer(served) as running:
        yield running


@pytest.fixture(autouse=True)
def _clean_state() -> None:
    """The per-test wipe of the root conftest is replaced by one at the end of the module
    (``_wipe_after_module``), so one world serves every role's run."""


@pytest.fixture(scope="module", autouse=True)
async def _wipe_after_module(
    engine: AsyncEngine, redis: Redis, settings: Settings
) -> AsyncIterator[None]:
    yield
    async with engine.begin() as conn:
        for table in reversed(Base.metadata.sorted_tables):
            await conn.execute(table.delete())
    async for key in redis.scan_iter(match=f"{settings.redis_namespace}*", count=500):
        await redis.delete(key)


@pytest.fixture(scope="module")
async def world(server: ThreadedServer, engine: AsyncEngine) -> AsyncIterator[World]:
    from safexam.core.db import create_sessionmaker

    maker: async_sessionmaker[AsyncSession] = create_sessionmaker(engine)
    clients: list[httpx.AsyncClient] = []

    async def new_client() -> httpx.AsyncClient:
        client = httpx.AsyncClient(base_url=server.url, timeout=30)
        clients.append(client)
        return client

    try:
        async with maker() as db:
            yield await build_world(new_client, db, maker)
    finally:
        for client in clients:
            await client.aclose()


def _openapi_document() -> dict[str, Any]:
    """The app's OpenAPI document, as the served app builds it (no server needed to collect)."""
    # Nothing connects to these: the document is built from the route table alone.
    app = create_app(
        Settings(
            env="test",
            database_url="postgresql://127.0.0.1:1/collect-only",
            redis_url="redis://127.0.0.1:1/0",
            log_level="WARNING",
            secret_key="collect-only-" + "k" * 32,
        )
    )
    document: dict[str, Any] = app.openapi_schema.to_schema()
    return document


# The world's ids, once its fixture has built it; generation runs after fixtures.
WORLD_IDS: dict[str, str] = {}

schema = schemathesis.openapi.from_dict(_openapi_document())
schema.config.generation.update(max_examples=MAX_EXAMPLES, deterministic=True)
schema.config.phases.update(phases=["examples", "coverage", "fuzzing"])
# An event stream never ends: its first event (the current state) is enough.
schema.config.max_stream_events = 1


@schema.hook
def flatmap_path_parameters(context: Any, path_parameters: dict[str, Any] | None) -> Any:
    # Half the cases reach a real object, so handlers run past their 404.
    if not path_parameters:
        return st.just(path_parameters)
    real = {
        name: WORLD_IDS[REAL_IDS[name]] if name in REAL_IDS else value
        for name, value in path_parameters.items()
    }
    return st.sampled_from([real, path_parameters])


class Browser:
    """One role's own requests session (cookies and CSRF header), signed in again after
    a generated sign-out so the rest of the run still acts as that role."""

    def __init__(self, role: str, email: str | None, base_url: str) -> None:
        self.role = role
        self.email = email
        self.base_url = base_url
        self.session = requests.Session()
        self.sign_in()

    def refresh_csrf(self) -> None:
        response = self.session.get(f"{self.base_url}/api/v1/auth/csrf")
        assert response.status_code == 200, response.text
        self.session.headers["X-CSRF-Token"] = response.json()["csrf_token"]

    def sign_in(self) -> None:
        self.refresh_csrf()
        if self.email is None:
            return
        signed = self.session.post(
            f"{self.base_url}/api/v1/auth/login", json={"email": self.email, "password": PASSWORD}
        )
        assert signed.status_code == 200, signed.text
        self.refresh_csrf()

    def after(self, case: Case) -> None:
        if case.path not in ("/api/v1/auth/logout", "/api/v1/auth/login"):
            return
        if self.email is None or self.session.get(f"{self.base_url}/api/v1/auth/me").ok:
            return
        self.sign_in()


@pytest.fixture(scope="module", params=ROLES)
def browser(request: pytest.FixtureRequest, world: World, server: ThreadedServer) -> Browser:
    WORLD_IDS.update(world.ids)
    return Browser(request.param, world.emails.get(request.param), server.url)


@schema.parametrize()
@hypothesis.settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(hypothesis.HealthCheck),
)
def test_api_conforms_to_its_schema(case: Case, browser: Browser) -> None:
    response = case.call(base_url=browser.base_url, session=browser.session, timeout=30)
    browser.after(case)
    if 400 <= response.status_code < 500:
        problem = error_shape_problem(response)
        assert not problem, f"{case.method} {case.formatted_path}: {problem}"
    case.validate_response(response, checks=CHECKS)


def test_cases_come_from_the_served_document(server: ThreadedServer) -> None:
    """The document collected without a server is the one the server serves."""
    served = requests.get(f"{server.url}/schema/openapi.json", timeout=10)
    assert served.status_code == 200, served.text
    assert served.json() == _openapi_document()
