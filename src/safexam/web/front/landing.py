"""The landing page at ``/`` and the "Talk to us" form.

``/`` is the front door for everyone: a visitor (no sign-in cookie) gets the
landing page, which is the same bytes for every visitor and may be kept by
browsers and shared caches (``Vary: Cookie`` keeps a signed-in user's request
from being answered with it); a signed-in user is sent on to their own pages
as before.

The landing page sets no cookie, so it carries no form: a CSRF token needs
the cookie it is checked against (the app's double-submit scheme), and a token
in a page that shared caches keep would be one token for every visitor. The
form lives on its own page, ``/talk-to-us``, which is private like every page
with a form and gets its token and cookie like the others; the landing page
links to it.
"""

from __future__ import annotations

import functools
from typing import Annotated, Any

from litestar import Controller, Request, Response, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromQuery
from litestar.response import Redirect, Template

from safexam.auth.signins import SIGNIN_COOKIE
from safexam.core.deps import DB, RedisDep, SettingsDep
from safexam.core.errors import RateLimited, Unprocessable
from safexam.core.http import client_ip
from safexam.onboarding.models import SIZES
from safexam.onboarding.service import MAX_MESSAGE, MAX_NAME, OnboardingIn, request_onboarding
from safexam.web import wording
from safexam.web.forms import field_errors, form_problem
from safexam.web.front.caching import PublicBody, public_body, public_response
from safexam.web.headers import CACHE_PRIVATE
from safexam.web.layout import current_user, page, render_public

__all__ = [
    "HOME_OF_OPERATORS",
    "HOME_OF_STAFF",
    "HOME_OF_STUDENTS",
    "LANDING_CACHE",
    "TALK_PATH",
    "FrontDoorController",
    "landing_body",
]

HOME_OF_STUDENTS = "/exams"
HOME_OF_STAFF = "/educator/exams"
HOME_OF_OPERATORS = "/operator/queues"
TALK_PATH = "/talk-to-us"
#: Five minutes in a browser, an hour in a shared cache, and a day of serving
#: the old copy while a fresh one is fetched: the page changes with a release.
LANDING_CACHE = "public, max-age=300, s-maxage=3600, stale-while-revalidate=86400"

SIZE_LABELS: dict[str, str] = {
    "under_100": "Fewer than 100 students",
    "100_to_1000": "100 to 1,000 students",
    "1000_to_10000": "1,000 to 10,000 students",
    "over_10000": "More than 10,000 students",
}
assert tuple(SIZE_LABELS) == SIZES


@functools.cache
def landing_body() -> PublicBody:
    """The landing page: nothing of the request is in it, so it is rendered once."""
    return public_body(
        render_public(
            "front/landing.html", title="Online exams for colleges and clubs", landing=True
        ).encode()
    )


def _talk_page(
    request: Request[Any, Any, Any],
    *,
    form: OnboardingIn | None = None,
    errors: dict[str, str] | None = None,
    problem: str | None = None,
    sent: bool = False,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> Template:
    return page(
        request,
        "front/talk.html",
        title="Talk to us",
        form=form or OnboardingIn(),
        errors=errors or {},
        problem=problem,
        sent=sent,
        sizes=[("", "Choose one"), *SIZE_LABELS.items()],
        max_name=MAX_NAME,
        max_message=MAX_MESSAGE,
        status_code=status_code,
        headers=headers,
    )


class FrontDoorController(Controller):
    path = "/"
    include_in_schema = False

    @get("/", opt={"exclude_from_csrf": True})
    async def home(self, request: Request[Any, Any, Any]) -> Response[bytes] | Redirect:
        """The landing page for visitors; students and staff go on to their own pages."""
        user = current_user(request)
        if user is not None:
            home = {"student": HOME_OF_STUDENTS, "operator": HOME_OF_OPERATORS}.get(
                user.role, HOME_OF_STAFF
            )
            return Redirect(
                home, status_code=303, headers={"Cache-Control": CACHE_PRIVATE, "Vary": "Cookie"}
            )
        if SIGNIN_COOKIE in request.cookies:
            # A sign-in that has ended: the answer deletes its cookie, and an
            # answer that sets a cookie is nobody else's to keep.
            return Response(
                landing_body().body,
                media_type="text/html",
                headers={"Cache-Control": CACHE_PRIVATE, "Vary": "Cookie"},
            )
        return public_response(
            request,
            landing_body(),
            media_type="text/html",
            cache_control=LANDING_CACHE,
            vary=("Cookie",),
        )

    @get(TALK_PATH)
    async def talk(self, request: Request[Any, Any, Any], sent: FromQuery[str] = "") -> Template:
        """The "Talk to us" form (after sending it: what happens next)."""
        return _talk_page(request, sent=bool(sent))

    @post(TALK_PATH, status_code=303)
    async def send(
        self,
        request: Request[Any, Any, Any],
        db: DB,
        redis: RedisDep,
        settings: SettingsDep,
        data: Annotated[OnboardingIn, Body(media_type=RequestEncodingType.URL_ENCODED)],
    ) -> Redirect | Template:
        """Store the request; a mistake is told beside its field, a flood is refused."""
        try:
            await request_onboarding(
                db, redis, data, ip=client_ip(request), namespace=settings.redis_namespace
            )
        except Unprocessable as exc:
            return _talk_page(
                request,
                form=data,
                errors=field_errors(exc),
                problem=form_problem(exc),
                status_code=422,
            )
        except RateLimited as exc:
            retry = int(exc.details["retry_after"])
            return _talk_page(
                request,
                form=data,
                problem="We already have several requests from your network this hour. "
                f"Wait {wording.wait(retry)}, then send it again.",
                status_code=429,
                headers=exc.headers,
            )
        return Redirect(f"{TALK_PATH}?sent=1", status_code=303)
