"""The headers every response carries, pages and JSON alike, and the caching rules.

The policy allows scripts and styles from this origin only: no inline script,
no inline style, no framing, no ``<base>``, forms that post only here. Pages
therefore keep all behaviour in files under ``static/`` (ES modules) and all
looks in ``static/css/``.

The headers are encoded once, as the ASGI tuples they are sent as: the
autosave fast path adds the same tuples to its own answers, which never pass
through :class:`SecurityHeaders`.
"""

from __future__ import annotations

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send

__all__ = [
    "CACHE_IMMUTABLE",
    "CACHE_PRIVATE",
    "CONTENT_SECURITY_POLICY",
    "DOCS_CONTENT_SECURITY_POLICY",
    "SECURITY_HEADERS",
    "SecurityHeaders",
]

# The service worker (/sw.js) and the app manifest are this origin's too;
# named, rather than left to default-src, so that the policy says so.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; "
    "worker-src 'self'; manifest-src 'self'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)

SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    # Paths can name exams and sessions: other sites learn only that a visit came from here.
    (b"referrer-policy", b"same-origin"),
)

# The API reference pages under /schema are Litestar's: an inline script that
# starts a viewer loaded from its CDN, with inline styles and web fonts. They
# show no one's data, so they alone get a policy that lets that viewer run;
# the documents themselves (/schema/openapi.json, .yaml) keep the strict one.
DOCS_CONTENT_SECURITY_POLICY = (
    "default-src 'self'; "
    "script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net https://cdn.redoc.ly "
    "https://unpkg.com; "
    "style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net https://unpkg.com "
    "https://fonts.googleapis.com; "
    "font-src 'self' https://fonts.gstatic.com; "
    "img-src 'self' data: https://cdn.jsdelivr.net https://cdn.redoc.ly; "
    "worker-src 'self' blob:; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
_DOCS_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"content-security-policy", DOCS_CONTENT_SECURITY_POLICY.encode()),
    *SECURITY_HEADERS[1:],
)
_DOCS_PREFIX = "/schema"
_DOCS_DOCUMENTS = (".json", ".yaml", ".yml")


def _is_docs_page(path: str) -> bool:
    return (path == _DOCS_PREFIX or path.startswith(_DOCS_PREFIX + "/")) and not path.endswith(
        _DOCS_DOCUMENTS
    )


#: A page that shows someone's data: never kept by a shared cache or the browser's history.
CACHE_PRIVATE = "private, no-store"
API_PATH_PREFIX = "/api/"
#: A static file under its content-hashed name: its content can never change.
CACHE_IMMUTABLE = "public, max-age=31536000, immutable"


class SecurityHeaders:
    """ASGI wrapper adding :data:`SECURITY_HEADERS` to every HTTP response of ``app``.

    Outside Litestar's middleware so that responses no route produced (an
    unknown path, a method not allowed) carry them too.
    """

    def __init__(self, app: ASGIApp, headers: tuple[tuple[bytes, bytes], ...] = SECURITY_HEADERS):
        self.app = app
        self.headers = headers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await self.app(scope, receive, send)
            return
        extra = _DOCS_HEADERS if _is_docs_page(scope["path"]) else self.headers

        api = scope["path"].startswith(API_PATH_PREFIX)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [*message.get("headers", ()), *extra]
                # The API's answers are someone's data (a session, scores, a
                # roster) unless a route says otherwise: never stored by a cache.
                if api and not any(name.lower() == b"cache-control" for name, _ in headers):
                    headers.append((b"cache-control", b"no-store"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)
