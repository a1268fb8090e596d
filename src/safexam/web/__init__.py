"""The browser: server-rendered pages over the same services as the JSON API.

One router per audience (students at the root, educators under ``/educator``,
operators under ``/operator``), each guarded once at the router, each page a template under
``templates/`` with its behaviour in ES modules under ``static/``. This package
runs no SQL of its own, and no domain imports it.
"""

from __future__ import annotations

from litestar import Router
from litestar.types import ControllerRouterHandler

from safexam.auth.guards import admin_or_operator, educator_or_admin, educator_or_admin_unseen
from safexam.web.assets import static_file
from safexam.web.educator import educator_controllers
from safexam.web.educator.integrity import IntegrityPageController
from safexam.web.errors import browser_pages, page_exception_handlers
from safexam.web.front import FrontDoorController, pwa_handlers
from safexam.web.headers import SECURITY_HEADERS, SecurityHeaders
from safexam.web.layout import template_config
from safexam.web.operator import operator_controllers
from safexam.web.student import (
    AccountController,
    SignInController,
    StudentExamsController,
    StudentReviewController,
)
from safexam.web.student.join import JoinController

__all__ = [
    "SECURITY_HEADERS",
    "SecurityHeaders",
    "browser_pages",
    "template_config",
    "web_route_handlers",
]


def web_route_handlers() -> list[ControllerRouterHandler]:
    """The pages (whose errors are pages too) and the static files."""
    pages = Router(
        path="/",
        route_handlers=[
            FrontDoorController,
            SignInController,
            JoinController,
            AccountController,
            StudentExamsController,
            StudentReviewController,
            Router(
                path="/educator",
                guards=[educator_or_admin],
                route_handlers=educator_controllers(),
            ),
            # The integrity review: a student is told it does not exist (404, not 403).
            Router(
                path="/educator",
                guards=[educator_or_admin_unseen],
                route_handlers=[IntegrityPageController],
            ),
            # Each controller under /operator narrows this to operators (the
            # deployment's queues) or to org admins (their organization's people).
            Router(
                path="/operator",
                guards=[admin_or_operator],
                route_handlers=operator_controllers(),
            ),
        ],
        exception_handlers=page_exception_handlers(),
        include_in_schema=False,
    )
    return [pages, static_file, *pwa_handlers()]
