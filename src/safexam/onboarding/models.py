"""An institution's request to talk about using SafeExam."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, DateTime, Index, Text, func
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Mapped, mapped_column

from safexam.core.db import Base, new_id

__all__ = ["SIZES", "OnboardingRequest"]

#: How many students the institution would examine, as offered on the form.
SIZES: tuple[str, ...] = ("under_100", "100_to_1000", "1000_to_10000", "over_10000")


class OnboardingRequest(Base):
    """One "Talk to us" form as a visitor sent it; operators read them newest first."""

    __tablename__ = "onboarding_requests"
    __table_args__ = (
        CheckConstraint(
            "size IN ('under_100', '100_to_1000', '1000_to_10000', 'over_10000')",
            name="size",
        ),
        Index("ix_onboarding_requests_created_at", "created_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=new_id)
    institution: Mapped[str] = mapped_column(Text, nullable=False)
    contact_name: Mapped[str] = mapped_column(Text, nullable=False)
    email: Mapped[str] = mapped_column(Text, nullable=False)
    size: Mapped[str] = mapped_column(Text, nullable=False)
    message: Mapped[str] = mapped_column(Text, nullable=False, server_default="")
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )
