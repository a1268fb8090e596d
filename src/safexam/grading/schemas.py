"""Wire shapes of overrides and regrades."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

import msgspec

__all__ = ["OverrideIn", "OverrideOut", "RegradeIn", "SessionResultOut"]


class OverrideIn(msgspec.Struct, forbid_unknown_fields=True):
    """``score: null`` removes the override (automatic grading counts again).

    ``comment`` is shown to the student beside the score; ``reason`` is why the
    score changes, kept in the audit trail for staff only, and required.
    """

    score: Annotated[float, msgspec.Meta(ge=0)] | None
    comment: Annotated[str, msgspec.Meta(max_length=2000)] | None = None
    reason: Annotated[str, msgspec.Meta(max_length=2000)] | None = None


class SessionResultOut(msgspec.Struct):
    score: float
    max_score: float
    pending_count: int


class OverrideOut(msgspec.Struct):
    id: uuid.UUID
    session_id: uuid.UUID
    question_id: uuid.UUID
    score: float | None
    max_score: float | None
    override_score: float | None
    override_comment: str | None
    override_by: uuid.UUID | None
    override_at: datetime | None
    result: SessionResultOut


class RegradeIn(msgspec.Struct, forbid_unknown_fields=True):
    question_ids: Annotated[list[uuid.UUID], msgspec.Meta(max_length=500)] | None = None
    dry_run: bool = False
