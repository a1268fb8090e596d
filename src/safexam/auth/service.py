"""Users: creation, lookup and password authentication."""

from __future__ import annotations

import uuid

from redis.asyncio import Redis
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from safexam.auth.models import ROLES, User
from safexam.auth.passwords import (
    hash_password,
    hash_password_off_loop,
    needs_rehash,
    verify_password_off_loop,
)
from safexam.auth.ratelimit import LoginLimiter
from safexam.core.db import utcnow
from safexam.core.errors import Conflict, Forbidden, NotAuthenticated, Unprocessable
from safexam.core.settings import Settings
from safexam.orgs.service import (
    any_domains_configured,
    default_organization_id,
    organization_for_email,
)

__all__ = [
    "add_user",
    "authenticate",
    "create_user",
    "find_or_create_oidc_user",
    "get_user_by_email",
    "link_enrollments",
    "normalize_email",
    "password_sign_in",
]


def normalize_email(email: str) -> str:
    return email.strip().lower()


async def get_user_by_email(db: AsyncSession, email: str) -> User | None:
    result = await db.execute(select(User).where(User.email == normalize_email(email)))
    return result.scalar_one_or_none()


async def link_enrollments(db: AsyncSession, user: User) -> None:
    """Attach enrollments made by email before this user existed (pre-enrollment).

    Only on exams of the user's own organization: an address pre-enrolled by
    another organization never opens its exam to this account.
    """
    from safexam.exams.models import Enrollment, Exam

    await db.execute(
        update(Enrollment)
        .where(
            Enrollment.email == user.email,
            Enrollment.user_id.is_(None),
            Enrollment.exam_id.in_(
                select(Exam.id).where(Exam.organization_id == user.organization_id)
            ),
        )
        .values(user_id=user.id)
    )


async def add_user(
    db: AsyncSession,
    *,
    email: str,
    name: str,
    role: str,
    password: str | None = None,
    oidc_issuer: str | None = None,
    oidc_subject: str | None = None,
    organization_id: uuid.UUID | None = None,
    extra_minutes: int = 0,
) -> User:
    """Add a user and link their pre-enrollments, without committing.

    ``organization_id`` None places the user in the default organization (the
    single-tenant deployment's only one).

    Raises :class:`Conflict` if the email is taken (the transaction is then
    rolled back: after the failed insert it could not go on anyway).
    """
    if role not in ROLES:
        raise Unprocessable(f"role must be one of {', '.join(ROLES)}", field="role")
    if password is not None and len(password) < 8:
        raise Unprocessable("password must be at least 8 characters", field="password")
    if organization_id is None:
        organization_id = await default_organization_id(db)
    user = User(
        organization_id=organization_id,
        extra_minutes=extra_minutes,
        email=normalize_email(email),
        name=name.strip() or normalize_email(email),
        role=role,
        password_hash=hash_password(password) if password else None,
        oidc_issuer=oidc_issuer,
        oidc_subject=oidc_subject,
    )
    db.add(user)
    try:
        await db.flush()
    except IntegrityError:
        await db.rollback()
        raise Conflict(
            f"a user with email {user.email} already exists", code="email_taken"
        ) from None
    await link_enrollments(db, user)
    return user


async def create_user(
    db: AsyncSession,
    *,
    email: str,
    name: str,
    role: str,
    password: str | None = None,
    oidc_issuer: str | None = None,
    oidc_subject: str | None = None,
    organization_id: uuid.UUID | None = None,
) -> User:
    """Create a user and commit. Raises :class:`Conflict` if the email is taken."""
    user = await add_user(
        db,
        email=email,
        name=name,
        role=role,
        password=password,
        oidc_issuer=oidc_issuer,
        oidc_subject=oidc_subject,
        organization_id=organization_id,
    )
    await db.commit()
    return user


async def authenticate(db: AsyncSession, email: str, password: str) -> User | None:
    """The user if the password is right and the account active, else None (same timing).

    A disabled account with the right password raises :class:`Forbidden`
    ``account_disabled``: whoever knows the password may learn why it fails.
    """
    user = await get_user_by_email(db, email)
    password_hash = user.password_hash if user else None
    if user is not None:
        db.expunge(user)  # its loaded fields survive the rollback below
    # Nothing is written yet: hand the connection back to the pool for the slow hash.
    await db.rollback()
    ok = await verify_password_off_loop(password_hash, password)
    if not ok or user is None:
        return None
    if not user.is_active:
        raise Forbidden("This account is disabled", code="account_disabled")
    values: dict[str, object] = {"last_login_at": utcnow()}
    if password_hash and needs_rehash(password_hash):
        values["password_hash"] = await hash_password_off_loop(password)
    await db.execute(update(User).where(User.id == user.id).values(**values))
    await db.commit()
    return user


async def find_or_create_oidc_user(
    db: AsyncSession,
    *,
    issuer: str,
    subject: str,
    email: str,
    name: str,
    link_to: uuid.UUID | None = None,
) -> User:
    """The user behind a verified OpenID Connect identity; the first sign-in creates a student.

    Lookup is by (issuer, subject) first, because an address can change at the
    provider while the subject never does; then by email, which links a
    student account created earlier (by an educator or a pre-enrollment) to
    this identity. Staff accounts are never linked by email: whoever controls
    an address at the provider would otherwise become that educator or
    administrator. Staff link their identity from a signed-in session
    (``link_to``, the account that asked). An account already linked to a
    different subject of the same issuer is refused: the address was
    reassigned and the new holder must not inherit the account.
    """
    result = await db.execute(
        select(User).where(User.oidc_issuer == issuer, User.oidc_subject == subject)
    )
    user = result.scalar_one_or_none()
    if link_to is not None:
        return await _link_identity(db, link_to, user, issuer=issuer, subject=subject)
    if user is None:
        user = await get_user_by_email(db, email)
        if user is None:
            user = await add_user(
                db,
                email=email,
                name=name,
                role="student",
                oidc_issuer=issuer,
                oidc_subject=subject,
                organization_id=await organization_for_new_student(db, email),
            )
        elif user.oidc_subject is not None and (user.oidc_issuer, user.oidc_subject) != (
            issuer,
            subject,
        ):
            raise Conflict(
                "This email belongs to an account linked to another sign-in identity",
                code="oidc_account_conflict",
            )
        elif user.role != "student":
            raise Conflict(
                "This email belongs to a staff account. Sign in with your password, "
                "then link your Google account from the Account page",
                code="oidc_link_required",
            )
        else:
            user.oidc_issuer = issuer
            user.oidc_subject = subject
    if not user.is_active:
        raise Forbidden("This account is disabled", code="account_disabled")
    user.last_login_at = utcnow()
    await link_enrollments(db, user)
    await db.commit()
    return user


async def organization_for_new_student(db: AsyncSession, email: str) -> uuid.UUID:
    """Where a first sign-in with a verified address belongs: the organization whose
    allowed domains hold the address's domain.

    A deployment where no organization lists a domain is single-tenant: its
    students join the default organization, as before organizations existed.
    Otherwise an address no organization accepts is refused in words.
    """
    org = await organization_for_email(db, email)
    if org is not None:
        return org.id
    if not await any_domains_configured(db):
        return await default_organization_id(db)
    domain = email.rsplit("@", 1)[-1]
    raise Forbidden(
        f"No organization on this SafeExam accepts addresses of {domain}. "
        "Ask your school to add its domain, or sign in with your school address",
        code="no_organization_for_domain",
    )


async def _link_identity(
    db: AsyncSession, user_id: uuid.UUID, holder: User | None, *, issuer: str, subject: str
) -> User:
    """Link the identity to the signed-in account that asked for it."""
    user = await db.get(User, user_id)
    if user is None or not user.is_active:
        raise Forbidden("This account is disabled", code="account_disabled")
    if holder is not None and holder.id != user.id:
        raise Conflict(
            "This Google account already signs in to another SafeExam account",
            code="oidc_account_conflict",
        )
    if user.oidc_subject is not None and (user.oidc_issuer, user.oidc_subject) != (
        issuer,
        subject,
    ):
        raise Conflict(
            "Your account is already linked to another Google account",
            code="oidc_account_conflict",
        )
    user.oidc_issuer = issuer
    user.oidc_subject = subject
    user.last_login_at = utcnow()
    await db.commit()
    return user


async def password_sign_in(
    db: AsyncSession, redis: Redis, settings: Settings, *, email: str, password: str, ip: str
) -> User:
    """The user whose email and password these are, under the failed-attempt limits.

    Raises :class:`RateLimited` (429, with the wait) while a limit is reached,
    :class:`NotAuthenticated` ``invalid_credentials`` for a wrong email or
    password (counted), :class:`Forbidden` ``account_disabled``. The sign-in
    API and the sign-in page both come through here.
    """
    email = normalize_email(email)
    limiter = LoginLimiter(redis, settings)
    address_limited = await limiter.check(email, ip)
    user = await authenticate(db, email, password)
    if user is None:
        await limiter.record_failure(email, ip)
        if address_limited is not None:
            raise address_limited
        raise NotAuthenticated("Wrong email or password", code="invalid_credentials")
    await limiter.record_success(email, ip)
    return user
