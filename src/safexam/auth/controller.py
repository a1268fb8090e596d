"""Sign-in, sign-out, CSRF token and the current user."""

from __future__ import annotations

import time
import uuid
from typing import Annotated, Any
from urllib.parse import urlencode

from litestar import Controller, Request, get, post
from litestar.datastructures import Cookie
from litestar.params import FromQuery, JSONBody, QueryParameter
from litestar.response import Redirect
from litestar.status_codes import (
    HTTP_200_OK,
    HTTP_204_NO_CONTENT,
    HTTP_302_FOUND,
    HTTP_303_SEE_OTHER,
)
from litestar.utils.scope.state import ScopeState

from safexam.auth.guards import (
    SIGNIN_ORG_KEY,
    SIGNIN_USER_KEY,
    CurrentUser,
    Principal,
    authenticated,
    principal_of,
)
from safexam.auth.invitations import accept_invitation_with_identity, join_path
from safexam.auth.models import User
from safexam.auth.oidc import (
    OIDC_COOKIE,
    STATE_TTL_SECONDS,
    begin_sign_in,
    finish_sign_in,
    landing_url,
    oidc_client,
    safe_next_path,
)
from safexam.auth.schemas import CsrfOut, LoginRequest, UserOut
from safexam.auth.service import find_or_create_oidc_user, password_sign_in
from safexam.auth.signins import (
    SIGNIN_COOKIE,
    index_signin,
    new_signin_id,
    revoke_all_signins,
)
from safexam.core.deps import DB, RedisDep, SettingsDep
from safexam.core.errors import ApiError
from safexam.core.http import API_PREFIX, client_ip
from safexam.core.openapi import error_responses
from safexam.core.settings import Settings

__all__ = ["AuthController", "sign_out_everywhere", "start_signin"]

OIDC_COOKIE_PATH = f"{API_PREFIX}/auth/oidc"


async def start_signin(request: Request[Any, Any, Any], user: User) -> None:
    """Replace whatever sign-in the browser had with a fresh one for ``user``."""
    old_id = request.cookies.get(SIGNIN_COOKIE)
    if old_id:
        store = request.app.stores.get("sessions")
        await store.delete(old_id)
    signin_id = new_signin_id(request)
    settings: Settings = request.app.state.settings
    await index_signin(
        request.app.state.redis,
        settings.redis_namespace,
        user.id,
        signin_id,
        settings.session_absolute_seconds,
    )
    request.scope["state"].pop("safexam.principal", None)
    request.set_session(
        {
            SIGNIN_USER_KEY: str(user.id),
            "email": user.email,
            "name": user.name,
            "role": user.role,
            SIGNIN_ORG_KEY: str(user.organization_id),
            "iat": int(time.time()),
        }
    )


async def sign_out_everywhere(request: Request[Any, Any, Any], principal: Principal) -> int:
    """End every sign-in of the signed-in user, this browser's included."""
    settings: Settings = request.app.state.settings
    count = await revoke_all_signins(
        request.app.state.redis,
        request.app.stores.get("sessions"),
        settings.redis_namespace,
        principal.id,
    )
    # This browser's too, even a sign-in from before sign-ins were indexed:
    # cleared, the middleware deletes its record and expires the cookie.
    request.clear_session()
    return count


def user_out(user: User | Principal) -> UserOut:
    return UserOut(
        id=user.id,
        email=user.email,
        name=user.name,
        role=user.role,  # type: ignore[arg-type]
        organization_id=user.organization_id,
    )


class AuthController(Controller):
    path = "/auth"
    tags = ["auth"]

    @get("/csrf")
    async def csrf(self, request: Request[Any, Any, Any]) -> CsrfOut:
        """A CSRF token for the ``X-CSRF-Token`` header; also sets the CSRF cookie."""
        token = ScopeState.from_scope(request.scope).csrf_token
        return CsrfOut(csrf_token=str(token))

    @post("/login", status_code=HTTP_200_OK, responses=error_responses(401, 403, 429))
    async def login(
        self,
        request: Request[Any, Any, Any],
        data: JSONBody[LoginRequest],
        db: DB,
        redis: RedisDep,
        settings: SettingsDep,
    ) -> UserOut:
        """Password sign-in. Failed attempts are rate limited per account and per address."""
        user = await password_sign_in(
            db, redis, settings, email=data.email, password=data.password, ip=client_ip(request)
        )
        await start_signin(request, user)
        return user_out(user)

    @post("/logout", status_code=HTTP_204_NO_CONTENT)
    async def logout(self, request: Request[Any, Any, Any]) -> None:
        """End the session: the server-side record is deleted, not just the cookie."""
        request.clear_session()

    @post(
        "/logout-all",
        status_code=HTTP_204_NO_CONTENT,
        guards=[authenticated],
        responses=error_responses(401),
    )
    async def logout_all(self, request: Request[Any, Any, Any], principal: CurrentUser) -> None:
        """Sign out everywhere: every sign-in of this user, on every browser, ends now."""
        await sign_out_everywhere(request, principal)

    @get("/me", guards=[authenticated])
    async def me(self, principal: CurrentUser) -> UserOut:
        return user_out(principal)

    @get(
        "/oidc/login",
        status_code=HTTP_302_FOUND,
        responses=error_responses(404, 502),
    )
    async def oidc_login(
        self,
        request: Request[Any, Any, Any],
        redis: RedisDep,
        settings: SettingsDep,
        next_path: Annotated[str | None, QueryParameter(name="next")] = None,
        link: FromQuery[bool] = False,
        invite: FromQuery[str | None] = None,
    ) -> Redirect:
        """Start Google (OpenID Connect) sign-in: off to the issuer with state, nonce and PKCE.

        With ``link=true``, a signed-in user links the Google identity to their
        own account instead (the only way a staff account gets one). With
        ``invite``, a newcomer accepts that invitation by signing in: the
        account is created for the invited address, which the identity must have.
        """
        client = oidc_client(request.app, settings)
        landing = safe_next_path(next_path)
        link_user_id = str(principal_of(request).id) if link else None
        redirect_uri = settings.oidc_redirect_url or str(request.url_for("oidc_callback"))
        url, state = await begin_sign_in(
            client,
            redis,
            settings,
            redirect_uri=redirect_uri,
            next_path=landing,
            link_user_id=link_user_id,
            invite_token=invite[:200] if invite else None,
        )
        # Lax, not Strict: the cookie must come back on the issuer's cross-site redirect.
        cookie = Cookie(
            key=OIDC_COOKIE,
            value=state,
            path=OIDC_COOKIE_PATH,
            max_age=STATE_TTL_SECONDS,
            httponly=True,
            secure=settings.cookie_secure,
            samesite="lax",
        )
        return Redirect(url, status_code=302, cookies=[cookie])

    @get(
        "/oidc/callback",
        name="oidc_callback",
        status_code=HTTP_303_SEE_OTHER,
        responses=error_responses(400, 401, 403, 404, 502),
    )
    async def oidc_callback(
        self,
        request: Request[Any, Any, Any],
        db: DB,
        redis: RedisDep,
        settings: SettingsDep,
        code: FromQuery[str | None] = None,
        # "state" is a reserved handler argument in Litestar, hence the alias.
        oidc_state: Annotated[str | None, QueryParameter(name="state")] = None,
        error: FromQuery[str | None] = None,
    ) -> Redirect:
        """Finish sign-in: check state, exchange the code, verify the ID token, start a session.

        A GET reached by the issuer's redirect, so CSRF tokens cannot apply; the
        single-use state bound to this browser's cookie does that job.
        """
        client = oidc_client(request.app, settings)
        identity = await finish_sign_in(
            client,
            redis,
            settings,
            state=oidc_state,
            code=code,
            error=error,
            browser_state=request.cookies.get(OIDC_COOKIE),
        )
        clear = Cookie(
            key=OIDC_COOKIE,
            value="",
            path=OIDC_COOKIE_PATH,
            max_age=0,
            httponly=True,
            secure=settings.cookie_secure,
            samesite="lax",
        )
        if identity.invite_token is not None:
            try:
                user = await accept_invitation_with_identity(
                    db,
                    identity.invite_token,
                    issuer=identity.issuer,
                    subject=identity.subject,
                    email=identity.email,
                    name=identity.name,
                )
            except ApiError as exc:
                # Back to the invitation's page, which says in words what went wrong.
                await db.rollback()
                problem = join_path(identity.invite_token) + "?" + urlencode({"problem": exc.code})
                return Redirect(problem, status_code=303, cookies=[clear])
        else:
            user = await find_or_create_oidc_user(
                db,
                issuer=identity.issuer,
                subject=identity.subject,
                email=identity.email,
                name=identity.name,
                link_to=uuid.UUID(identity.link_user_id) if identity.link_user_id else None,
            )
        await start_signin(request, user)
        # 303 so the browser lands with a plain GET, on the same-site step that
        # goes on to the page asked for (why: auth.oidc.LANDING_PATH).
        return Redirect(landing_url(identity.next_path), status_code=303, cookies=[clear])
