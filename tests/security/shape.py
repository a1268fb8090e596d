"""The project's one error shape, checked on any HTTP response."""

from __future__ import annotations

import json
from typing import Any


def error_shape_problem(response: Any) -> str:
    """Empty when ``response`` carries ``{"error": {"code", "message", "details"}}`` as JSON.

    ``response`` is anything with ``status_code``, ``headers`` and ``content``
    (httpx responses, and schemathesis's, whose header values are lists); the
    answer says what is wrong.
    """
    content_type = response.headers.get("content-type", "")
    if isinstance(content_type, list):
        content_type = content_type[0] if content_type else ""
    if not content_type.startswith("application/json"):
        return f"content-type {content_type!r}, not JSON: {response.content[:200]!r}"
    try:
        body = json.loads(response.content)
    except ValueError:
        return f"body is not JSON: {response.content[:200]!r}"
    if not isinstance(body, dict) or set(body) != {"error"}:
        return f"body is not {{'error': ...}}: {body!r}"
    error = body["error"]
    if not isinstance(error, dict) or set(error) != {"code", "message", "details"}:
        return f"error has not exactly code, message, details: {error!r}"
    if not (isinstance(error["code"], str) and error["code"]):
        return f"error code is not a non-empty string: {error!r}"
    if not (isinstance(error["message"], str) and error["message"]):
        return f"error message is not a non-empty string: {error!r}"
    return ""
