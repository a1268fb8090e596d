"""Org admins' management of accounts: list, create, change role, disable and enable.

Every function works inside one organization, the acting admin's: an account
of another organization is not found. Operators (deployment staff) are not
anybody's people: they are neither listed nor changed here.

A role or an account's state is copied into each sign-in when it starts
(:func:`safexam.auth.controller.start_signin`), and guards read the sign-in,
not the database, so that the autosave path costs no query. A change made
here therefore ends every sign-in of the user as soon as it commits: a
disabled user is signed out at once, and a user whose role changed signs in
again and gets the new role, instead of keeping the old one until their
sign-in expires.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

import msgspec
from litestar.stores.base import Store
from redis.asyncio import Redis
from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from safexam.auth.guards import Principal
from safexam.auth.models import User
from safexam.auth.schemas import Email, Role
from safexam.auth.service import add_user
from safexam.auth.signins import revoke_all_signins
from safexam.core.audit import record_audit
from safexam.core.errors import Conflict, NotFound

__all__ = [
    "PER_PAGE",
    "AdminUserOut",
    "NewUserIn",
    "UserChangeIn",
    "UserPageOut",
    "admin_user_out",
    "change_user",
    "list_users",
    "new_user",
]

PER_PAGE = 25

Name = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]


class NewUserIn(msgspec.Struct, forbid_unknown_fields=True):
    email: Email
    name: Name
    role: Role
    #: None: the account signs in with Google only (or after an operator sets one).
    password: Annotated[str, msgspec.Meta(min_length=8, max_length=1024)] | None = None


class UserChangeIn(msgspec.Struct, forbid_unknown_fields=True):
    role: Role | None = None
    active: bool | None = None


class AdminUserOut(msgspec.Struct):
    id: uuid.UUID
    email: str
    name: str
    role: Role
    active: bool
    #: Whether the account has a password (otherwise it signs in with Google only).
    has_password: bool
    created_at: datetime
    last_login_at: datetime | None


class UserPageOut(msgspec.Struct):
    items: list[AdminUserOut]
    total: int
    page: int
    per_page: int


def admin_user_out(user: User) -> AdminUserOut:
    return AdminUserOut(
        id=user.id,
        email=user.email,
        name=user.name,
        role=user.role,  # type: ignore[arg-type]
        active=user.is_active,
        has_password=user.password_hash is not None,
        created_at=user.created_at,
        last_login_at=user.last_login_at,
    )


async def list_users(
    db: AsyncSession,
    *,
    organization_id: uuid.UUID,
    search: str | None = None,
    role: str | None = None,
    page: int = 1,
    per_page: int = PER_PAGE,
) -> UserPageOut:
    """Accounts by name, ``search`` in the name or email, of one ``role`` if given."""
    query = select(User).where(User.organization_id == organization_id, User.role != "operator")
    if search and search.strip():
        pattern = (
            "%"
            + search.strip().lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            + "%"
        )
        query = query.where(or_(func.lower(User.name).like(pattern), User.email.like(pattern)))
    if role:
        query = query.where(User.role == role)
    total = int(await db.scalar(select(func.count()).select_from(query.subquery())) or 0)
    page = max(1, page)
    users = (
        await db.scalars(
            query.order_by(func.lower(User.name), User.email)
            .offset((page - 1) * per_page)
            .limit(per_page)
        )
    ).all()
    return UserPageOut(
        items=[admin_user_out(u) for u in users], total=total, page=page, per_page=per_page
    )


async def new_user(db: AsyncSession, data: NewUserIn, actor: Principal) -> User:
    """Create an account (409 ``email_taken``), on the audit trail. Commits."""
    user = await add_user(
        db,
        email=data.email,
        name=data.name,
        role=data.role,
        password=data.password,
        organization_id=actor.organization_id,
    )
    record_audit(
        db,
        actor_id=actor.id,
        action="user.create",
        subject_type="user",
        subject_id=user.id,
        details={"role": user.role, "email": user.email},
    )
    await db.commit()
    return user


async def _other_active_admins(db: AsyncSession, user: User) -> int:
    # Locked: two admins demoting each other at once must not both succeed and
    # leave nobody who can sign in as admin.
    ids = (
        await db.scalars(
            select(User.id)
            .where(
                User.organization_id == user.organization_id,
                User.role == "admin",
                User.is_active.is_(True),
                User.id != user.id,
            )
            .with_for_update()
        )
    ).all()
    return len(ids)


async def change_user(
    db: AsyncSession,
    redis: Redis,
    store: Store,
    namespace: str,
    user_id: uuid.UUID,
    change: UserChangeIn,
    actor: Principal,
) -> User:
    """Change an account's role or state, audited; then end its sign-ins. Commits.

    Refused (409) for the actor's own account (``own_account``: nobody locks
    themselves out by a slip) and for a change that would leave no active
    admin (``last_admin``).
    """
    user = await db.get(User, user_id, with_for_update=True)
    if user is None or user.organization_id != actor.organization_id or user.role == "operator":
        raise NotFound("user not found")
    role_changes = change.role is not None and change.role != user.role
    state_changes = change.active is not None and change.active != user.is_active
    if not role_changes and not state_changes:
        return user
    if user.id == actor.id:
        raise Conflict(
            "You cannot change your own role or disable your own account; "
            "another admin can do it for you",
            code="own_account",
        )
    stops_being_admin = (
        user.role == "admin"
        and user.is_active
        and ((role_changes and change.role != "admin") or change.active is False)
    )
    if stops_being_admin and await _other_active_admins(db, user) == 0:
        raise Conflict(
            f"{user.name} is the last active admin; make someone else an admin first",
            code="last_admin",
        )
    if role_changes:
        record_audit(
            db,
            actor_id=actor.id,
            action="user.role",
            subject_type="user",
            subject_id=user.id,
            details={"from": user.role, "to": change.role},
        )
        user.role = str(change.role)
    if state_changes:
        record_audit(
            db,
            actor_id=actor.id,
            action="user.enable" if change.active else "user.disable",
            subject_type="user",
            subject_id=user.id,
        )
        user.is_active = bool(change.active)
    await db.commit()
    # After the commit: a sign-in starting now reads the new role or state.
    await revoke_all_signins(redis, store, namespace, user.id)
    return user
