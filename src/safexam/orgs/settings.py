"""An organization's settings, changed by its admins: name, sign-in domains, time
zone, and the settings a new exam starts from.

Everything works on the acting admin's own organization (there is no id to
name another). A change is audited in the same transaction.
"""

from __future__ import annotations

import uuid
import zoneinfo
from typing import Annotated, Any, Literal

import msgspec
from msgspec import UNSET, UnsetType
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from safexam.core.audit import record_audit
from safexam.core.errors import Conflict, NotFound, Unprocessable
from safexam.orgs.models import Organization
from safexam.orgs.service import parse_domains

__all__ = [
    "ExamDefaults",
    "OrganizationChangeIn",
    "OrganizationOut",
    "change_organization",
    "exam_defaults_of",
    "organization_settings",
]

# The same bounds as the exam builder's and ``ExamCreate``'s.
Duration = Annotated[int, msgspec.Meta(ge=1, le=60 * 24 * 14)]
Attempts = Annotated[int, msgspec.Meta(ge=1, le=100)]
ReleasePolicy = Literal["immediate", "after_close", "manual"]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
# Bounded so that a request cannot make the overlap query arbitrarily large.
DomainList = Annotated[
    list[Annotated[str, msgspec.Meta(max_length=253)]], msgspec.Meta(max_length=200)
]
DomainText = Annotated[str, msgspec.Meta(max_length=20_000)]


class ExamDefaults(msgspec.Struct, forbid_unknown_fields=True):
    """What the New exam form starts from; each exam keeps its own copy once made."""

    duration_minutes: Duration = 60
    attempts_allowed: Attempts = 1
    shuffle_questions: bool = False
    shuffle_choices: bool = False
    release_policy: ReleasePolicy = "manual"
    require_fullscreen: bool = False


class OrganizationOut(msgspec.Struct):
    id: uuid.UUID
    name: str
    slug: str
    allowed_domains: list[str]
    time_zone: str
    exam_defaults: ExamDefaults


class OrganizationChangeIn(msgspec.Struct, forbid_unknown_fields=True):
    """Only the fields present change; ``allowed_domains`` may be a list or one
    comma-separated string."""

    name: Name | UnsetType = UNSET
    allowed_domains: DomainList | DomainText | UnsetType = UNSET
    time_zone: Annotated[str, msgspec.Meta(max_length=100)] | UnsetType = UNSET
    exam_defaults: ExamDefaults | UnsetType = UNSET


def exam_defaults_of(org: Organization) -> ExamDefaults:
    """The stored defaults, each field falling back to the product's own when it is
    missing or no longer valid (the column predates this form)."""
    stored = org.exam_defaults if isinstance(org.exam_defaults, dict) else {}
    known = {f for f in ExamDefaults.__struct_fields__}
    try:
        return msgspec.convert({k: v for k, v in stored.items() if k in known}, ExamDefaults)
    except msgspec.ValidationError:
        return ExamDefaults()


def _out(org: Organization) -> OrganizationOut:
    return OrganizationOut(
        id=org.id,
        name=org.name,
        slug=org.slug,
        allowed_domains=list(org.allowed_domains),
        time_zone=org.time_zone,
        exam_defaults=exam_defaults_of(org),
    )


async def _own(db: AsyncSession, organization_id: uuid.UUID) -> Organization:
    org = await db.get(Organization, organization_id)
    if org is None:
        raise NotFound("organization not found")
    return org


async def organization_settings(db: AsyncSession, organization_id: uuid.UUID) -> OrganizationOut:
    return _out(await _own(db, organization_id))


async def change_organization(
    db: AsyncSession,
    organization_id: uuid.UUID,
    actor_id: uuid.UUID,
    change: OrganizationChangeIn,
) -> OrganizationOut:
    """Apply ``change`` to the organization, audit it and commit.

    Raises :class:`Unprocessable` naming the field, or :class:`Conflict` when a
    domain belongs to another organization (Google sign-in places a new student
    by domain, so a domain can lead to one organization only).
    """
    org = await _own(db, organization_id)
    changed: dict[str, Any] = {}
    if not isinstance(change.name, UnsetType):
        name = change.name.strip()
        if not name:
            raise Unprocessable("name must not be empty", field="name")
        if name != org.name:
            changed["name"] = name
    if not isinstance(change.time_zone, UnsetType):
        zone = change.time_zone.strip()
        try:
            zoneinfo.ZoneInfo(zone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise Unprocessable(
                f"{zone!r} is not a time zone (e.g. Europe/Paris)", field="time_zone"
            ) from None
        if zone != org.time_zone:
            changed["time_zone"] = zone
    if not isinstance(change.allowed_domains, UnsetType):
        raw = change.allowed_domains
        if isinstance(raw, str):
            raw = raw.replace("\n", ",")
        try:
            domains = parse_domains(raw)
        except Unprocessable as exc:
            raise Unprocessable(exc.message, field="allowed_domains") from None
        if domains:
            # Another organization's claim on any of these domains refuses the change.
            # (The other organization is not named: nothing of it crosses over.)
            claimed = await db.scalar(
                select(Organization.allowed_domains)
                .where(Organization.allowed_domains.overlap(domains))
                .where(Organization.id != org.id)
                .limit(1)
            )
            if claimed is not None:
                taken = next(d for d in domains if d in claimed)
                message = (
                    f"{taken} already belongs to another organization; Google sign-in places "
                    "a new student by domain, so a domain can lead to one organization only"
                )
                raise Conflict(
                    message,
                    code="domain_taken",
                    details=[{"field": "allowed_domains", "message": message, "domain": taken}],
                )
        if domains != list(org.allowed_domains):
            changed["allowed_domains"] = domains
    if not isinstance(change.exam_defaults, UnsetType):
        defaults = msgspec.to_builtins(change.exam_defaults)
        if defaults != org.exam_defaults:
            changed["exam_defaults"] = defaults
    if changed:
        for key, value in changed.items():
            setattr(org, key, value)
        record_audit(
            db,
            actor_id=actor_id,
            action="organization.settings",
            subject_type="organization",
            subject_id=org.id,
            details=changed,
        )
        await db.commit()
        await db.refresh(org)
    return _out(org)
