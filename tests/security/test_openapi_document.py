"""The OpenAPI document describes what the API really answers (what schemathesis checks
against): the one error shape on every error status, the statuses each route can
answer, and the media types of streams and exports."""

from __future__ import annotations

import re
from typing import Any

import pytest
from litestar import Litestar

from tests.security.shape import error_shape_problem

ERROR_REF = "#/components/schemas/ErrorBody"
METHODS = ("get", "post", "put", "patch", "delete")


@pytest.fixture
async def document(client: Any) -> dict[str, Any]:
    response = await client.get("/schema/openapi.json")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method in METHODS
    ]


async def test_every_error_status_is_the_one_error_shape(document: dict[str, Any]) -> None:
    error = document["components"]["schemas"]["ErrorInfo"]
    assert set(error["required"]) == {"code", "message", "details"}
    wrong = []
    for method, path, operation in operations(document):
        for status, response in operation["responses"].items():
            if int(status) < 400:
                continue
            content = response.get("content") or {}
            schema = content.get("application/json", {}).get("schema", {})
            if set(content) != {"application/json"} or schema.get("$ref") != ERROR_REF:
                wrong.append(f"{method} {path} {status}: {content}")
    assert not wrong, "\n".join(wrong)


async def test_statuses_follow_guards_parameters_and_writes(document: dict[str, Any]) -> None:
    wrong = []
    for method, path, operation in operations(document):
        statuses = set(operation["responses"])
        if "503" not in statuses:
            wrong.append(f"{method} {path}: no 503")
        if "{" in path and not {"400", "404"} <= statuses:
            wrong.append(f"{method} {path}: path parameters but no 400/404")
        if "requestBody" in operation and not {"400", "413", "422"} <= statuses:
            wrong.append(f"{method} {path}: a body but no 400/413/422")
        if method != "GET" and "403" not in statuses:
            wrong.append(f"{method} {path}: a write without 403 (CSRF)")
        if (
            path.startswith(("/api/v1/questions", "/api/v1/ops", "/api/v1/qie"))
            and not {
                "401",
                "403",
            }
            <= statuses
        ):
            wrong.append(f"{method} {path}: staff only but no 401/403")
    assert not wrong, "\n".join(wrong)
    login = document["paths"]["/api/v1/auth/login"]["post"]["responses"]
    assert {"401", "429"} <= set(login)


async def test_streams_exports_redirects_and_resumes_are_described(
    document: dict[str, Any],
) -> None:
    paths = document["paths"]
    for path in (
        "/api/v1/sessions/{session_id}/events",
        "/api/v1/jobs/{job_id}/events",
        "/api/v1/submissions/{submission_id}/events",
    ):
        assert set(paths[path]["get"]["responses"]["200"]["content"]) == {"text/event-stream"}
    results = paths["/api/v1/exams/{exam_id}/results"]["get"]["responses"]["200"]["content"]
    assert results["application/json"]["schema"]["$ref"].endswith("/ResultsOut")
    assert results["text/csv"]["schema"] == {"type": "string"}
    start = paths["/api/v1/exams/{exam_id}/sessions"]["post"]["responses"]
    assert start["200"]["content"]["application/json"]["schema"]["$ref"].endswith("/SessionOut")
    assert "201" in start
    assert "302" in paths["/api/v1/auth/oidc/login"]["get"]["responses"]
    assert "303" in paths["/api/v1/auth/oidc/callback"]["get"]["responses"]


async def test_unknown_reference_pages_are_404_in_the_error_shape(client: Any) -> None:
    for path in ("/schema/nowhere", "/schema/nowhere.json"):
        response = await client.get(path)
        assert response.status_code == 404, response.text
        assert not error_shape_problem(response), response.text


async def test_every_public_route_is_in_the_document(
    app: Litestar, document: dict[str, Any]
) -> None:
    """What schemathesis generates from: every route but the internal ones is described."""
    documented = {(m, p) for m, p, _ in operations(document)}
    internal = ("/schema", "/metrics", "/api/v1/judge0/callbacks/")
    missing = []
    for route in app.routes:
        if route.path.startswith(internal):
            continue
        # The browser's pages (safexam.web) are not part of the API.
        if any(
            getattr(handler.fn, "__module__", "").startswith("safexam.web.")
            for handler in getattr(route, "route_handlers", ())
        ):
            continue
        path = re.sub(r"\{(\w+):\w+\}", r"{\1}", route.path)
        for method in getattr(route, "methods", ()):
            if method not in ("OPTIONS", "HEAD") and (method, path) not in documented:
                missing.append(f"{method} {path}")
    assert not missing, missing
