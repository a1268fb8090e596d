"""A session's total, written by grading and read by results and review."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import DateTime, Float, ForeignKey, Integer
from sqlalchemy.orm import Mapped, mapped_column

from safexam.core.db import Base


class Result(Base):
    __tablename__ = "results"

    session_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("exam_sessions.id", ondelete="CASCADE"), primary_key=True
    )
    score: Mapped[float] = mapped_column(Float, nullable=False)
    max_score: Mapped[float] = mapped_column(Float, nullable=False)
    # Questions still waiting for a score (e.g. code not yet run): the total is provisional.
    pending_count: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    grading_version: Mapped[int] = mapped_column(Integer, nullable=False)
    graded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    released_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
