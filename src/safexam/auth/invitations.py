"""Invitations: an org admin invites an educator by a single-use link that expires.

The link carries a random token; only its SHA-256 is stored. Accepting sets
the newcomer's name and password, or signs them in with Google, and creates
the account in the inviting organization, once: a used or expired link is
refused in words.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from datetime import datetime, timedelta
from typing import Literal

import msgspec
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from safexam.auth.guards import Principal
from safexam.auth.models import User
from safexam.auth.schemas import Email
from safexam.auth.service import add_user, get_user_by_email, normalize_email
from safexam.core.audit import record_audit
from safexam.core.db import utcnow
from safexam.core.errors import ApiError, Conflict, Forbidden
from safexam.orgs.models import Invitation, Organization

__all__ = [
    "INVITATION_DAYS",
    "InvitationIn",
    "InvitationOut",
    "InvitationRefused",
    "accept_invitation",
    "accept_invitation_with_identity",
    "create_invitation",
    "join_path",
    "open_invitation",
]

INVITATION_DAYS = 7
JOIN_PREFIX = "/join/"


class InvitationIn(msgspec.Struct, forbid_unknown_fields=True):
    email: Email
    role: Literal["educator", "admin"] = "educator"


class InvitationOut(msgspec.Struct):
    id: uuid.UUID
    email: str
    role: str
    expires_at: datetime
    #: The link to send, shown this once (only its hash is kept).
    url: str


class InvitationRefused(ApiError):
    """The link cannot be used: unknown, used already, or expired (410, said in words)."""

    status_code = 410
    code = "invitation_unusable"


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def join_path(token: str) -> str:
    return JOIN_PREFIX + token


async def create_invitation(
    db: AsyncSession, data: InvitationIn, actor: Principal, *, base_url: str
) -> InvitationOut:
    """A new invitation into the actor's organization; audited; commits.

    409 ``email_taken`` if the address already has an account (anywhere: emails
    are unique across the deployment).
    """
    email = normalize_email(data.email)
    if await get_user_by_email(db, email) is not None:
        raise Conflict(f"a user with email {email} already exists", code="email_taken")
    token = secrets.token_urlsafe(32)
    invitation = Invitation(
        organization_id=actor.organization_id,
        email=email,
        role=data.role,
        token_hash=_hash(token),
        invited_by=actor.id,
        expires_at=utcnow() + timedelta(days=INVITATION_DAYS),
    )
    db.add(invitation)
    await db.flush()
    record_audit(
        db,
        actor_id=actor.id,
        action="user.invite",
        subject_type="invitation",
        subject_id=invitation.id,
        details={"email": email, "role": data.role},
    )
    await db.commit()
    return InvitationOut(
        id=invitation.id,
        email=email,
        role=invitation.role,
        expires_at=invitation.expires_at,
        url=base_url.rstrip("/") + join_path(token),
    )


async def open_invitation(
    db: AsyncSession, token: str, *, for_update: bool = False
) -> tuple[Invitation, Organization]:
    """The usable invitation behind a token, or :class:`InvitationRefused` saying why not."""
    stmt = (
        select(Invitation, Organization)
        .join(Organization, Organization.id == Invitation.organization_id)
        .where(Invitation.token_hash == _hash(token))
    )
    if for_update:
        stmt = stmt.with_for_update(of=Invitation)
    row = (await db.execute(stmt)).one_or_none()
    if row is None:
        raise InvitationRefused(
            "This invitation link is not valid. Check that you copied all of it, "
            "or ask your organization's administrator for a new one",
            code="invitation_unknown",
        )
    invitation, org = row
    if invitation.used_at is not None:
        raise InvitationRefused(
            "This invitation link has been used already. Sign in with the password "
            "you chose, or ask your organization's administrator for a new link",
            code="invitation_used",
        )
    if invitation.expires_at <= utcnow():
        raise InvitationRefused(
            f"This invitation link expired (links last {INVITATION_DAYS} days). "
            "Ask your organization's administrator for a new one",
            code="invitation_expired",
        )
    return invitation, org


async def accept_invitation(db: AsyncSession, token: str, *, name: str, password: str) -> User:
    """Create the invited account with this name and password and use the link up; commits."""
    invitation, _ = await open_invitation(db, token, for_update=True)
    user = await add_user(
        db,
        email=invitation.email,
        name=name,
        role=invitation.role,
        password=password,
        organization_id=invitation.organization_id,
    )
    invitation.used_at = utcnow()
    record_audit(
        db,
        actor_id=user.id,
        action="user.join",
        subject_type="user",
        subject_id=user.id,
        details={"invitation_id": str(invitation.id), "role": invitation.role},
    )
    await db.commit()
    return user


async def accept_invitation_with_identity(
    db: AsyncSession, token: str, *, issuer: str, subject: str, email: str, name: str
) -> User:
    """Create the invited account signed in by a verified OpenID identity; commits.

    The identity's verified address must be the one invited: the link may have
    been forwarded, and the invitation names who may use it. An identity that
    already signs in to an account cannot join again.
    """
    invitation, _ = await open_invitation(db, token, for_update=True)
    if normalize_email(email) != invitation.email:
        raise Forbidden(
            f"This invitation is for {invitation.email}, and you signed in as "
            f"{normalize_email(email)}. Sign in with the invited address, or ask "
            "your organization's administrator to invite this one",
            code="invitation_other_address",
        )
    taken = await db.scalar(
        select(User.id).where(User.oidc_issuer == issuer, User.oidc_subject == subject)
    )
    if taken is not None:
        raise Conflict(
            "This account already signs in to SafeExam; sign in with it instead",
            code="identity_linked",
        )
    user = await add_user(
        db,
        email=invitation.email,
        name=name,
        role=invitation.role,
        oidc_issuer=issuer,
        oidc_subject=subject,
        organization_id=invitation.organization_id,
    )
    invitation.used_at = utcnow()
    record_audit(
        db,
        actor_id=user.id,
        action="user.join",
        subject_type="user",
        subject_id=user.id,
        details={"invitation_id": str(invitation.id), "role": invitation.role, "with": issuer},
    )
    await db.commit()
    return user
