"""The ``organizations`` table: one row per tenant (a college, a club)."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import CheckConstraint, Text
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
