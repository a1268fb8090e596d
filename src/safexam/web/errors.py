"""Errors as pages: a sentence and a next step, never a stack trace or raw JSON.

Web routes always answer errors this way. Elsewhere (a mistyped address, say)
a browser that asks for HTML gets the page too, while API clients keep the one
JSON error shape. Someone not signed in is sent to the sign-in page instead,
and comes back where they were going once signed in.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from litestar import Request, Response
from litestar.connection import ASGIConnection
from litestar.exceptions import HTTPException
from litestar.response import Redirect

from safexam.core.errors import ApiError, NotAuthenticated, error_for
from safexam.core.http import API_PREFIX
from safexam.web import wording
from safexam.web.layout import render_page

__all__ = [
    "SIGN_IN_PATH",
    "arrived_from_another_site",
    "browser_pages",
    "continue_page",
    "page_exception_handlers",
    "path_and_query",
    "sign_in_redirect",
]

SIGN_IN_PATH = "/sign-in"

# Paths whose clients are programs: their errors stay JSON whatever they accept.
_MACHINE_PATHS = (API_PREFIX, "/schema", "/healthz", "/readyz", "/metrics", "/static/")
# API routes a browser is sent to by another site (the sign-in provider's redirect
# back): a browser that lands there with an error gets a page, a client JSON.
_NAVIGATED_API_PATHS = frozenset({f"{API_PREFIX}/auth/oidc/callback"})

_TITLES = {
    400: "This request could not be understood",
    403: "You do not have access to this page",
    404: "Page not found",
    405: "This page cannot be used this way",
    409: "This cannot be done now",
    413: "What you sent is too large",
    422: "Some of what you sent is not valid",
    429: "Too many attempts",
    500: "Something went wrong on our side",
    503: "SafeExam is briefly unavailable",
}

_SENTENCES = {
    400: "Go back and try again.",
    403: "Your account cannot open this page.",
    404: "This page does not exist, or it belongs to another account.",
    405: "Go back and use the page's own buttons and links.",
    413: "Go back and send something smaller.",
    422: "Go back, check what you entered and try again.",
    500: "The problem has been logged. Answers already saved are kept. Try again in a moment.",
}


def arrived_from_another_site(request: Request[Any, Any, Any]) -> bool:
    """Whether this page was opened from another site (a link in the LMS or in
    webmail, the way back from Google), as the browser says in ``Sec-Fetch-Site``.

    On such a navigation, and on every redirect after it, the browser withholds
    the SameSite=Strict sign-in cookie: a signed-in student looks signed out.
    """
    return (
        request.method == "GET"
        and request.headers.get("sec-fetch-site") == "cross-site"
        and request.headers.get("sec-fetch-mode") == "navigate"
    )


def continue_page(
    connection: ASGIConnection[Any, Any, Any, Any],
    landing: str,
    *,
    heading: str = "Opening SafeExam",
    lead: str = "One moment.",
) -> Response[str]:
    """A page of this site that moves on to ``landing`` (a local path) by itself.

    The navigation it starts is same-site, so the Strict sign-in cookie goes
    with it: the student arrives signed in if they are. That navigation is not
    cross-site any more, so it never comes back here.

    Strict with this step, rather than Lax: for a person sent to one of the
    pages from elsewhere the two end the same (the page opens signed in, and
    pages change nothing on GET). Everything else stays Strict: no other site
    can make a signed-in request to the JSON API, its streams or its exports,
    even a top-level GET that Lax would let through, and forms posted from
    elsewhere carry no sign-in on top of failing the CSRF check.
    """
    return render_page(
        connection,
        "continue.html",
        status_code=200,
        title=heading,
        heading=heading,
        lead=lead,
        landing=landing,
    )


def path_and_query(request: Request[Any, Any, Any]) -> str:
    """This request's local address (``/exams?tab=x``), to come back to."""
    target = request.url.path
    if request.url.query:
        target += "?" + request.url.query
    return target


def sign_in_redirect(request: Request[Any, Any, Any], *, expired: bool = False) -> Redirect:
    """To the sign-in page, coming back here afterwards (for a page; a form goes home)."""
    query: dict[str, str] = {}
    if request.method == "GET" and request.url.path != "/":
        query["next"] = path_and_query(request)
    if expired:
        query["expired"] = "1"
    location = SIGN_IN_PATH + ("?" + urlencode(query) if query else "")
    return Redirect(location, status_code=303, headers={"Cache-Control": "no-store"})


# What a colleague of a shared bank may see but not do: said in the domain's words.
_SHARED_BANK_REFUSALS = frozenset({"question_read_only", "not_bank_owner", "not_question_owner"})


def _sentence(error: ApiError) -> str:
    status = error.status_code
    retry = error.details.get("retry_after") if isinstance(error.details, dict) else None
    if _sign_in_failed(error):
        # The provider's failure in the domain's words, and the way back.
        return error.message.rstrip(".") + ". Go back to the sign-in page and try again."
    if status == 403 and error.code == "csrf_failed":
        return "This form has expired. Go back, reload the page and send it again."
    if status == 403 and error.code == "wrong_role":
        roles = error.details.get("allowed_roles", []) if isinstance(error.details, dict) else []
        if roles == ["student"]:
            return "This page is for students. Your own pages are in the menu above."
        if roles in (["admin"], ["admin", "operator"]):
            return "This page is for administrators. Your own pages are in the menu above."
        if roles == ["operator"]:
            return (
                "This page is for the deployment's operators. Your own pages are in the menu above."
            )
        return "This page is for educators. Your own pages are in the menu above."
    if status == 403 and error.code in _SHARED_BANK_REFUSALS:
        return error.message[:1].upper() + error.message[1:].rstrip(".") + "."
    if status == 409:
        # Conflicts are the domain's own sentences ("This exam has closed").
        return error.message.rstrip(".") + "."
    if status == 429 and retry:
        return f"Wait {wording.wait(int(retry))}, then try again."
    if status == 503:
        wait = f" in {wording.wait(int(retry))}" if retry else " in a moment"
        return f"The database or the session store is not answering. Try again{wait}."
    return _SENTENCES.get(status, "Go back and try again.")


def _as_api_error(request: Request[Any, Any, Any], exc: Exception) -> ApiError:
    if isinstance(exc, HTTPException):
        status = exc.status_code
        code = "csrf_failed" if status == 403 and "csrf" in exc.detail.lower() else "http_error"
        return ApiError(exc.detail, code=code, status_code=status, headers=dict(exc.headers or {}))
    return error_for(exc, method=request.method, path=request.url.path)


def error_page(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """The page for ``exc``, or the way to the sign-in page when nobody is signed in."""
    if isinstance(exc, NotAuthenticated) and not _sign_in_failed(exc):
        if arrived_from_another_site(request):
            return continue_page(request, path_and_query(request))
        return sign_in_redirect(request, expired=exc.code == "session_expired")
    error = _as_api_error(request, exc)
    status = error.status_code
    title = _TITLES.get(status, "Something went wrong")
    if _sign_in_failed(error):
        title = "Sign-in with Google did not work"
    return render_page(
        request,
        "error.html",
        status_code=status,
        headers=error.headers,
        title=title,
        sentence=_sentence(error),
        status=status,
    )


def _sign_in_failed(error: Exception) -> bool:
    """A sign-in with Google (or another provider) that failed, back at the callback."""
    return isinstance(error, ApiError) and error.code.startswith("oidc_")


def page_exception_handlers() -> dict[type[Exception] | int, Any]:
    """Exception handlers of the web routes: every error is a page."""
    return {ApiError: error_page, HTTPException: error_page, Exception: error_page}


def _wants_page(request: Request[Any, Any, Any]) -> bool:
    path = request.url.path
    if path.startswith(_MACHINE_PATHS) and path not in _NAVIGATED_API_PATHS:
        return False
    return "text/html" in request.headers.get("accept", "")


def browser_pages(
    handlers: dict[type[Exception] | int, Any],
) -> dict[type[Exception] | int, Any]:
    """The app's exception ``handlers``, answering with a page where a browser
    asks for one outside the API (an unknown address, a method not allowed)."""

    def wrap(handler: Callable[[Request[Any, Any, Any], Any], Response[Any]]) -> Any:
        def choose(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
            if _wants_page(request):
                return error_page(request, exc)
            return handler(request, exc)

        return choose

    return {key: wrap(handler) for key, handler in handlers.items()}
