"""The ``organizations`` table: one row per tenant (a college, a club)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, DateTime, ForeignKey, Text, func
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from safexam.core.db import Base, Timestamped, new_id

#: The organization the migration moved existing data into, and where accounts
#: made without naming one (the CLI's default, Google sign-ins with no
#: matching domain on a single-tenant deployment) belong.
DEFAULT_SLUG = "default"


class Organization(Timestamped, Base):
    __tablename__ = "organizations"
    __table_args__ = (
        # Slugs appear in URLs and on the command line: lower-case words and hyphens.
        CheckConstraint("slug ~ '^[a-z0-9]([a-z0-9-]{0,62}[a-z0-9])?$'", name="slug_format"),
    )

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(Text, nullable=False)
    slug: Mapped[str] = mapped_column(Text, nullable=False, unique=True)
    # Email domains whose verified Google addresses join this organization as students.
    allowed_domains: Mapped[list[str]] = mapped_column(
        ARRAY(Text), nullable=False, server_default="{}"
    )
    time_zone: Mapped[str] = mapped_column(Text, nullable=False, server_default="UTC")
    # Settings a new exam of this organization starts from (e.g. integrity, release policy).
    exam_defaults: Mapped[dict[str, Any]] = mapped_column(
        JSONB, nullable=False, server_default="{}"
    )


class Invitation(Base):
    """A single-use, expiring link that lets someone join an organization as staff.

    Only a hash of the token is stored: the link itself is shown once, to the
    admin who made it, and a copy of this table opens no account.
    """

    __tablename__ = "invitations"
    __table_args__ = (CheckConstraint("role IN ('educator', 'admin')", name="role"),)

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=new_id)
    organization_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), nullable=False, index=True
    )
    email: Mapped[str] = mapped_column(Text, nullable=False)
    role: Mapped[str] = mapped_column(Text, nullable=False, server_default="educator")
    token_hash: Mapped[str] = mapped_column(Text, nullable=False, unique=True)
    invited_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False
    )
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
