"""What every domain's HTTP side shares: the API's path prefix, and who sent a request."""

from __future__ import annotations

from typing import Any

from litestar.connection import ASGIConnection

__all__ = ["API_PREFIX", "MAX_USER_AGENT", "client_ip", "user_agent_of"]

#: Every route of the API lives below this path; app.py mounts the controllers there.
API_PREFIX = "/api/v1"

#: Longer user agents are cut: the header is the client's to fill, the column is ours.
MAX_USER_AGENT = 512


def client_ip(request: ASGIConnection[Any, Any, Any, Any]) -> str:
    return request.client.host if request.client else "unknown"


def user_agent_of(request: ASGIConnection[Any, Any, Any, Any]) -> str | None:
    agent = request.headers.get("user-agent")
    return agent[:MAX_USER_AGENT] if agent else None
