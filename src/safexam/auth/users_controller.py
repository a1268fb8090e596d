"""Operators' account management: ``/users`` (admins only, every change audited)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from litestar import Controller, Request, get, patch, post
from litestar.params import FromQuery, JSONBody, QueryParameter
from sqlalchemy.ext.asyncio import AsyncSession

from safexam.auth.admin import (
    AdminUserOut,
    NewUserIn,
    UserChangeIn,
    UserPageOut,
    admin_user_out,
    change_user,
    list_users,
    new_user,
)
from safexam.auth.guards import CurrentUser, Principal, admin_only
from safexam.auth.invitations import InvitationIn, InvitationOut, create_invitation
from safexam.auth.people import StudentImportIn, StudentImportOut, import_students
from safexam.auth.schemas import Role
from safexam.core.deps import DB
from safexam.core.openapi import error_responses
from safexam.core.settings import Settings

__all__ = ["UsersController", "change_user_of_request"]


async def change_user_of_request(
    request: Request[Any, Any, Any],
    db: AsyncSession,
    user_id: uuid.UUID,
    change: UserChangeIn,
    principal: Principal,
) -> AdminUserOut:
    """:func:`change_user` with this app's Redis, sign-in store and namespace."""
    settings: Settings = request.app.state.settings
    user = await change_user(
        db,
        request.app.state.redis,
        request.app.stores.get("sessions"),
        settings.redis_namespace,
        user_id,
        change,
        principal,
    )
    return admin_user_out(user)


class UsersController(Controller):
    path = "/users"
    tags = ["users"]
    guards = [admin_only]

    @get("/")
    async def users(
        self,
        db: DB,
        principal: CurrentUser,
        search: Annotated[str | None, QueryParameter(name="q", max_length=200)] = None,
        role: FromQuery[Role | None] = None,
        page: Annotated[int, QueryParameter(ge=1, le=100_000)] = 1,
    ) -> UserPageOut:
        """Accounts, 25 a page, by name; ``q`` searches names and emails."""
        return await list_users(
            db,
            organization_id=principal.organization_id,
            search=search,
            role=role,
            page=page,
        )

    @post("/", status_code=201, responses=error_responses(409, 422))
    async def create(
        self, data: JSONBody[NewUserIn], db: DB, principal: CurrentUser
    ) -> AdminUserOut:
        """A new account; without a password it signs in with Google only."""
        return admin_user_out(await new_user(db, data, principal))

    @post("/import", status_code=200, responses=error_responses(422))
    async def import_students(
        self, data: JSONBody[StudentImportIn], db: DB, principal: CurrentUser
    ) -> StudentImportOut:
        """Students from a CSV (``email,name[,extra_minutes]``) into the organization; the
        rows refused come back with their line and the reason."""
        return await import_students(db, principal, data.text)

    @post("/invitations", status_code=201, responses=error_responses(409, 422))
    async def invite(
        self,
        request: Request[Any, Any, Any],
        data: JSONBody[InvitationIn],
        db: DB,
        principal: CurrentUser,
    ) -> InvitationOut:
        """Invite someone into the organization as an educator (or admin): a single-use link,
        valid 7 days, shown once in ``url``."""
        return await create_invitation(db, data, principal, base_url=str(request.base_url))

    @patch("/{user_id:uuid}", responses=error_responses(404, 409, 422))
    async def change(
        self,
        request: Request[Any, Any, Any],
        user_id: uuid.UUID,
        data: JSONBody[UserChangeIn],
        db: DB,
        principal: CurrentUser,
    ) -> AdminUserOut:
        """Change the role or disable/enable; the user's open sign-ins end at once."""
        return await change_user_of_request(request, db, user_id, data, principal)
