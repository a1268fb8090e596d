"""One JSON error shape for every 4xx and 5xx: ``{"error": {"code", "message", "details"}}``.

Domain code raises :class:`ApiError` (or a subclass) with a stable ``code`` that
clients can branch on; Litestar's own exceptions are translated here so the
shape never varies, and anything unexpected becomes a logged 500 without leaking
internals.

An outage of PostgreSQL or Redis is not a bug: wherever it surfaces (a
handler, a dependency, the session middleware), it becomes a 503 with
``Retry-After`` and the code ``database_unavailable``, ``database_busy`` or
``redis_unavailable`` (see :func:`unavailable_dependency`), so clients retry
instead of reporting an internal error.
"""

from __future__ import annotations

import re
import traceback
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import msgspec
import structlog
from litestar import MediaType, Request, Response
from litestar.exceptions import HTTPException, SerializationException, ValidationException
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import InterfaceError as SAInterfaceError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

__all__ = [
    "ApiError",
    "Conflict",
    "Forbidden",
    "NotAuthenticated",
    "NotFound",
    "RateLimited",
    "ServiceUnavailable",
    "Unprocessable",
    "error_body",
    "error_for",
    "error_payload",
    "exception_handlers",
    "unavailable",
    "unavailable_dependency",
]

log = structlog.get_logger(__name__)

_CODES = {
    400: "bad_request",
    401: "not_authenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
    503: "service_unavailable",
}


class ApiError(Exception):
    """An error the client should see, with a stable machine-readable code."""

    status_code: int = 400
    code: str = "bad_request"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        details: Any = None,
        status_code: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if status_code is not None:
            self.status_code = status_code
        self.details = details
        self.headers = headers or {}


class NotAuthenticated(ApiError):
    status_code = 401
    code = "not_authenticated"


class Forbidden(ApiError):
    status_code = 403
    code = "forbidden"


class NotFound(ApiError):
    status_code = 404
    code = "not_found"


class Conflict(ApiError):
    status_code = 409
    code = "conflict"


class Unprocessable(ApiError):
    status_code = 422
    code = "validation_error"

    def __init__(self, message: str, *, field: str | None = None, **kwargs: Any) -> None:
        if field is not None and "details" not in kwargs:
            kwargs["details"] = [{"field": field, "message": message}]
        super().__init__(message, **kwargs)


class RateLimited(ApiError):
    status_code = 429
    code = "rate_limited"

    def __init__(self, message: str, *, retry_after: int, **kwargs: Any) -> None:
        retry_after = max(1, retry_after)
        super().__init__(
            message,
            details={"retry_after": retry_after},
            headers={"Retry-After": str(retry_after)},
            **kwargs,
        )


class ServiceUnavailable(ApiError):
    """503 with ``Retry-After``: a dependency is down or saturated; the request may be retried."""

    status_code = 503
    code = "service_unavailable"

    def __init__(self, message: str, *, retry_after: int = 5, **kwargs: Any) -> None:
        retry_after = max(1, retry_after)
        super().__init__(
            message,
            details={"retry_after": retry_after},
            headers={"Retry-After": str(retry_after)},
            **kwargs,
        )


# --- dependencies that are down -------------------------------------------------

#: SQLSTATEs of a database that cannot serve now: connection exceptions (08),
#: insufficient resources (53, e.g. too many connections), shutting down or
#: starting up (57P01-57P03).
_DB_DOWN_SQLSTATES = ("08", "53", "57P")
#: SQLSTATEs of a request that lost a race or waited too long: serialization
#: failure, deadlock, lock not available, statement cancelled (timeout).
_DB_BUSY_SQLSTATES = ("40001", "40P01", "55P03", "57014")

#: Seconds a client should wait before retrying, by code. Short: PostgreSQL and
#: Redis restarts take seconds, and an autosave retried late is an answer at risk.
_RETRY_AFTER = {"database_unavailable": 3, "database_busy": 1, "redis_unavailable": 2}
_MESSAGES = {
    "database_unavailable": "The database is unavailable; retry shortly",
    "database_busy": "The database is busy; retry shortly",
    "redis_unavailable": "The session and messaging store (Redis) is unavailable; retry shortly",
}


def _sqlstate(exc: BaseException) -> str | None:
    for candidate in (exc, getattr(exc, "orig", None), getattr(exc, "__cause__", None)):
        code = getattr(candidate, "sqlstate", None) or getattr(candidate, "pgcode", None)
        if isinstance(code, str):
            return code
    return None


def _by_sqlstate(code: str) -> str | None:
    if code.startswith(_DB_DOWN_SQLSTATES):
        return "database_unavailable"
    if code.startswith(_DB_BUSY_SQLSTATES):
        return "database_busy"
    return None


def _raised_by_database_driver(exc: BaseException) -> bool:
    # asyncpg lets socket errors (refused, reset, timed out) through unwrapped
    # when it opens a connection; only the traceback says where they came from.
    for frame, _ in traceback.walk_tb(exc.__traceback__):
        module = str(frame.f_globals.get("__name__", ""))
        if module.startswith(("asyncpg", "sqlalchemy")):
            return True
    return False


def _driver_misuse(exc: BaseException | None) -> bool:
    """asyncpg errors without a SQLSTATE that are our own mistakes, not an outage.

    asyncpg raises InterfaceError both for a connection it lost and for a
    query called wrongly (argument count, a value it cannot encode); the
    latter must stay a 500, not pass for an outage that clients retry.
    """
    if exc is None:
        return False
    return isinstance(exc, asyncpg.DataError) or "argument" in str(exc).lower()


def _classify(exc: BaseException) -> str | None:
    if isinstance(exc, RedisConnectionError | RedisTimeoutError):
        return "redis_unavailable"
    if isinstance(exc, PoolTimeoutError):
        return "database_busy"
    if isinstance(exc, DBAPIError):
        if exc.connection_invalidated:
            return "database_unavailable"
        code = _sqlstate(exc)
        if code is not None:
            return _by_sqlstate(code)
        # No SQLSTATE: the driver lost or could not use its connection.
        if isinstance(exc, SAInterfaceError) or isinstance(exc.orig, OSError):
            return None if _driver_misuse(exc.orig) else "database_unavailable"
        return None
    if type(exc).__module__.startswith("asyncpg"):
        # Raw driver errors: while connecting (before SQLAlchemy wraps
        # anything) or on the raw autosave path.
        code = _sqlstate(exc)
        if code is not None:
            return _by_sqlstate(code)
        return None if _driver_misuse(exc) else "database_unavailable"
    if isinstance(exc, OSError) and _raised_by_database_driver(exc):
        return "database_unavailable"
    return None


def unavailable_dependency(exc: BaseException) -> str | None:
    """``database_unavailable``, ``database_busy`` or ``redis_unavailable`` when ``exc``
    (or what it was raised from) means a dependency cannot serve now; else None.

    Integrity errors, bad SQL and every other bug stay None (a 500): only
    faults that a retry can cure become 503. Only explicit chains (``raise
    ... from``) are followed: a bug raised while handling an outage is a bug.
    """
    current: BaseException | None = exc
    for _ in range(8):
        if current is None:
            break
        code = _classify(current)
        if code is not None:
            return code
        current = current.__cause__
    return None


def unavailable(code: str) -> ServiceUnavailable:
    """The 503 to answer for a dependency fault classified as ``code``."""
    return ServiceUnavailable(_MESSAGES[code], code=code, retry_after=_RETRY_AFTER[code])


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details}}


def error_payload(error: ApiError) -> tuple[bytes, list[tuple[bytes, bytes]]]:
    """The JSON body of ``error`` and its own headers (``Retry-After``), for code that
    answers in raw ASGI messages, past Litestar's exception handlers."""
    body = msgspec.json.encode(error_body(error.code, error.message, error.details))
    return body, [(k.lower().encode(), v.encode()) for k, v in error.headers.items()]


def _json(
    status: int, code: str, message: str, details: Any, headers: dict[str, str] | None = None
) -> Response[Any]:
    return Response(
        content=error_body(code, message, details),
        status_code=status,
        media_type=MediaType.JSON,
        headers=headers,
    )


def _field_from_key(key: str) -> str:
    return key.removeprefix("$.") if key else key


# msgspec names a missing or unknown field only inside the message; the key is its parent.
_FIELD_IN_MESSAGE = re.compile(r"(?:missing required field|unknown field) `([^`]+)`")
# Litestar's key for the request body as a whole (the handler's ``data`` parameter).
_BODY_KEY = "data"


def _validation_details(extra: Any) -> list[dict[str, Any]]:
    details: list[dict[str, Any]] = []
    if isinstance(extra, list):
        for item in extra:
            if isinstance(item, dict):
                message = str(item.get("message", ""))
                key = str(item.get("key") or "")
                field = _field_from_key(key)
                source = item.get("source")
                if source == "body" and field == _BODY_KEY:
                    field = ""
                # msgspec reports the path inside the message ("at `$.body.answer`").
                if "`$." in message:
                    start = message.index("`$.") + 3
                    end = message.find("`", start)
                    field = message[start:end] if end > start else field
                    message = (
                        message[: message.index(" - at `$.")] if " - at `$." in message else message
                    )
                named = _FIELD_IN_MESSAGE.search(message)
                if named:
                    field = f"{field}.{named.group(1)}" if field else named.group(1)
                details.append({"field": field or None, "source": source, "message": message})
    return details


def _is_missing_body(extra: Any) -> bool:
    # No body at all surfaces as a KeyError on the body parameter: "'data'".
    return isinstance(extra, list) and any(
        isinstance(item, dict) and item.get("message") == f"'{_BODY_KEY}'" for item in extra
    )


def _handle_validation(request: Request[Any, Any, Any], exc: ValidationException) -> Response[Any]:
    detail = exc.detail or "Validation failed"
    lowered = detail.lower()
    if "malformed" in lowered or "json is malformed" in lowered or "decode" in lowered:
        return _json(400, "malformed_json", "The request body is not valid JSON", None)
    if _is_missing_body(exc.extra):
        return _json(400, "malformed_json", "The request body is empty; send a JSON object", None)
    details = _validation_details(exc.extra)
    fields = [d["field"] for d in details if d.get("field")]
    message = f"Invalid value for {', '.join(fields)}" if fields else "Invalid request body"
    if details and details[0].get("message"):
        message = f"{message}: {details[0]['message']}"
    return _json(422, "validation_error", message, details)


def _handle_http(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    if isinstance(exc, ValidationException):
        return _handle_validation(request, exc)
    status = exc.status_code
    code = _CODES.get(status, "error")
    detail = exc.detail
    if status == 400 and (
        isinstance(exc.__cause__, SerializationException) or "malformed" in detail.lower()
    ):
        # Litestar turns a body that does not decode into a plain 400.
        code = "malformed_json"
        detail = f"The request body is not valid JSON: {exc.__cause__ or detail}"
    if status == 403 and "csrf" in detail.lower():
        code = "csrf_failed"
        detail = "Missing or invalid X-CSRF-Token header; fetch one from GET /api/v1/auth/csrf"
    if status == 404 and detail == "Not Found":
        detail = f"No route for {request.method} {request.url.path}"
    extra = exc.extra or None
    if status == 413:
        limit = request.route_handler.resolve_request_max_body_size()
        detail = f"The request body is larger than the {limit} bytes this endpoint accepts"
        extra = {"max_bytes": limit}
    headers = dict(exc.headers) if exc.headers else None
    return _json(status, code, detail, extra, headers)


def _handle_api(request: Request[Any, Any, Any], exc: ApiError) -> Response[Any]:
    return _json(exc.status_code, exc.code, exc.message, exc.details, exc.headers or None)


def error_for(exc: Exception, *, method: str, path: str) -> ApiError:
    """What the client is told about ``exc``: itself if it is an :class:`ApiError`,
    a 503 for a dependency that cannot serve now, else a logged 500 that
    reveals nothing of the failure.

    Call it while handling ``exc`` (the 500 logs its traceback).
    """
    if isinstance(exc, ApiError):
        return exc
    code = unavailable_dependency(exc)
    if code is not None:
        # Expected during an outage: one line, no traceback per request.
        log.warning(
            "dependency_unavailable",
            code=code,
            path=path,
            method=method,
            error=f"{type(exc).__name__}: {exc}"[:300],
        )
        return unavailable(code)
    log.exception("unhandled_error", path=path, method=method)
    return ApiError(
        "Internal server error", code="internal_error", status_code=HTTP_500_INTERNAL_SERVER_ERROR
    )


def _handle_unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    return _handle_api(request, error_for(exc, method=request.method, path=request.url.path))


exception_handlers: dict[type[Exception] | int, Any] = {
    ApiError: _handle_api,
    HTTPException: _handle_http,
    Exception: _handle_unexpected,
}
