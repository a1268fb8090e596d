"""The Litestar application factory: all wiring happens here, once."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from litestar import Litestar, Router
from litestar.config.csrf import CSRFConfig
from litestar.di import Provide
from litestar.types import ControllerRouterHandler

from safexam import __version__
from safexam.auth.controller import AuthController
from safexam.auth.guards import authenticated, provide_principal
from safexam.auth.signins import signin_config
from safexam.auth.users_controller import UsersController
from safexam.coding.controller import (
    CodingController,
    Judge0CallbackController,
    QuestionTrialController,
)
from safexam.core.db import create_engine, create_sessionmaker
from safexam.core.deps import provide_db, provide_redis, provide_settings
from safexam.core.errors import exception_handlers
from safexam.core.http import API_PREFIX
from safexam.core.inputs import ApiRequest, refuse_nul_in_url
from safexam.core.logging import RequestContextMiddleware, configure_logging
from safexam.core.openapi import ErrorResponsesPlugin, openapi_config
from safexam.core.redis import SessionStore, create_redis
from safexam.core.settings import Settings, get_settings
from safexam.exams.controller import BankController, ExamController, QuestionController
from safexam.grading.controller import GradingController, session_events
from safexam.integrity.controller import IntegrityController
from safexam.integrity.review_controller import IntegrityReviewController
from safexam.jobs.plugin import pipeline_plugins
from safexam.ops.controller import HealthController
from safexam.ops.jobs_controller import JobController
from safexam.ops.queues_controller import MetricsController, QueuesController
from safexam.orgs.controller import OrganizationController
from safexam.qie.controller import QieController
from safexam.sessions.controller import SessionController
from safexam.sessions.fast_path import AutosaveFastPath
from safexam.sessions.monitor_controller import MonitorController
from safexam.web import (
    SECURITY_HEADERS,
    SecurityHeaders,
    browser_pages,
    template_config,
    web_route_handlers,
)

__all__ = ["create_app"]

CSRF_COOKIE = "safexam_csrf"
CSRF_HEADER = "x-csrf-token"
# Far above any real request (a coding question with its tests is the largest),
# low enough that a flood of huge bodies cannot exhaust memory: 413 beyond it.
MAX_REQUEST_BODY_BYTES = 4 * 1024 * 1024


def route_handlers() -> list[ControllerRouterHandler]:
    """Every controller; each domain contributes its own, the API's below one prefix."""
    api = Router(
        path=API_PREFIX,
        route_handlers=[
            AuthController,
            UsersController,
            OrganizationController,
            QuestionController,
            BankController,
            ExamController,
            SessionController,
            MonitorController,
            IntegrityController,
            IntegrityReviewController,
            JobController,
            GradingController,
            # After the integrity controller: it owns POST on this path.
            session_events,
            CodingController,
            QuestionTrialController,
            Judge0CallbackController,
            QueuesController,
            QieController,
        ],
    )
    # Probes and the Prometheus scrape stay at the root, where operators' tools look;
    # the browser's pages too.
    return [HealthController, api, MetricsController, *web_route_handlers()]


_heap_frozen: list[bool] = []


def freeze_startup_heap() -> None:
    """Leave what start-up built out of every later garbage collection, once per process.

    An API process holds about 140,000 long-lived objects (the app,
    its routes and schemas, SQLAlchemy's mappers); each full collection
    walked them all and stopped the event loop for ~100 ms under exam load,
    every request of the process waiting behind it. Frozen, a full
    collection walks only what was made since (~10 ms). Once per process:
    apps made later (tests make many) are collected as usual.
    """
    if not _heap_frozen:
        gc.collect()
        gc.freeze()
        _heap_frozen.append(True)


def create_app(settings: Settings | None = None) -> Litestar:
    """Build the API. ``settings`` defaults to the environment's."""
    settings = settings or get_settings()
    configure_logging(settings)
    redis = create_redis(settings.redis_url or "redis://127.0.0.1:6379/0")
    engine = create_engine(
        settings.async_database_url,
        connect_timeout=settings.database_connect_timeout_seconds,
        command_timeout=settings.database_command_timeout_seconds,
        pool_timeout=settings.database_pool_timeout_seconds,
    )

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        app.state.settings = settings
        app.state.engine = engine
        app.state.sessionmaker = create_sessionmaker(engine)
        app.state.redis = redis
        freeze_startup_heap()
        try:
            yield
        finally:
            await engine.dispose()
            await redis.aclose()

    signins = signin_config(settings)
    csrf = CSRFConfig(
        secret=settings.secret_key,
        cookie_name=CSRF_COOKIE,
        header_name=CSRF_HEADER,
        cookie_secure=settings.cookie_secure,
        cookie_httponly=True,
        cookie_samesite="strict",
    )
    dependencies: dict[str, Any] = {
        "db": Provide(provide_db),
        "redis": Provide(provide_redis, sync_to_thread=False),
        "settings": Provide(provide_settings, sync_to_thread=False),
        "principal": Provide(provide_principal),
    }
    app = Litestar(
        route_handlers=route_handlers(),
        lifespan=[lifespan],
        middleware=[signins.middleware],
        csrf_config=csrf,
        stores={"sessions": SessionStore(redis, namespace=f"{settings.redis_namespace}:sessions")},
        dependencies=dependencies,
        plugins=[*pipeline_plugins(redis, settings), ErrorResponsesPlugin([authenticated])],
        exception_handlers=browser_pages(exception_handlers),
        template_config=template_config(),
        openapi_config=openapi_config(title="SafeExam API", version=__version__),
        request_max_body_size=MAX_REQUEST_BODY_BYTES,
        request_class=ApiRequest,
        before_request=refuse_nul_in_url,
        debug=False,
        logging_config=None,
    )
    # Accepted autosaves skip the generic stack (sessions/fast_path.py); every
    # other request, refusals of autosaves included, takes it.
    fast_path = AutosaveFastPath(
        app,
        SecurityHeaders(app.asgi_handler),
        engine=engine,
        signins=signins,
        csrf=csrf,
        session_absolute_seconds=settings.session_absolute_seconds,
        headers=SECURITY_HEADERS,
    )
    # Route middleware never sees requests that match no route (404, 405), so the
    # request id wraps the whole ASGI handler: every response carries it.
    app.asgi_handler = RequestContextMiddleware(fast_path)
    return app
