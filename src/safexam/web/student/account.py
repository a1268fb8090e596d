"""The account page: who is signed in, and "Sign out everywhere".

Signing out everywhere ends every sign-in of the user on every browser and
device (a forgotten sign-in on a library computer, a lost phone), through the
same service as ``POST /api/v1/auth/logout-all``.
"""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get, post
from litestar.response import Redirect, Template

from safexam.auth.controller import sign_out_everywhere
from safexam.auth.guards import CurrentUser, authenticated
from safexam.core.deps import SettingsDep
from safexam.web.errors import SIGN_IN_PATH
from safexam.web.layout import page

__all__ = ["SIGNED_OUT_EVERYWHERE", "AccountController"]

#: The sign-in page's query value after signing out everywhere.
SIGNED_OUT_EVERYWHERE = "everywhere"


class AccountController(Controller):
    path = "/"
    guards = [authenticated]
    include_in_schema = False

    @get("/account")
    async def account(
        self, request: Request[Any, Any, Any], principal: CurrentUser, settings: SettingsDep
    ) -> Template:
        # Staff accounts are never linked to Google by email (see
        # auth.service.find_or_create_oidc_user): they link it here, signed in.
        link_google = None
        if settings.oidc_client_id and principal.role != "student":
            link_google = "/api/v1/auth/oidc/login?link=true&next=%2Faccount"
        return page(
            request, "account.html", title="Your account", nav="account", link_google=link_google
        )

    @post("/sign-out-everywhere", status_code=303)
    async def sign_out_all(
        self, request: Request[Any, Any, Any], principal: CurrentUser
    ) -> Redirect:
        """End every sign-in of this user, then the sign-in page says so."""
        await sign_out_everywhere(request, principal)
        return Redirect(f"{SIGN_IN_PATH}?signed_out={SIGNED_OUT_EVERYWHERE}", status_code=303)
