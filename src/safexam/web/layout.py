"""The page shell: the template engine, what every page's template can use, and
:func:`page`, which every handler returns.

Templates extend ``base.html`` (skip link, banner with the signed-in user and
Sign out, ``main``, footer). They get ``user`` (the signed-in
:class:`Principal` or None), ``csrf_token()`` for forms, ``asset(name)`` for
static files under their hashed names, the filters of :mod:`safexam.web.wording`,
and ``markdown`` (:mod:`safexam.web.markdown`: ``{{ question.prompt | markdown }}``).
Autoescaping is on for every template.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from litestar import MediaType, Request, Response
from litestar.connection import ASGIConnection
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.response import Template
from litestar.template.config import TemplateConfig
from litestar.utils.scope.state import ScopeState
from sqlalchemy.ext.asyncio import AsyncSession

from safexam.auth.guards import Principal, principal_of
from safexam.core.errors import ApiError
from safexam.web import wording
from safexam.web.assets import assets
from safexam.web.headers import CACHE_PRIVATE
from safexam.web.markdown import markdown_filter

__all__ = [
    "TEMPLATES_DIR",
    "current_user",
    "done_reading",
    "page",
    "render_page",
    "render_public",
    "template_config",
]

TEMPLATES_DIR = Path(__file__).parent / "templates"


def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        autoescape=select_autoescape(default=True, default_for_string=True),
        # A misspelt variable fails the page's test instead of rendering empty.
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals["asset"] = assets.url
    env.filters.update(wording.FILTERS)
    env.filters["markdown"] = markdown_filter
    return env


_engine = JinjaTemplateEngine.from_environment(_environment())


def template_config() -> TemplateConfig[JinjaTemplateEngine]:
    """The app's template configuration (Jinja, autoescaped, templates beside this module)."""
    return TemplateConfig(instance=_engine)


def current_user(connection: ASGIConnection[Any, Any, Any, Any]) -> Principal | None:
    """The signed-in user, or None (an expired sign-in counts as none)."""
    try:
        return principal_of(connection)
    except ApiError:
        return None


def _csrf_token(connection: ASGIConnection[Any, Any, Any, Any]) -> str:
    token = ScopeState.from_scope(connection.scope).csrf_token
    return "" if token is None else str(token)


def _context(
    connection: ASGIConnection[Any, Any, Any, Any], context: dict[str, Any]
) -> dict[str, Any]:
    return {
        "user": current_user(connection),
        "csrf": _csrf_token(connection),
        "title": "",
        **context,
    }


async def done_reading(db: AsyncSession) -> None:
    """Give the request's database connection back before the page renders.

    The request's session would otherwise keep its connection until the
    response is sent, and rendering a page (Markdown, highlighted code) takes
    longer than reading it; at the start of an exam hundreds of pages render at
    once, and the autosaves that need a connection then would wait behind them.
    The session stays usable: a later read takes a connection again.
    """
    await db.close()


def page(
    request: Request[Any, Any, Any],
    template: str,
    *,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
    **context: Any,
) -> Template:
    """A page rendered from ``template``; never cached (every page may show someone's data)."""
    return Template(
        template_name=template,
        context=_context(request, context),
        status_code=status_code,
        media_type=MediaType.HTML,
        headers={"Cache-Control": CACHE_PRIVATE, **(headers or {})},
    )


def render_page(
    connection: ASGIConnection[Any, Any, Any, Any],
    template: str,
    *,
    status_code: int,
    headers: dict[str, str] | None = None,
    **context: Any,
) -> Response[str]:
    """Like :func:`page`, rendered at once: for exception handlers, which may run
    where no route matched and a :class:`Template` response cannot be resolved."""
    body = _engine.get_template(template).render(
        request=connection, **_context(connection, context)
    )
    return Response(
        body,
        status_code=status_code,
        media_type=MediaType.HTML,
        headers={"Cache-Control": CACHE_PRIVATE, **(headers or {})},
    )


def render_public(template: str, **context: Any) -> str:
    """A page that is the same for everyone: no user, no form token, nothing per request.

    Such a page may be kept by shared caches, so nothing of the request reaches
    it: a visitor's page and a signed-in user's are the same bytes.
    """
    return _engine.get_template(template).render(
        **{"user": None, "csrf": "", "title": "", **context}
    )
