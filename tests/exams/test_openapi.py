"""The authoring routes are described in the OpenAPI document clients generate from."""

from __future__ import annotations

from typing import Any


async def test_openapi_lists_authoring_routes(client: Any) -> None:
    response = await client.get("/schema/openapi.json")
    assert response.status_code == 200, response.text
    paths = response.json()["paths"]
    for path, method in [
        ("/api/v1/questions", "post"),
        ("/api/v1/questions", "get"),
        ("/api/v1/questions/{question_id}", "patch"),
        ("/api/v1/exams", "post"),
        ("/api/v1/exams/{exam_id}", "patch"),
        ("/api/v1/exams/{exam_id}/publish", "post"),
        ("/api/v1/exams/{exam_id}/enrollments", "put"),
        ("/api/v1/exams/{exam_id}/enrollments/{email}", "delete"),
    ]:
        assert method in paths.get(path, {}), (path, method, sorted(paths))
