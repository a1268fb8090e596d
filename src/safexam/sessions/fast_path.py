"""Autosave's accepted requests, answered without Litestar's generic request machinery.

On exam day nearly every request is an autosave, and a profile of one
(bench/README.md) put about two thirds of its CPU in the layers around its
single SQL statement: exception handling, routing, metrics, the sign-in and
CSRF middleware, the handler's signature model, the guard and the response.
This layer answers an autosave itself only when it can tell, with the same
components the full stack uses, that the full stack would accept it:

- ``PUT /api/v1/sessions/{uuid}/responses/{uuid}``, ids in canonical form, no query;
- a JSON body of at most :data:`MAX_FAST_BODY` bytes that decodes strictly into
  :class:`AutosaveRequest` and holds no escaped NUL;
- an ``X-CSRF-Token`` that matches its cookie, checked by Litestar's CSRF middleware;
- a sign-in from the same store, renewed the same way, of a student, within its hard cap.

Any other request, including one that fails any of those checks, goes to the
full stack unchanged (the body read so far replayed), so every refusal keeps
its one implementation. What the save itself answers, success or error (404,
409, 422, 503), is rendered like the exception handlers render it, through
:func:`error_for`. tests/sessions/test_autosave_fast_path.py sends each case
through both paths and compares the answers.
"""

from __future__ import annotations

import re
import time
import uuid
from collections import deque
from typing import Any, cast

import msgspec
from litestar import Litestar
from litestar.config.csrf import CSRFConfig
from litestar.connection import ASGIConnection
from litestar.enums import ScopeType
from litestar.middleware.csrf import CSRFMiddleware
from litestar.stores.base import Store
from litestar.types import ASGIApp, HTTPReceiveMessage, Receive, Scope, Send
from sqlalchemy.ext.asyncio import AsyncEngine

from safexam.auth.guards import SIGNIN_ORG_KEY, SIGNIN_USER_KEY, principal_in, signin_expired
from safexam.auth.signins import SIGNIN_COOKIE, SignInBackend, SignInConfig
from safexam.core.errors import error_for, error_payload
from safexam.core.http import client_ip, user_agent_of
from safexam.core.inputs import NUL_ESCAPE
from safexam.core.metrics import HTTP_LATENCY, HTTP_REQUESTS
from safexam.sessions.autosave import autosave
from safexam.sessions.schemas import AutosaveRequest

__all__ = ["MAX_FAST_BODY", "ROUTE", "AutosaveFastPath"]

#: The route as Litestar names it, for the access line and the metrics labels.
ROUTE = "/api/v1/sessions/{session_id:uuid}/responses/{question_id:uuid}"
_UUID = "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
_PATH = re.compile(f"/api/v1/sessions/({_UUID})/responses/({_UUID})")
#: The largest answer (64,000 characters of code, each escaped as up to 6
#: bytes of JSON) fits; a larger body is left to the full stack and its limit.
MAX_FAST_BODY = 512 * 1024
_JSON_TYPE = "application/json"


class AutosaveFastPath:
    """ASGI layer in front of the app: serves accepted autosaves, passes on the rest."""

    def __init__(
        self,
        app: Litestar,
        inner: ASGIApp,
        *,
        engine: AsyncEngine,
        signins: SignInConfig,
        csrf: CSRFConfig,
        session_absolute_seconds: float,
        headers: tuple[tuple[bytes, bytes], ...] = (),
    ) -> None:
        self.app = app
        # What every response of the app carries (security headers), added here
        # because these answers skip the layer that adds them to the others.
        self.headers = headers
        self.inner = inner
        self.engine = engine
        self.signins = signins
        self.backend = SignInBackend(config=signins)
        self.csrf = CSRFMiddleware(inner, csrf)
        self.csrf_cookie = csrf.cookie_name
        self.csrf_header = csrf.header_name
        self.session_absolute_seconds = session_absolute_seconds
        self._store: Store | None = None
        #: Autosaves this layer answered itself (the rest went to the full stack).
        self.served = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == ScopeType.HTTP
            and scope.get("method") == "PUT"
            and not scope["query_string"]
        ):
            match = _PATH.fullmatch(scope["path"])
            if match is not None:
                passed = await self._serve(scope, receive, send, match)
                if passed is None:
                    self.served += 1
                    return
                receive = passed
        await self.inner(scope, receive, send)

    async def _serve(
        self, scope: Scope, receive: Receive, send: Send, match: re.Match[str]
    ) -> Receive | None:
        """Answer the autosave and return None, or return what the full stack should receive."""
        started = time.perf_counter()
        connection: ASGIConnection[Any, Any, Any, Any] = ASGIConnection(scope)
        headers = connection.headers
        if headers.get("content-type", "").partition(";")[0].strip().lower() != _JSON_TYPE:
            return receive
        cookies = connection.cookies
        token = headers.get(self.csrf_header)
        csrf_cookie = cookies.get(self.csrf_cookie)
        # Litestar's own comparison (HMAC-checked, constant time) of the double submit.
        if not token or not csrf_cookie or not self.csrf._csrf_tokens_match(token, csrf_cookie):
            return receive
        signin_id = cookies.get(SIGNIN_COOKIE)
        if not signin_id:
            return receive
        messages, body = await _read_body(receive)
        replay = _replay(messages, receive)
        if body is None or NUL_ESCAPE in body:
            return replay
        try:
            data = msgspec.json.decode(body, type=AutosaveRequest)
        except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
            return replay
        status = 500
        renewed = False
        try:
            try:
                raw = await self.backend.get(signin_id, self._signin_store())
                if raw is None:
                    return replay
                renewed = True
                signin = self.backend.deserialize_data(raw)
                if (
                    not isinstance(signin, dict)
                    or SIGNIN_USER_KEY not in signin
                    or SIGNIN_ORG_KEY not in signin
                    or signin.get("role") != "student"
                    or signin_expired(signin, self.session_absolute_seconds)
                ):
                    return replay
                out = await autosave(
                    self.engine,
                    uuid.UUID(match[1]),
                    uuid.UUID(match[2]),
                    principal_in(signin),
                    answer=data.answer,
                    client_seq=data.client_seq,
                    ip=client_ip(connection),
                    user_agent=user_agent_of(connection),
                    redis=getattr(self.app.state, "redis", None),
                )
            except Exception as exc:
                error = error_for(exc, method="PUT", path=scope["path"])
                status = error.status_code
                payload, extra = error_payload(error)
            else:
                status, payload, extra = 200, msgspec.json.encode(out), []
            if renewed:
                # Reading the sign-in renewed its TTL in the store: the cookie follows.
                cookie = self.backend.cookie_header(signin_id).encode("latin-1")
                extra.append((b"set-cookie", cookie))
            scope["path_template"] = ROUTE
            await send(
                {
                    "type": "http.response.start",
                    "status": status,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(payload)).encode()),
                        # A student's answer: no cache, shared or private, keeps it.
                        (b"cache-control", b"no-store"),
                        *extra,
                        *self.headers,
                    ],
                }
            )
            await send({"type": "http.response.body", "body": payload, "more_body": False})
            return None
        finally:
            if scope.get("path_template") == ROUTE:
                HTTP_REQUESTS.labels(ROUTE, "PUT", str(status)).inc()
                HTTP_LATENCY.labels(ROUTE, "PUT").observe(time.perf_counter() - started)

    def _signin_store(self) -> Store:
        if self._store is None:
            self._store = self.signins.get_store_from_app(self.app)
        return self._store


async def _read_body(receive: Receive) -> tuple[list[HTTPReceiveMessage], bytes | None]:
    """The messages received and the whole body, or None for the body when it is too
    large or the client left first (the full stack then answers as it always does)."""
    messages: list[HTTPReceiveMessage] = []
    chunks: list[bytes] = []
    size = 0
    while True:
        message = cast("HTTPReceiveMessage", await receive())
        messages.append(message)
        if message["type"] != "http.request":
            return messages, None
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_FAST_BODY:
            return messages, None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return messages, b"".join(chunks)


def _replay(messages: list[HTTPReceiveMessage], receive: Receive) -> Receive:
    pending = deque(messages)

    async def replay() -> Any:
        return pending.popleft() if pending else await receive()

    return replay
