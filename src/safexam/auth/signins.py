"""Sign-ins: who a browser is signed in as, kept in Redis behind a cookie.

Litestar calls this a server-side session; here "session" means an exam
session, so the record of a signed-in user is a sign-in. The names the
outside world holds stay as they were, so that browsers and Redis keep their
sign-ins across an upgrade: the cookie ``safexam_session``, the store
``sessions`` and its keys, and the ``SAFEXAM_SESSION_*`` settings.

A fresh sign-in id is issued at every sign-in. Litestar keeps the id from the
incoming cookie; rotating it at login closes session fixation (an id planted
before sign-in is useless after it).

Each user's sign-in ids are also kept in a Redis set (:func:`index_signin`),
so that "sign out everywhere" (:func:`revoke_all_signins`) can delete every
one of them; the set lives as long as the newest sign-in can (the absolute
lifetime), and ids of sign-ins that ended since are harmless in it.

The sign-in is written to Redis as the response starts, after the handler:
if Redis is down then, the response becomes a 503 ``redis_unavailable``
(the client retries) instead of a broken connection.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from litestar.connection import ASGIConnection
from litestar.datastructures import Cookie, MutableScopeHeaders
from litestar.middleware.base import DefineMiddleware
from litestar.middleware.session.base import SessionMiddleware
from litestar.middleware.session.server_side import (
    ServerSideSessionBackend,
    ServerSideSessionConfig,
)
from litestar.stores.base import Store
from litestar.types import Empty, Message, ScopeSession, Send
from litestar.utils.dataclass import extract_dataclass_items
from redis.asyncio import Redis

from safexam.core.errors import error_payload, unavailable, unavailable_dependency
from safexam.core.settings import Settings

__all__ = [
    "ROTATE_FLAG",
    "SIGNIN_COOKIE",
    "SignInBackend",
    "SignInConfig",
    "index_signin",
    "new_signin_id",
    "revoke_all_signins",
    "signin_config",
]

#: Set in the request scope by a sign-in: the response gets a new id.
ROTATE_FLAG = "safexam.rotate_signin"
#: The cookie browsers already hold: renaming it would sign everyone out.
SIGNIN_COOKIE = "safexam_session"
_NEW_ID = "safexam.new_signin_id"
_LOADED = "safexam.signin_loaded"
COOKIE_CACHE_SIZE = 50_000
# Litestar's own size for a server-side session id (ServerSideSessionConfig.session_id_bytes).
SIGNIN_ID_BYTES = 32

log = structlog.get_logger(__name__)


def new_signin_id(connection: ASGIConnection[Any, Any, Any, Any]) -> str:
    """Give this response's sign-in a fresh id, and return it.

    The id is chosen now, not when the response is written, so that a sign-in
    can be indexed under its user (:func:`index_signin`) before it exists.
    """
    state = connection.scope.setdefault("state", {})
    state[ROTATE_FLAG] = True
    new_id: str = state.get(_NEW_ID) or secrets.token_hex(SIGNIN_ID_BYTES)
    state[_NEW_ID] = new_id
    return new_id


def _index_key(namespace: str, user_id: uuid.UUID) -> str:
    return f"{namespace}:signins_of:{user_id}"


async def index_signin(
    redis: Redis, namespace: str, user_id: uuid.UUID, signin_id: str, lifetime_seconds: int
) -> None:
    """Note ``signin_id`` as one of the user's sign-ins, for :func:`revoke_all_signins`.

    ``lifetime_seconds`` is the absolute lifetime of a sign-in: no sign-in in
    the set outlives it, so the set may expire that long after its newest one.
    """
    key = _index_key(namespace, user_id)
    async with redis.pipeline(transaction=True) as pipe:
        pipe.sadd(key, signin_id)
        pipe.expire(key, lifetime_seconds)
        await pipe.execute()


async def revoke_all_signins(redis: Redis, store: Store, namespace: str, user_id: uuid.UUID) -> int:
    """End every sign-in of the user, on every browser; returns how many were listed.

    The set is read and removed in one transaction, so a sign-in starting
    meanwhile is either revoked here or stays listed for the next time.
    """
    key = _index_key(namespace, user_id)
    async with redis.pipeline(transaction=True) as pipe:
        pipe.smembers(key)
        pipe.delete(key)
        members, _ = await pipe.execute()
    ids = sorted(m.decode() if isinstance(m, bytes) else str(m) for m in members)
    for signin_id in ids:
        # Through the store: it also forgets this process's fallback copy.
        await store.delete(signin_id)
    log.info("signins_revoked", user_id=str(user_id), count=len(ids))
    return len(ids)


class SignInBackend(ServerSideSessionBackend):
    def get_session_id(self, connection: ASGIConnection[Any, Any, Any, Any]) -> str:
        state = connection.scope.setdefault("state", {})
        if state.get(ROTATE_FLAG):
            # Called more than once per response; the new id must stay the same.
            new_id = state.get(_NEW_ID) or self.generate_session_id()
            state[_NEW_ID] = new_id
            return str(new_id)
        return super().get_session_id(connection)

    async def store_in_message(
        self,
        scope_session: ScopeSession,
        message: Message,
        connection: ASGIConnection[Any, Any, Any, Any],
    ) -> None:
        # Litestar stores an empty dict as a sign-in, so every anonymous request
        # (probes, the CSRF fetch) would write a Redis key and hand out a cookie,
        # and /healthz would fail whenever Redis does. An empty sign-in is none:
        # skip it, or delete it if the browser still points at one.
        if scope_session is not Empty and not scope_session:
            if not connection.cookies.get(self.config.key):
                return
            scope_session = Empty
        state = connection.scope.setdefault("state", {})
        if (
            scope_session is not Empty
            and not state.get(ROTATE_FLAG)
            and state.get(_LOADED) == self.serialize_data(scope_session, connection.scope)
        ):
            # Unchanged sign-in: reading it already renewed its TTL in Redis
            # (renew_on_access), so writing it back would only add a round trip
            # to every request, autosaves included. The cookie is still refreshed.
            headers = MutableScopeHeaders.from_message(message)
            headers.add("Set-Cookie", self.cookie_header(self.get_session_id(connection)))
            return
        await super().store_in_message(scope_session, message, connection)

    def cookie_header(self, signin_id: str) -> str:
        # The header only depends on the sign-in id (Max-Age is relative), and
        # rendering it through http.cookies took a tenth of an autosave's CPU:
        # rendered once per sign-in and kept, within a bound.
        cache: dict[str, str] = self.__dict__.setdefault("_cookie_headers", {})
        header = cache.get(signin_id)
        if header is None:
            if len(cache) >= COOKIE_CACHE_SIZE:
                cache.clear()
            cookie_params = dict(
                extract_dataclass_items(
                    self.config, exclude_none=True, include=Cookie.__dict__.keys()
                )
            )
            header = Cookie(value=signin_id, key=self.config.key, **cookie_params).to_header(
                header=""
            )
            cache[signin_id] = header
        return header

    async def load_from_connection(
        self, connection: ASGIConnection[Any, Any, Any, Any]
    ) -> dict[str, Any]:
        if signin_id := connection.cookies.get(self.config.key):
            store = self.config.get_store_from_app(connection.scope["app"])
            data = await self.get(signin_id, store=store)
            if data is not None:
                connection.scope.setdefault("state", {})[_LOADED] = data
                loaded: dict[str, Any] = self.deserialize_data(data)
                return loaded
        return {}


async def _send_unavailable(send: Send, code: str) -> None:
    error = unavailable(code)
    body, headers = error_payload(error)
    await send(
        {
            "type": "http.response.start",
            "status": error.status_code,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body, "more_body": False})


class _SignInMiddleware(SessionMiddleware[SignInBackend]):
    def create_send_wrapper(
        self, connection: ASGIConnection[Any, Any, Any, Any]
    ) -> Callable[[Message], Awaitable[None]]:
        replaced = False

        async def wrapped_send(message: Message) -> None:
            nonlocal replaced
            if replaced:
                return  # the body of the response the 503 replaced
            if message["type"] != "http.response.start":
                await connection.send(message)
                return
            try:
                await self.backend.store_in_message(
                    connection.scope.get("session"), message, connection
                )
            except Exception as exc:
                # Too late for the exception handlers (the response has
                # started as far as Litestar knows), not too late for a 503.
                code = unavailable_dependency(exc)
                if code is None:
                    raise
                replaced = True
                log.warning("session_not_stored", code=code, error=f"{exc!r}"[:200])
                await _send_unavailable(connection.send, code)
                return
            await connection.send(message)

        return wrapped_send


class SignInConfig(ServerSideSessionConfig):
    _backend_class = SignInBackend

    @property
    def middleware(self) -> DefineMiddleware:
        return DefineMiddleware(_SignInMiddleware, backend=self._backend_class(config=self))


def signin_config(settings: Settings) -> SignInConfig:
    return SignInConfig(
        key=SIGNIN_COOKIE,
        max_age=settings.session_idle_seconds,
        renew_on_access=True,
        secure=settings.cookie_secure,
        httponly=True,
        samesite="strict",
        store="sessions",
    )
