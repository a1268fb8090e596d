"""The ``users`` table."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Integer,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Mapped, mapped_column

from safexam.core.db import Base, Timestamped, new_id

# "admin" administers one organization (its people, its audit trail, all its
# exams and questions); "operator" runs the deployment (queues, the list of
# organizations) and sees no organization's exams, questions or people.
ORG_ROLES = ("student", "educator", "admin")
ROLES = (*ORG_ROLES, "operator")


class User(Timestamped, Base):
    __tablename__ = "users"
    __table_args__ = (
        CheckConstraint("role IN ('student', 'educator', 'admin', 'operator')", name="role"),
        # Emails are stored lower-cased by the service; the check keeps it so.
        CheckConstraint("email = lower(email)", name="email_lowercase"),
        UniqueConstraint("oidc_issuer", "oidc_subject"),
    )

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=new_id)
    email: Mapped[str] = mapped_column(Text, unique=True, nullable=False)
    name: Mapped[str] = mapped_column(Text, nullable=False)
    role: Mapped[str] = mapped_column(Text, nullable=False)
    organization_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organizations.id", ondelete="RESTRICT"), nullable=False, index=True
    )
    password_hash: Mapped[str | None] = mapped_column(Text)
    oidc_issuer: Mapped[str | None] = mapped_column(Text)
    oidc_subject: Mapped[str | None] = mapped_column(Text)
    # A student's standing extra time, used by enrolments that do not say otherwise.
    extra_minutes: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    is_active: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default="true")
    last_login_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
