"""Sign in, sign out, and the front door (``/``).

The form posts here and goes through the same password check, failed-attempt
limits and sign-in record as ``POST /api/v1/auth/login``; CSRF is the app's
double-submit token, sent as the form's ``_csrf_token`` field.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromQuery, QueryParameter
from litestar.response import Redirect, Template

from safexam.auth.controller import start_signin
from safexam.auth.oidc import LANDING_PATH, safe_next_path
from safexam.auth.service import password_sign_in
from safexam.core.deps import DB, RedisDep, SettingsDep
from safexam.core.errors import Forbidden, NotAuthenticated, RateLimited, Unprocessable
from safexam.core.http import API_PREFIX, client_ip
from safexam.core.settings import Settings
from safexam.web import wording
from safexam.web.errors import (
    SIGN_IN_PATH,
    arrived_from_another_site,
    continue_page,
    path_and_query,
)
from safexam.web.layout import current_user, page

__all__ = ["SignInController"]

# Beyond these the form cannot hold a real account's email or password.
MAX_EMAIL = 320
MAX_PASSWORD = 1024
HOME_OF_STUDENTS = "/exams"
HOME_OF_STAFF = "/educator/exams"
HOME_OF_OPERATORS = "/operator/queues"


class SignInForm(msgspec.Struct):
    email: str = ""
    password: str = ""
    next: str = ""


def _landing(value: str | None) -> str:
    """Where to go once signed in: a local path, or the front door for anything else."""
    try:
        return safe_next_path(value)
    except Unprocessable:
        return "/"


def _google_url(settings: Settings, landing: str) -> str | None:
    """The way to Google sign-in, when this deployment has an OpenID Connect client."""
    if not settings.oidc_client_id:
        return None
    return f"{API_PREFIX}/auth/oidc/login?{urlencode({'next': landing})}"


def _form(
    request: Request[Any, Any, Any],
    settings: Settings,
    *,
    landing: str,
    email: str = "",
    error: str | None = None,
    message: str | None = None,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> Template:
    return page(
        request,
        "student/sign_in.html",
        status_code=status_code,
        headers=headers,
        title="Sign in",
        email=email,
        landing=landing,
        error=error,
        message=message,
        google_url=_google_url(settings, landing),
    )


class SignInController(Controller):
    path = "/"
    include_in_schema = False

    @get("/")
    async def home(self, request: Request[Any, Any, Any]) -> Redirect | Response[str]:
        """Students land on their exams; educators and admins on theirs."""
        user = current_user(request)
        if user is None:
            if arrived_from_another_site(request):
                return continue_page(request, "/")
            return Redirect(SIGN_IN_PATH, status_code=303)
        if user.role == "student":
            return Redirect(HOME_OF_STUDENTS, status_code=303)
        if user.role == "operator":
            return Redirect(HOME_OF_OPERATORS, status_code=303)
        return Redirect(HOME_OF_STAFF, status_code=303)

    @get(LANDING_PATH)
    async def signed_in(
        self,
        request: Request[Any, Any, Any],
        next_path: Annotated[str | None, QueryParameter(name="next")] = None,
    ) -> Response[str]:
        """Back from Google: a page of this site, whose script moves on to ``next``.

        The way back from Google was cross-site, so the browser withheld the
        Strict sign-in cookie (see ``auth.oidc.LANDING_PATH``); the navigation
        this page starts is same-site and carries it. Without scripts, the
        page's link does the same with one click. No sign-in is needed here:
        the page shows nothing but the way on.
        """
        return continue_page(
            request,
            _landing(next_path),
            heading="You are signed in",
            lead="Your Google sign-in worked. On to SafeExam.",
        )

    @get(SIGN_IN_PATH)
    async def sign_in_form(
        self,
        request: Request[Any, Any, Any],
        settings: SettingsDep,
        next_path: Annotated[str | None, QueryParameter(name="next")] = None,
        expired: FromQuery[str | None] = None,
        signed_out: FromQuery[str | None] = None,
    ) -> Redirect | Template | Response[str]:
        landing = _landing(next_path)
        if current_user(request) is not None:
            return Redirect(landing, status_code=303)
        if arrived_from_another_site(request):
            # Perhaps signed in after all, with the cookie withheld (see continue_page).
            return continue_page(request, path_and_query(request))
        message = None
        if expired:
            message = "Your sign-in has expired. Sign in again to go on."
        elif signed_out == "everywhere":
            message = "You have signed out on every browser and device."
        elif signed_out:
            message = "You have signed out."
        return _form(request, settings, landing=landing, message=message)

    @post(SIGN_IN_PATH, status_code=303)
    async def sign_in(
        self,
        request: Request[Any, Any, Any],
        db: DB,
        redis: RedisDep,
        settings: SettingsDep,
        data: Annotated[SignInForm, Body(media_type=RequestEncodingType.URL_ENCODED)],
    ) -> Redirect | Template:
        landing = _landing(data.next)
        email = data.email.strip()
        if not email or not data.password:
            return _form(
                request,
                settings,
                landing=landing,
                email=email[:MAX_EMAIL],
                error="Enter your email and your password.",
                status_code=400,
            )
        wrong = "Wrong email or password. Check both and try again."
        if (
            len(email) > MAX_EMAIL
            or len(data.password) > MAX_PASSWORD
            or "\x00" in email + data.password
        ):
            return _form(request, settings, landing=landing, error=wrong, status_code=401)
        try:
            user = await password_sign_in(
                db, redis, settings, email=email, password=data.password, ip=client_ip(request)
            )
        except RateLimited as exc:
            retry = int(exc.details["retry_after"])
            return _form(
                request,
                settings,
                landing=landing,
                email=email,
                error=f"Too many failed attempts. Wait {wording.wait(retry)}, then try again.",
                status_code=429,
                headers=exc.headers,
            )
        except NotAuthenticated:
            return _form(
                request, settings, landing=landing, email=email, error=wrong, status_code=401
            )
        except Forbidden:
            return _form(
                request,
                settings,
                landing=landing,
                email=email,
                error="This account is disabled. Ask your educator or your SafeExam "
                "administrator to enable it.",
                status_code=403,
            )
        await start_signin(request, user)
        return Redirect(landing, status_code=303)

    @post("/sign-out", status_code=303)
    async def sign_out(self, request: Request[Any, Any, Any]) -> Redirect:
        """End the sign-in: its record in the store is deleted, not only the cookie."""
        request.clear_session()
        return Redirect(f"{SIGN_IN_PATH}?signed_out=1", status_code=303)
