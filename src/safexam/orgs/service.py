"""Organizations: creation, lookup, and the default one existing data lives in."""

from __future__ import annotations

import re
import uuid
import zoneinfo

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from safexam.core.errors import Conflict, Unprocessable
from safexam.orgs.models import DEFAULT_SLUG, Organization

__all__ = [
    "DEFAULT_SLUG",
    "add_organization",
    "any_domains_configured",
    "default_organization_id",
    "get_organization",
    "list_organizations",
    "organization_for_email",
    "parse_domains",
]

_SLUG = re.compile(r"^[a-z0-9]([a-z0-9-]{0,62}[a-z0-9])?$")
_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")


def parse_domains(raw: str | list[str]) -> list[str]:
    """Email domains from a comma-separated list (or a list), lower-cased and checked."""
    items = raw.split(",") if isinstance(raw, str) else raw
    domains: list[str] = []
    for item in items:
        domain = item.strip().lower().removeprefix("@")
        if not domain:
            continue
        if not _DOMAIN.match(domain):
            raise Unprocessable(f"{item.strip()!r} is not an email domain", field="domains")
        if domain not in domains:
            domains.append(domain)
    return domains


async def add_organization(
    db: AsyncSession,
    *,
    name: str,
    slug: str,
    domains: list[str] | None = None,
    time_zone: str = "UTC",
) -> Organization:
    """Add an organization in the caller's transaction (flushed, not committed).

    Raises :class:`Unprocessable` naming the bad field, :class:`Conflict` when
    the slug or one of the domains already belongs to another organization
    (a domain places Google sign-ins, so it can lead to one place only).
    """
    name = name.strip()
    slug = slug.strip().lower()
    if not name:
        raise Unprocessable("name must not be empty", field="name")
    if not _SLUG.match(slug):
        raise Unprocessable(
            "slug must be lower-case letters, digits and hyphens (at most 64)", field="slug"
        )
    try:
        zoneinfo.ZoneInfo(time_zone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise Unprocessable(
            f"{time_zone!r} is not a time zone (e.g. Europe/Paris)", field="time_zone"
        ) from None
    clean = parse_domains(domains or [])
    if clean:
        taken = await db.scalar(
            select(Organization.slug).where(Organization.allowed_domains.overlap(clean)).limit(1)
        )
        if taken is not None:
            raise Conflict(
                f"one of these domains already belongs to the organization {taken!r}",
                code="domain_taken",
            )
    org = Organization(name=name, slug=slug, allowed_domains=clean, time_zone=time_zone)
    db.add(org)
    try:
        await db.flush()
    except IntegrityError:
        await db.rollback()
        raise Conflict(f"an organization with slug {slug!r} exists", code="slug_taken") from None
    return org


async def default_organization_id(db: AsyncSession) -> uuid.UUID:
    """The default organization's id, adding it if it is missing (in the caller's transaction)."""
    found = await db.scalar(select(Organization.id).where(Organization.slug == DEFAULT_SLUG))
    if found is not None:
        return found
    # Two first sign-ins at once must not both add it: the unique slug decides.
    await db.execute(
        insert(Organization)
        .values(id=uuid.uuid4(), name="Default organization", slug=DEFAULT_SLUG)
        .on_conflict_do_nothing(index_elements=["slug"])
    )
    found = await db.scalar(select(Organization.id).where(Organization.slug == DEFAULT_SLUG))
    assert found is not None
    return found


async def get_organization(db: AsyncSession, slug: str) -> Organization | None:
    return await db.scalar(select(Organization).where(Organization.slug == slug.strip().lower()))


async def organization_for_email(db: AsyncSession, email: str) -> Organization | None:
    """The organization whose allowed domains hold this address's domain, if any."""
    domain = email.rsplit("@", 1)[-1].strip().lower()
    return await db.scalar(
        select(Organization).where(Organization.allowed_domains.contains([domain])).limit(1)
    )


async def any_domains_configured(db: AsyncSession) -> bool:
    """Whether any organization places sign-ins by email domain."""
    found = await db.scalar(
        select(Organization.id).where(func.cardinality(Organization.allowed_domains) > 0).limit(1)
    )
    return found is not None


async def list_organizations(db: AsyncSession) -> list[tuple[Organization, int]]:
    """Every organization with its number of users, by name (the operator's list)."""
    from safexam.auth.models import User

    counts = (
        select(User.organization_id, func.count().label("n"))
        .group_by(User.organization_id)
        .subquery()
    )
    rows = await db.execute(
        select(Organization, func.coalesce(counts.c.n, 0))
        .outerjoin(counts, counts.c.organization_id == Organization.id)
        .order_by(Organization.name)
    )
    return [(org, int(n)) for org, n in rows.all()]
