"""Responses that are the same for everyone, with an ETag and 304 on ``If-None-Match``."""

from __future__ import annotations

import hashlib
from typing import Any

from litestar import Request, Response

__all__ = ["etag_of", "public_response"]


def etag_of(body: bytes) -> str:
    """A strong validator: the body's hash, quoted as RFC 9110 asks."""
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def _matches(if_none_match: str, etag: str) -> bool:
    # Weak comparison, as RFC 9110 prescribes for If-None-Match.
    wanted = etag.removeprefix("W/")
    for candidate in if_none_match.split(","):
        candidate = candidate.strip()
        if candidate == "*" or candidate.removeprefix("W/") == wanted:
            return True
    return False


def public_response(
    request: Request[Any, Any, Any],
    body: bytes,
    *,
    media_type: str,
    cache_control: str,
    headers: dict[str, str] | None = None,
) -> Response[bytes]:
    """``body`` with its ETag, or an empty 304 when the client already holds it."""
    etag = etag_of(body)
    sent = {"Cache-Control": cache_control, "ETag": etag, **(headers or {})}
    if _matches(request.headers.get("if-none-match", ""), etag):
        return Response(b"", status_code=304, headers=sent, media_type=media_type)
    return Response(body, headers=sent, media_type=media_type)
