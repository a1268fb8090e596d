"""The users page: find accounts, create one, change a role, disable or enable.

Every change goes through the services of ``/api/v1/users`` (audited), which end
the user's open sign-ins at once, so a disabled student or a former educator is
refused on their very next request, in every browser they had open.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any
from urllib.parse import urlencode

import msgspec
from litestar import Controller, Request, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath, FromQuery
from litestar.response import Redirect, Template
from sqlalchemy.ext.asyncio import AsyncSession

from safexam.auth.admin import NewUserIn, UserChangeIn, list_users, new_user
from safexam.auth.guards import CurrentUser, Principal, admin_only
from safexam.auth.invitations import InvitationIn, InvitationOut, create_invitation
from safexam.auth.models import ORG_ROLES as ROLES
from safexam.auth.people import StudentImportOut, import_students
from safexam.auth.users_controller import change_user_of_request
from safexam.core.deps import DB
from safexam.core.errors import ApiError
from safexam.web.forms import convert_form, field_errors, form_problem
from safexam.web.layout import page

__all__ = ["OperatorUsersController"]

USERS_PATH = "/operator/users"

ROLE_LABELS = {"student": "Student", "educator": "Educator", "admin": "Admin"}

_DONE = {
    "created": "The account was created.",
    "role": "The role was changed. Their open sign-ins have ended: they sign in again "
    "with the new role.",
    "disabled": "The account was disabled. They were signed out everywhere at once.",
    "enabled": "The account was enabled. They can sign in again.",
}


class ListState(msgspec.Struct):
    """What the list showed when a form on it was sent, to come back to it."""

    q: str = ""
    filter_role: str = ""
    page: int = 1

    def query(self, **extra: str) -> str:
        values = {"q": self.q, "role": self.filter_role, "page": str(self.page), **extra}
        kept = {k: v for k, v in values.items() if v and not (k == "page" and v == "1")}
        return "?" + urlencode(kept) if kept else ""


class CreateForm(ListState):
    name: str = ""
    email: str = ""
    role: str = "student"
    password: str = ""


class RoleForm(ListState):
    role: str = ""


class InviteForm(ListState):
    invite_email: str = ""
    invite_role: str = "educator"


class ImportForm(ListState):
    csv: str = ""


class ActiveForm(ListState):
    active: str = ""


async def _list_page(
    request: Request[Any, Any, Any],
    db: AsyncSession,
    principal: Principal,
    state: ListState,
    *,
    notice: str | None = None,
    problem: str | None = None,
    errors: dict[str, str] | None = None,
    form: dict[str, str] | None = None,
    status_code: int = 200,
    report: StudentImportOut | None = None,
    csv_text: str = "",
    invitation: InvitationOut | None = None,
) -> Template:
    role = state.filter_role if state.filter_role in ROLES else None
    found = await list_users(
        db,
        organization_id=principal.organization_id,
        search=state.q or None,
        role=role,
        page=state.page,
    )
    pages = max(1, -(-found.total // found.per_page))
    return page(
        request,
        "operator/users.html",
        title="Users",
        nav="users",
        users=found.items,
        total=found.total,
        page_number=found.page,
        pages=pages,
        previous_url=USERS_PATH + ListState(state.q, state.filter_role, found.page - 1).query()
        if found.page > 1
        else None,
        next_url=USERS_PATH + ListState(state.q, state.filter_role, found.page + 1).query()
        if found.page < pages
        else None,
        q=state.q,
        filter_role=role or "",
        list_state=ListState(state.q, role or "", found.page),
        roles=[(r, ROLE_LABELS[r]) for r in ROLES],
        me=principal.id,
        notice=notice,
        problem=problem,
        errors=errors or {},
        form=form or {"name": "", "email": "", "role": "student"},
        status_code=status_code,
        report=report,
        csv_text=csv_text,
        invitation=invitation,
    )


class OperatorUsersController(Controller):
    path = "/users"
    guards = [admin_only]
    include_in_schema = False

    @get("/")
    async def users(
        self,
        request: Request[Any, Any, Any],
        db: DB,
        principal: CurrentUser,
        q: FromQuery[str] = "",
        role: FromQuery[str] = "",
        page: FromQuery[int] = 1,
        done: FromQuery[str] = "",
    ) -> Template:
        state = ListState(q=q[:200], filter_role=role, page=max(1, min(page, 100_000)))
        return await _list_page(request, db, principal, state, notice=_DONE.get(done))

    @post("/", status_code=303)
    async def create(
        self,
        request: Request[Any, Any, Any],
        db: DB,
        principal: CurrentUser,
        data: Annotated[CreateForm, Body(media_type=RequestEncodingType.URL_ENCODED)],
    ) -> Redirect | Template:
        values = {
            "name": data.name.strip(),
            "email": data.email.strip(),
            "role": data.role,
            "password": data.password or None,
        }
        try:
            await new_user(db, convert_form(values, NewUserIn), principal)
        except ApiError as exc:
            await db.rollback()
            errors = field_errors(exc)
            if exc.code == "email_taken":
                errors["email"] = "An account with this email already exists."
            errors = {k: _field_sentence(k, v) for k, v in errors.items()}
            return await _list_page(
                request,
                db,
                principal,
                data,
                problem=form_problem(exc) if errors else exc.message,
                errors=errors,
                form={"name": data.name, "email": data.email, "role": data.role},
                status_code=exc.status_code,
            )
        return Redirect(USERS_PATH + data.query(done="created"), status_code=303)

    @post("/invite", status_code=200)
    async def invite(
        self,
        request: Request[Any, Any, Any],
        db: DB,
        principal: CurrentUser,
        data: Annotated[InviteForm, Body(media_type=RequestEncodingType.URL_ENCODED)],
    ) -> Template:
        """A single-use link for an educator (or admin) to join; shown once on the page."""
        try:
            invitation = await create_invitation(
                db,
                convert_form(
                    {"email": data.invite_email.strip(), "role": data.invite_role}, InvitationIn
                ),
                principal,
                base_url=str(request.base_url),
            )
        except ApiError as exc:
            await db.rollback()
            return await _list_page(
                request,
                db,
                principal,
                data,
                problem=exc.message.rstrip(".") + ".",
                status_code=exc.status_code,
            )
        return await _list_page(request, db, principal, data, invitation=invitation)

    @post("/import", status_code=200)
    async def import_students(
        self,
        request: Request[Any, Any, Any],
        db: DB,
        principal: CurrentUser,
        data: Annotated[ImportForm, Body(media_type=RequestEncodingType.URL_ENCODED)],
    ) -> Template:
        """Students from pasted CSV rows; the page shows what was added and every refused row."""
        try:
            report = await import_students(db, principal, data.csv)
        except ApiError as exc:
            await db.rollback()
            return await _list_page(
                request,
                db,
                principal,
                data,
                problem=exc.message.rstrip(".") + ".",
                status_code=exc.status_code,
                csv_text=data.csv,
            )
        return await _list_page(request, db, principal, data, report=report)

    async def _change(
        self,
        request: Request[Any, Any, Any],
        db: AsyncSession,
        principal: Principal,
        user_id: uuid.UUID,
        change: UserChangeIn,
        state: ListState,
        done: str,
    ) -> Redirect | Template:
        try:
            await change_user_of_request(request, db, user_id, change, principal)
        except ApiError as exc:
            await db.rollback()
            return await _list_page(
                request,
                db,
                principal,
                state,
                problem=exc.message.rstrip(".") + ".",
                status_code=exc.status_code,
            )
        return Redirect(USERS_PATH + state.query(done=done), status_code=303)

    @post("/{user_id:uuid}/role", status_code=303)
    async def change_role(
        self,
        request: Request[Any, Any, Any],
        db: DB,
        principal: CurrentUser,
        user_id: FromPath[uuid.UUID],
        data: Annotated[RoleForm, Body(media_type=RequestEncodingType.URL_ENCODED)],
    ) -> Redirect | Template:
        if data.role not in ROLES:
            return await _list_page(
                request,
                db,
                principal,
                data,
                problem="Choose a role from the list.",
                status_code=422,
            )
        change = UserChangeIn(role=data.role)  # type: ignore[arg-type]
        return await self._change(request, db, principal, user_id, change, data, "role")

    @post("/{user_id:uuid}/active", status_code=303)
    async def change_active(
        self,
        request: Request[Any, Any, Any],
        db: DB,
        principal: CurrentUser,
        user_id: FromPath[uuid.UUID],
        data: Annotated[ActiveForm, Body(media_type=RequestEncodingType.URL_ENCODED)],
    ) -> Redirect | Template:
        active = data.active == "true"
        change = UserChangeIn(active=active)
        done = "enabled" if active else "disabled"
        return await self._change(request, db, principal, user_id, change, data, done)


def _field_sentence(field: str, message: str) -> str:
    """msgspec's wording of a field's problem, as a sentence a person reads."""
    if field == "email" and ("match" in message or "length" in message):
        return "Enter an email address, like name@college.edu."
    if field == "name":
        return "Enter the person's name."
    if field == "password" and "length" in message:
        return "A password needs at least 8 characters; leave it empty for Google sign-in only."
    if field == "role":
        return "Choose a role from the list."
    return message if message.endswith(".") else message + "."
