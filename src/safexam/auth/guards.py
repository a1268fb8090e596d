"""Role and ownership guards used by every protected route.

401 when nobody is signed in, 403 when the role is wrong, and 404 (never 403)
for an object that exists but belongs to someone else, so ids cannot be probed.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import msgspec
from litestar.connection import ASGIConnection
from litestar.di import NamedDependency
from litestar.handlers.base import BaseRouteHandler
from litestar.types import Empty

from safexam.core.errors import Forbidden, NotAuthenticated, NotFound

__all__ = [
    "CurrentUser",
    "Principal",
    "admin_only",
    "authenticated",
    "educator_or_admin",
    "educator_or_admin_unseen",
    "ensure_owner",
    "principal_in",
    "principal_of",
    "provide_principal",
    "require_roles",
    "signin_expired",
    "student_only",
]

#: The key of the user id in a sign-in's record (sign-ins in Redis carry it).
SIGNIN_USER_KEY = "uid"


class Principal(msgspec.Struct, frozen=True):
    """Who is making the request, as recorded in their sign-in."""

    id: uuid.UUID
    email: str
    name: str
    role: str

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


def signin_expired(signin: Mapping[str, Any], absolute_seconds: float) -> bool:
    """Whether a sign-in is past its hard cap, however recently it was used.

    Idle expiry is the store's TTL (renewed on access); this is the other limit.
    """
    return time.time() - int(signin.get("iat", 0)) > absolute_seconds


def principal_in(signin: Mapping[str, Any]) -> Principal:
    """The user a sign-in records (it holds ``SIGNIN_USER_KEY``)."""
    return Principal(
        id=uuid.UUID(signin[SIGNIN_USER_KEY]),
        email=signin["email"],
        name=signin["name"],
        role=signin["role"],
    )


def _principal_from(connection: ASGIConnection[Any, Any, Any, Any]) -> Principal:
    cached = connection.scope.get("state", {}).get("safexam.principal")
    if isinstance(cached, Principal):
        return cached
    signin = connection.scope.get("session")
    if not isinstance(signin, dict) or SIGNIN_USER_KEY not in signin:
        raise NotAuthenticated("Sign in first")
    if signin_expired(signin, connection.app.state.settings.session_absolute_seconds):
        # Empty (not {}) makes the sign-in middleware delete the record in Redis.
        connection.scope["session"] = Empty
        raise NotAuthenticated("Your session has expired; sign in again", code="session_expired")
    principal = principal_in(signin)
    connection.scope.setdefault("state", {})["safexam.principal"] = principal
    return principal


# Guards are coroutines: Litestar runs a plain-function guard in a worker thread,
# a thread hop on every protected request (the autosave path included).
async def authenticated(
    connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler
) -> None:
    _principal_from(connection)


def require_roles(
    *roles: str,
) -> Callable[[ASGIConnection[Any, Any, Any, Any], BaseRouteHandler], Awaitable[None]]:
    allowed = frozenset(roles)

    async def guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        principal = _principal_from(connection)
        if principal.role not in allowed:
            raise Forbidden(
                f"This action needs the role {' or '.join(sorted(allowed))}",
                code="wrong_role",
                details={"allowed_roles": sorted(allowed)},
            )

    return guard


student_only = require_roles("student")
educator_or_admin = require_roles("educator", "admin")
admin_only = require_roles("admin")


async def educator_or_admin_unseen(
    connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler
) -> None:
    """Staff only, and to a student the route does not exist: 404, not 403.

    For what a student must not learn exists at all (the integrity review).
    """
    principal = _principal_from(connection)
    if principal.role not in ("educator", "admin"):
        raise NotFound("not found")


async def provide_principal(request: ASGIConnection[Any, Any, Any, Any]) -> Principal:
    return _principal_from(request)


def principal_of(connection: ASGIConnection[Any, Any, Any, Any]) -> Principal:
    """The signed-in user, for handlers that take no ``principal`` dependency."""
    return _principal_from(connection)


def ensure_owner(owner_id: uuid.UUID | None, principal: Principal, what: str = "object") -> None:
    """404 unless the principal owns the object or is an admin."""
    if principal.is_admin:
        return
    if owner_id != principal.id:
        raise NotFound(f"{what} not found")


# ``principal: CurrentUser`` in a handler: the signed-in user (guards run first).
CurrentUser = NamedDependency[Principal]
