"""One JSON error shape for every client mistake, naming the field; never a 500."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any

import msgspec
import pytest
from litestar import Litestar, post
from litestar.params import FromQuery, JSONBody
from litestar.testing import AsyncTestClient

from safexam.app import create_app
from safexam.core.settings import Settings
from tests.helpers import csrf


class Limits(msgspec.Struct, forbid_unknown_fields=True):
    cpu_time_s: Annotated[int, msgspec.Meta(ge=1, le=60)]


class Body(msgspec.Struct, forbid_unknown_fields=True):
    limits: Limits


class Item(msgspec.Struct, forbid_unknown_fields=True):
    title: Annotated[str, msgspec.Meta(min_length=1)]
    points: int
    body: Body
    exam_id: uuid.UUID | None = None


def error_of(response: Any) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message", "details"}, body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    assert response.headers["content-type"].startswith("application/json")
    error: dict[str, Any] = body["error"]
    return error


def fields_of(error: dict[str, Any]) -> list[str]:
    return [d["field"] for d in error["details"] or []]


@pytest.fixture
async def api(settings: Settings) -> AsyncIterator[AsyncTestClient[Litestar]]:
    """The real app plus one test-only route with a nested body and a query parameter."""

    @post("/test/items", status_code=201)
    async def create_item(data: JSONBody[Item], limit: FromQuery[int] = 10) -> dict[str, Any]:
        return {"title": data.title, "limit": limit}

    app = create_app(settings)
    app.register(create_item)
    async with AsyncTestClient(app, base_url="https://testserver.local") as client:
        await csrf(client)
        yield client


VALID = {"title": "Q1", "points": 2, "body": {"limits": {"cpu_time_s": 2}}}


async def test_valid_request_passes(api: Any) -> None:
    response = await api.post("/test/items", json=VALID)
    assert response.status_code == 201, response.text
    assert response.json() == {"title": "Q1", "limit": 10}


@pytest.mark.parametrize(
    "raw",
    [b"{bad", b'{"title": "x",}', b"\xff\xfe", b"not json at all", b'{"title": "x"'],
)
async def test_malformed_json_is_400(api: Any, raw: bytes) -> None:
    response = await api.post(
        "/test/items", content=raw, headers={"content-type": "application/json"}
    )
    assert response.status_code == 400, response.text
    assert error_of(response)["code"] == "malformed_json"


async def test_empty_body_is_400(api: Any) -> None:
    response = await api.post(
        "/test/items", content=b"", headers={"content-type": "application/json"}
    )
    assert response.status_code == 400, response.text
    assert error_of(response)["code"] == "malformed_json"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({**VALID, "points": "two"}, "points"),
        ({**VALID, "title": 5}, "title"),
        ({**VALID, "title": ""}, "title"),
        ({**VALID, "exam_id": "not-a-uuid"}, "exam_id"),
        ({**VALID, "body": {"limits": {"cpu_time_s": "fast"}}}, "body.limits.cpu_time_s"),
        ({**VALID, "body": {"limits": {"cpu_time_s": 999}}}, "body.limits.cpu_time_s"),
        ({"title": "Q1", "body": VALID["body"]}, "points"),
        ({**VALID, "body": {"limits": {}}}, "body.limits.cpu_time_s"),
        ({**VALID, "colour": "red"}, "colour"),
        ({**VALID, "body": {"limits": {"cpu_time_s": 2, "gpu": 1}}}, "body.limits.gpu"),
    ],
)
async def test_wrong_missing_or_unknown_fields_are_422_naming_the_field(
    api: Any, body: dict[str, Any], field: str
) -> None:
    response = await api.post("/test/items", json=body)
    assert response.status_code == 422, response.text
    error = error_of(response)
    assert error["code"] == "validation_error"
    assert field in fields_of(error), error
    assert field in error["message"]


async def test_non_object_body_is_422(api: Any) -> None:
    for body in (b"[1, 2]", b'"text"', b"3", b"null"):
        response = await api.post(
            "/test/items", content=body, headers={"content-type": "application/json"}
        )
        assert response.status_code == 422, response.text
        assert error_of(response)["code"] == "validation_error"


async def test_bad_query_parameter_names_it(api: Any) -> None:
    response = await api.post("/test/items?limit=many", json=VALID)
    assert 400 <= response.status_code < 500, response.text
    error = error_of(response)
    assert "limit" in fields_of(error)


async def test_login_body_errors_name_the_field(client: Any) -> None:
    await csrf(client)
    missing = await client.post("/api/v1/auth/login", json={"email": "a@college.edu"})
    assert missing.status_code == 422
    assert fields_of(error_of(missing)) == ["password"]
    wrong = await client.post("/api/v1/auth/login", json={"email": ["a"], "password": "x"})
    assert wrong.status_code == 422
    assert fields_of(error_of(wrong)) == ["email"]
    unknown = await client.post(
        "/api/v1/auth/login", json={"email": "a@college.edu", "password": "x", "role": "admin"}
    )
    assert unknown.status_code == 422
    assert fields_of(error_of(unknown)) == ["role"]


async def test_unknown_route_is_404_json(client: Any) -> None:
    response = await client.get("/api/v1/no-such-thing")
    assert response.status_code == 404
    error = error_of(response)
    assert error["code"] == "not_found"
    assert "/api/v1/no-such-thing" in error["message"]
    assert response.headers["x-request-id"]


async def test_method_not_allowed_is_405_json(client: Any) -> None:
    response = await client.get("/api/v1/auth/logout")
    assert response.status_code == 405
    assert error_of(response)["code"] == "method_not_allowed"
    assert "POST" in response.headers["allow"]
    assert response.headers["x-request-id"]


async def test_every_response_carries_a_request_id(api: Any) -> None:
    responses = [
        await api.get("/healthz"),
        await api.get("/api/v1/auth/csrf"),
        await api.get("/api/v1/auth/me"),
        await api.get("/nowhere"),
        await api.delete("/healthz"),
        await api.post("/test/items", json={}),
        await api.post("/test/items", content=b"{", headers={"content-type": "application/json"}),
        await api.post("/test/items", json=VALID, headers={"X-CSRF-Token": "forged"}),
    ]
    ids = [r.headers.get("x-request-id") for r in responses]
    assert all(ids), [(r.status_code, r.headers) for r in responses]
    assert len(set(ids)) == len(ids)


async def test_request_id_is_echoed_only_when_well_formed(client: Any) -> None:
    echoed = await client.get("/healthz", headers={"X-Request-ID": "abc-123"})
    assert echoed.headers["x-request-id"] == "abc-123"
    forged = await client.get("/healthz", headers={"X-Request-ID": "evil\tline"})
    assert forged.headers["x-request-id"] not in ("evil\tline", "")
    too_long = await client.get("/healthz", headers={"X-Request-ID": "a" * 200})
    assert len(too_long.headers["x-request-id"]) <= 64


async def test_no_client_mistake_is_a_500(api: Any) -> None:
    weird: list[tuple[str, str, dict[str, Any]]] = [
        (
            "POST",
            "/test/items",
            {"content": b"\x00\x01", "headers": {"content-type": "application/json"}},
        ),
        (
            "POST",
            "/test/items",
            {"content": b"a=b", "headers": {"content-type": "application/x-www-form-urlencoded"}},
        ),
        ("POST", "/test/items", {"json": {"title": "x" * 10_000, "points": 10**30, "body": {}}}),
        ("POST", "/test/items?limit=1.5", {"json": VALID}),
        ("POST", "/api/v1/auth/login", {"json": {"email": "@", "password": ""}}),
        ("POST", "/api/v1/auth/login", {"json": {"email": "a@b.c", "password": "p" * 5000}}),
        ("GET", "/api/v1/auth/oidc/callback?state=%F0%9F%98%80&code=x", {}),
        ("GET", "/api/v1/auth/oidc/login?next=https://evil.example/", {}),
        ("GET", "/test/items", {}),
        ("GET", "/%2e%2e/%2e%2e/etc/passwd", {}),
    ]
    for method, path, kwargs in weird:
        response = await api.request(method, path, **kwargs)
        assert 400 <= response.status_code < 500, (
            method,
            path,
            response.status_code,
            response.text,
        )
        error_of(response)
