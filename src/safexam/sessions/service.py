"""The names other packages and the tests import from here; the code lives in
``start``, ``autosave``, ``closing`` and ``review`` beside this module."""

from __future__ import annotations

from safexam.sessions.autosave import autosave
from safexam.sessions.closing import finalize_expired_session, sweep_expired_sessions
from safexam.sessions.start import list_student_exams, start_session

__all__ = [
    "autosave",
    "finalize_expired_session",
    "list_student_exams",
    "start_session",
    "sweep_expired_sessions",
]
