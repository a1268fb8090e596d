"""Responses that are the same for everyone, with an ETag and 304 on ``If-None-Match``.

Each body is compressed once (:func:`public_body`), and sent gzipped to
clients that accept it. The two forms are two representations, so each has
its own strong ETag, and ``Vary: Accept-Encoding`` tells caches to keep them
apart.
"""

from __future__ import annotations

import gzip
import hashlib
from dataclasses import dataclass
from typing import Any

from litestar import Request, Response

__all__ = ["PublicBody", "etag_of", "public_body", "public_response"]


def etag_of(body: bytes) -> str:
    """A strong validator: the body's hash, quoted as RFC 9110 asks."""
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


@dataclass(frozen=True)
class PublicBody:
    body: bytes
    gzipped: bytes
    etag: str
    gzip_etag: str


def public_body(body: bytes) -> PublicBody:
    """``body`` with its gzipped form and the ETag of each (build it once per body)."""
    etag = etag_of(body)
    return PublicBody(
        body=body,
        gzipped=gzip.compress(body, compresslevel=9, mtime=0),
        etag=etag,
        gzip_etag=etag[:-1] + '-gzip"',
    )


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
    public: PublicBody,
    *,
    media_type: str,
    cache_control: str,
    vary: tuple[str, ...] = (),
    headers: dict[str, str] | None = None,
) -> Response[bytes]:
    """The body (gzipped when accepted) with its ETag, or an empty 304 when the
    client already holds that representation."""
    gzipped = "gzip" in request.headers.get("accept-encoding", "")
    etag = public.gzip_etag if gzipped else public.etag
    sent = {
        "Cache-Control": cache_control,
        "ETag": etag,
        "Vary": ", ".join(("Accept-Encoding", *vary)),
        **(headers or {}),
    }
    if _matches(request.headers.get("if-none-match", ""), etag):
        return Response(b"", status_code=304, headers=sent, media_type=media_type)
    if gzipped:
        sent["Content-Encoding"] = "gzip"
        return Response(public.gzipped, headers=sent, media_type=media_type)
    return Response(public.body, headers=sent, media_type=media_type)
