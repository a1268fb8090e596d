"""Onboarding requests: checked and stored from the landing page's form, listed for operators.

Anyone may send one, signed in or not, so each address may store only a few
an hour (:data:`REQUESTS_PER_WINDOW`): enough for a person correcting a typo,
too few for a script to fill the operators' list.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

import msgspec
import structlog
from redis.asyncio import Redis
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from safexam.core.errors import RateLimited, Unprocessable
from safexam.core.redis import incr_fixed_window
from safexam.onboarding.models import SIZES, OnboardingRequest

__all__ = [
    "MAX_MESSAGE",
    "MAX_NAME",
    "REQUESTS_PER_WINDOW",
    "WINDOW_SECONDS",
    "OnboardingIn",
    "OnboardingPage",
    "list_onboarding_requests",
    "request_onboarding",
]

log = structlog.get_logger(__name__)

MAX_NAME = 200
MAX_EMAIL = 320
MAX_MESSAGE = 4000
REQUESTS_PER_WINDOW = 10
WINDOW_SECONDS = 3600
PER_PAGE = 50
# Enough to refuse what is plainly not an address; the reply is what proves it.
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class OnboardingIn(msgspec.Struct, kw_only=True):
    """The form as sent; every field a string, checked by :func:`request_onboarding`."""

    institution: str = ""
    contact_name: str = ""
    email: str = ""
    size: str = ""
    message: str = ""


@dataclass(frozen=True)
class OnboardingPage:
    items: list[OnboardingRequest]
    total: int
    page: int
    per_page: int


def _problems(data: OnboardingIn) -> list[dict[str, str]]:
    """Every field's problem at once, in words, so the form shows them all together."""
    found: list[dict[str, str]] = []

    def refuse(field: str, message: str) -> None:
        found.append({"field": field, "message": message})

    if not data.institution:
        refuse("institution", "Enter the name of your college, school or club.")
    elif len(data.institution) > MAX_NAME:
        refuse("institution", f"Keep the institution's name under {MAX_NAME} characters.")
    if not data.contact_name:
        refuse("contact_name", "Enter your name, so we know whom to answer.")
    elif len(data.contact_name) > MAX_NAME:
        refuse("contact_name", f"Keep your name under {MAX_NAME} characters.")
    if not data.email:
        refuse("email", "Enter your email address, so we can answer.")
    elif len(data.email) > MAX_EMAIL or not _EMAIL.match(data.email):
        refuse("email", "Enter an email address, like name@college.edu.")
    if data.size not in SIZES:
        refuse("size", "Choose about how many students would take exams.")
    if len(data.message) > MAX_MESSAGE:
        refuse("message", f"Keep the message under {MAX_MESSAGE} characters.")
    for field in ("institution", "contact_name", "email", "message"):
        if "\x00" in getattr(data, field):
            refuse(field, "Remove the invisible NUL character from this field.")
    return found


def _cleaned(data: OnboardingIn) -> OnboardingIn:
    return OnboardingIn(
        institution=data.institution.strip(),
        contact_name=data.contact_name.strip(),
        email=data.email.strip().lower(),
        size=data.size.strip(),
        message=data.message.strip(),
    )


async def request_onboarding(
    db: AsyncSession,
    redis: Redis,
    data: OnboardingIn,
    *,
    ip: str,
    namespace: str,
    per_window: int = REQUESTS_PER_WINDOW,
) -> OnboardingRequest:
    """Store one request. 422 naming every bad field; 429 past the address's allowance.

    Commits. Only well-formed requests count against the allowance: someone
    fixing their email is not refused for having made a mistake.
    """
    data = _cleaned(data)
    problems = _problems(data)
    if problems:
        raise Unprocessable("Some fields of the request need attention", details=problems)
    digest = hashlib.sha256(ip.encode()).hexdigest()[:32]
    count, ttl = await incr_fixed_window(redis, f"{namespace}:onboarding:{digest}", WINDOW_SECONDS)
    if count > per_window:
        raise RateLimited(
            f"At most {per_window} requests an hour from one address",
            retry_after=ttl if ttl > 0 else WINDOW_SECONDS,
        )
    row = OnboardingRequest(
        institution=data.institution,
        contact_name=data.contact_name,
        email=data.email,
        size=data.size,
        message=data.message,
    )
    db.add(row)
    await db.commit()
    log.info("onboarding_requested", onboarding_request_id=str(row.id), size=row.size)
    return row


async def list_onboarding_requests(db: AsyncSession, *, page: int = 1) -> OnboardingPage:
    """The requests, newest first, :data:`PER_PAGE` to a page."""
    page = max(1, page)
    total = int(await db.scalar(select(func.count()).select_from(OnboardingRequest)) or 0)
    items = (
        await db.scalars(
            select(OnboardingRequest)
            .order_by(OnboardingRequest.created_at.desc(), OnboardingRequest.id)
            .limit(PER_PAGE)
            .offset((page - 1) * PER_PAGE)
        )
    ).all()
    return OnboardingPage(items=list(items), total=total, page=page, per_page=PER_PAGE)
