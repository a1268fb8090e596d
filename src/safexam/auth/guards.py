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
    "admin_or_operator",
    "authenticated",
    "educator_or_admin",
    "educator_or_admin_unseen",
    "ensure_owner",
    "ensure_same_organization",
    "operator_only",
    "principal_in",
    "principal_of",
    "provide_principal",
    "require_roles",
    "signin_expired",
    "student_only",
]

#: The key of the user id in a sign-in's record (sign-ins in Redis carry it).
SIGNIN_USER_KEY = "uid"
#: The key of the user's organization id in a sign-in's record.
SIGNIN_ORG_KEY = "org"


class Principal(msgspec.Struct, frozen=True):
    """Who is making the request, as recorded in their sign-in."""

    id: uuid.UUID
    email: str
    name: str
    role: str
    # The tenant every query of this request is scoped to.
    organization_id: uuid.UUID

    @property
    def is_admin(self) -> bool:
        """An administrator of the principal's own organization (never of another)."""
        return self.role == "admin"

    @property
    def is_operator(self) -> bool:
        return self.role == "operator"


def signin_expired(signin: Mapping[str, Any], absolute_seconds: float) -> bool:
    """Whether a sign-in is past its hard cap, however recently it was used.

    Idle expiry is the store's TTL (renewed on access); this is the other limit.
    """
    return time.time() - int(signin.get("iat", 0)) > absolute_seconds


def principal_in(signin: Mapping[str, Any]) -> Principal:
    """The user a sign-in records (it holds ``SIGNIN_USER_KEY``).

    Raises ``KeyError`` for a sign-in made before organizations existed (no
    ``org``): such a sign-in cannot be scoped and must be made again.
    """
    return Principal(
        id=uuid.UUID(signin[SIGNIN_USER_KEY]),
        email=signin["email"],
        name=signin["name"],
        role=signin["role"],
        organization_id=uuid.UUID(signin[SIGNIN_ORG_KEY]),
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
    if SIGNIN_ORG_KEY not in signin:
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
operator_only = require_roles("operator")
admin_or_operator = require_roles("admin", "operator")


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


def ensure_same_organization(
    organization_id: uuid.UUID | None, principal: Principal, what: str = "object"
) -> None:
    """404 unless the object belongs to the principal's organization."""
    if organization_id != principal.organization_id:
        raise NotFound(f"{what} not found")


def ensure_owner(
    owner_id: uuid.UUID | None,
    principal: Principal,
    what: str = "object",
    *,
    organization_id: uuid.UUID | None,
) -> None:
    """404 unless the object is in the principal's organization and theirs, or they administer it.

    The organization is checked first and for everyone: an administrator of
    one organization is a stranger to every other.
    """
    ensure_same_organization(organization_id, principal, what)
    if principal.is_admin:
        return
    if owner_id != principal.id:
        raise NotFound(f"{what} not found")


# ``principal: CurrentUser`` in a handler: the signed-in user (guards run first).
CurrentUser = NamedDependency[Principal]
