"""Joining an organization through an invitation link: choose a name and a password."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

import msgspec
from litestar import Controller, Request, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body, QueryParameter
from litestar.response import Redirect, Template

from safexam.auth.controller import start_signin
from safexam.auth.invitations import InvitationRefused, accept_invitation, open_invitation
from safexam.core.deps import DB, SettingsDep
from safexam.core.errors import ApiError
from safexam.core.http import API_PREFIX
from safexam.core.settings import Settings
from safexam.web.front.landing import HOME_OF_STAFF
from safexam.web.layout import page

__all__ = ["JoinController"]

MAX_NAME = 200
MAX_PASSWORD = 1024


#: What went wrong when the newcomer tried to join with Google, by the error's code.
GOOGLE_PROBLEMS = {
    "invitation_other_address": (
        "The Google account you chose is not {email}, the address invited. Join with"
        " that address's Google account, or choose a name and a password below."
    ),
    "identity_linked": (
        "That Google account already signs in to SafeExam. Sign in with it, or"
        " choose a name and a password below to make this account."
    ),
    "email_taken": "An account with {email} exists already. Sign in with it instead.",
}
GOOGLE_FAILED = "Joining with Google did not work. Try again, or choose a password below."


def _google_url(settings: Settings, token: str) -> str | None:
    """The way to join with Google, when this deployment has an OpenID Connect client."""
    if not settings.oidc_client_id:
        return None
    query = urlencode({"invite": token, "next": HOME_OF_STAFF})
    return f"{API_PREFIX}/auth/oidc/login?{query}"


class JoinForm(msgspec.Struct):
    name: str = ""
    password: str = ""
    password_again: str = ""


def _refused(request: Request[Any, Any, Any], error: ApiError) -> Template:
    return page(
        request,
        "student/join.html",
        status_code=error.status_code,
        title="Invitation",
        refused=error.message.rstrip(".") + ".",
    )


class JoinController(Controller):
    path = "/join"
    include_in_schema = False

    @get("/{token:str}")
    async def join_page(
        self,
        request: Request[Any, Any, Any],
        db: DB,
        settings: SettingsDep,
        token: str,
        problem: Annotated[str | None, QueryParameter(max_length=64)] = None,
    ) -> Template:
        try:
            invitation, org = await open_invitation(db, token)
        except InvitationRefused as exc:
            return _refused(request, exc)
        error = None
        if problem:
            error = GOOGLE_PROBLEMS.get(problem, GOOGLE_FAILED).format(email=invitation.email)
        return page(
            request,
            "student/join.html",
            title="Join " + org.name,
            organization=org.name,
            email=invitation.email,
            role=invitation.role,
            token=token,
            google_url=_google_url(settings, token),
            error=error,
        )

    @post("/{token:str}", status_code=303)
    async def join(
        self,
        request: Request[Any, Any, Any],
        db: DB,
        token: str,
        settings: SettingsDep,
        data: Annotated[JoinForm, Body(media_type=RequestEncodingType.URL_ENCODED)],
    ) -> Redirect | Template:
        try:
            invitation, org = await open_invitation(db, token)
        except InvitationRefused as exc:
            return _refused(request, exc)
        name = data.name.strip()[:MAX_NAME]
        error = None
        if not name:
            error = "Enter your name."
        elif len(data.password) < 8 or len(data.password) > MAX_PASSWORD:
            error = "Choose a password of at least 8 characters."
        elif data.password != data.password_again:
            error = "The two passwords differ. Type the same password twice."
        if error is None:
            try:
                user = await accept_invitation(db, token, name=name, password=data.password)
            except InvitationRefused as exc:
                return _refused(request, exc)
            except ApiError as exc:
                error = exc.message.rstrip(".") + "."
            else:
                await start_signin(request, user)
                return Redirect(HOME_OF_STAFF, status_code=303)
        return page(
            request,
            "student/join.html",
            status_code=422,
            title="Join " + org.name,
            organization=org.name,
            email=invitation.email,
            role=invitation.role,
            token=token,
            google_url=_google_url(settings, token),
            name=name,
            error=error,
        )
