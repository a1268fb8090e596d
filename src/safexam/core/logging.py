"""structlog set-up and the per-request ``request_id`` and access line."""

from __future__ import annotations

import asyncio
import logging
import random
import sys
import time
from typing import Any

import msgspec
import structlog
from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from safexam.core.outcome import RequestOutcome
from safexam.core.settings import Settings

__all__ = ["RequestContextMiddleware", "configure_logging"]

_configured = False


def configure_logging(settings: Settings) -> None:
    """JSON lines in production, a readable console in development, for every logger.

    structlog's own loggers render directly (the fast path: one line per
    request). The standard library's loggers (uvicorn, Dramatiq, SQLAlchemy,
    Alembic, asyncio, warnings) go through one root handler whose
    ``ProcessorFormatter`` renders them the same way, with the same
    context (``request_id``, ``job_id``, ``session_id``) bound in contextvars,
    so a log collector reads one format from every process.
    """
    global _configured
    fmt = settings.log_format or ("json" if settings.env == "production" else "console")
    level = logging.getLevelNamesMapping().get(settings.log_level.upper(), logging.INFO)
    renderer: Any = (
        structlog.processors.JSONRenderer(serializer=_json_line)
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
    _configure_standard_logging(renderer, level, json_lines=fmt == "json")
    _configured = True


class _OurHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The root handler :func:`configure_logging` installs (and replaces when called again)."""


def _configure_standard_logging(renderer: Any, level: int, *, json_lines: bool) -> None:
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[
            structlog.contextvars.merge_contextvars,
            structlog.stdlib.add_log_level,
            structlog.stdlib.add_logger_name,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
        ],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
    )
    # sys.stderr as it is now: a Dramatiq worker process points it at the pipe
    # its parent reads, before it imports our broker module (which calls us).
    handler = _OurHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for existing in list(root.handlers):
        # Ours from an earlier call, or a basicConfig() of a library's command
        # line, which would print the same record a second time in its own
        # format. Other handlers (a test runner's capture) stay.
        if isinstance(existing, _OurHandler) or type(existing) is logging.StreamHandler:
            root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level)
    # httpx reports every request at INFO: polling Judge0 would be most of the log.
    logging.getLogger("httpx").setLevel(max(level, logging.WARNING))
    # uvicorn's loggers and Alembic's carry handlers of their own when a
    # dictConfig/fileConfig ran; let them reach the root handler instead.
    # An earlier dictConfig may also have raised their level or disabled them
    # (uvicorn's own, run in this process before); the root's level decides.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "alembic", "sqlalchemy"):
        named = logging.getLogger(name)
        named.handlers.clear()
        named.propagate = True
        named.setLevel(logging.NOTSET)
        named.disabled = False
    # In production, warnings and uncaught exceptions are log lines too
    # (elsewhere they keep their usual form, which test runners rely on).
    logging.captureWarnings(json_lines)
    sys.excepthook = _log_uncaught if json_lines else sys.__excepthook__


def _log_uncaught(kind: type[BaseException], value: BaseException, tb: Any) -> None:
    # An exception no one caught is a log line like any other, not a bare traceback.
    logging.getLogger("safexam").critical("uncaught_exception", exc_info=(kind, value, tb))


access_log = structlog.get_logger("safexam.access")

# msgspec renders a log line several times faster than the json module, and
# every request writes one; what it cannot encode is logged by its str().
_encoder = msgspec.json.Encoder(enc_hook=str)


def _json_line(event: dict[str, Any], **_: Any) -> str:
    return _encoder.encode(event).decode()


def _new_request_id() -> str:
    # Ids only tell requests apart in logs: no need for uuid4's os.urandom call
    # (a system call on every request), the process's PRNG is enough.
    return f"{random.getrandbits(128):032x}"


class RequestContextMiddleware:
    """Bind a ``request_id`` for every log line of a request, echo it back, log one access line.

    A plain ASGI middleware rather than a Litestar hook, so the id is bound
    before any other middleware (sessions, CSRF) can log or fail.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await self.app(scope, receive, send)
            return
        incoming = ""
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                incoming = value.decode("latin-1")
                break
        # Accept a caller's id only if it looks like one, so logs cannot be forged.
        request_id = (
            incoming
            if incoming
            and len(incoming) <= 64
            and incoming.isascii()
            and incoming.replace("-", "").isalnum()
            else _new_request_id()
        )
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode()))
                message["headers"] = headers
            await send(message)

        outcome = RequestOutcome(receive, send_with_id)
        try:
            await self.app(scope, outcome.receive, outcome.send)
        except asyncio.CancelledError:
            outcome.cancelled = True
            raise
        finally:
            route = scope.get("path_template") or scope.get("path", "")
            access_log.info(
                "request",
                method=scope.get("method"),
                path=scope.get("path"),
                route=route,
                status=outcome.status,
                duration_ms=round((time.perf_counter() - started) * 1000, 2),
            )
            structlog.contextvars.clear_contextvars()
