"""Joining an organization through an invitation link: choose a name and a password."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body
from litestar.response import Redirect, Template

from safexam.auth.controller import start_signin
from safexam.auth.invitations import InvitationRefused, accept_invitation, open_invitation
from safexam.core.deps import DB
from safexam.core.errors import ApiError
from safexam.web.layout import page

__all__ = ["JoinController"]

MAX_NAME = 200
MAX_PASSWORD = 1024
HOME_OF_STAFF = "/educator/exams"


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
    async def join_page(self, request: Request[Any, Any, Any], db: DB, token: str) -> Template:
        try:
            invitation, org = await open_invitation(db, token)
        except InvitationRefused as exc:
            return _refused(request, exc)
        return page(
            request,
            "student/join.html",
            title="Join " + org.name,
            organization=org.name,
            email=invitation.email,
            role=invitation.role,
            token=token,
        )

    @post("/{token:str}", status_code=303)
    async def join(
        self,
        request: Request[Any, Any, Any],
        db: DB,
        token: str,
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
            name=name,
            error=error,
        )
