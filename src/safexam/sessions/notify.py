"""The live events of exam sessions themselves (grading's are in ``grading/notify.py``)."""

from __future__ import annotations

from typing import ClassVar, Literal

from safexam.core.events import LiveEvent

__all__ = ["SessionExpired"]


class SessionExpired(LiveEvent, kw_only=True):
    """The deadline passed and the session was submitted for the student."""

    topic: ClassVar[str] = "session"
    status: Literal["expired"] = "expired"
