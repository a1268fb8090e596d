"""How pages say things: durations, moments, exam states and integrity events in words."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

__all__ = [
    "FILTERS",
    "INTEGRITY_EVENTS",
    "RESULTS_POLICY",
    "STATE_LABELS",
    "accommodations",
    "duration",
    "multiplier",
    "points",
    "utc_clock",
    "utc_iso",
    "utc_text",
    "wait",
]

#: Each state of ``StudentExam.state``, as the exam list heads it.
STATE_LABELS: dict[str, str] = {
    "in_progress": "In progress",
    "open": "Open now",
    "upcoming": "Upcoming",
    "submitted": "Submitted",
    "results_released": "Results released",
    "closed": "Closed",
}

#: What is recorded for the integrity log during an exam, per event kind, in the
#: student's words: what the exam page reports, and (``ip_changed``) what the
#: server notices itself.
INTEGRITY_EVENTS: dict[str, str] = {
    "focus_lost": "when the exam window loses focus, and when it gets it back",
    "visibility_hidden": "when you switch to another tab or hide the window, and when you return",
    "fullscreen_exit": "when you leave full screen, and when you go back to it",
    "copy": "when you copy text",
    "paste": "when you paste text, with its length (never the text itself)",
    "offline": "when your connection drops, and when it comes back",
    "ip_changed": "when your network address or browser changes during the exam",
}


def _plural(count: int, unit: str) -> str:
    return f"{count} {unit}" if count == 1 else f"{count} {unit}s"


def duration(seconds: int | float) -> str:
    """``5400`` -> ``1 hour 30 minutes``; whole minutes (rounded up below one)."""
    minutes = max(0, round(seconds / 60))
    if minutes == 0 and seconds > 0:
        minutes = 1
    hours, minutes = divmod(minutes, 60)
    parts = []
    if hours:
        parts.append(_plural(hours, "hour"))
    if minutes or not hours:
        parts.append(_plural(minutes, "minute"))
    return " ".join(parts)


def wait(seconds: int) -> str:
    """A wait in words: ``4 minutes 10 seconds``, ``45 seconds``."""
    seconds = max(1, int(seconds))
    minutes, rest = divmod(seconds, 60)
    if not minutes:
        return _plural(rest, "second")
    if not rest:
        return _plural(minutes, "minute")
    return f"{_plural(minutes, 'minute')} {_plural(rest, 'second')}"


def utc_iso(moment: datetime) -> str:
    """The machine-readable moment for ``<time datetime>`` (UTC, seconds precision)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def utc_text(moment: datetime) -> str:
    """The moment shown before the page's script rewrites it in the reader's zone."""
    return moment.astimezone(UTC).strftime("%a %d %b %Y, %H:%M UTC")


def utc_clock(moment: datetime) -> str:
    """A time of day to the second, before the page's script rewrites it in the reader's zone."""
    return moment.astimezone(UTC).strftime("%H:%M:%S UTC")


def multiplier(value: float) -> str:
    """``1.5`` -> ``50% more time``."""
    return f"{round((value - 1) * 100)}% more time"


def accommodations(detail: Any) -> str | None:
    """A student's extra time in words (``50% more time and 15 more minutes``), or None."""
    parts = []
    if detail.time_multiplier > 1:
        parts.append(multiplier(detail.time_multiplier))
    if detail.extra_minutes > 0:
        parts.append(f"{duration(detail.extra_minutes * 60)} more")
    return " and ".join(parts) or None


RESULTS_POLICY = {
    "immediate": "Your score is shown as soon as your exam is graded.",
    "after_close": "Your score is shown once the exam has closed for everyone.",
    "manual": "Your score is shown when your educator releases the results.",
}


def points(value: float) -> str:
    """``1.0`` -> ``1 point``, ``2.5`` -> ``2.5 points``."""
    shown = f"{value:g}"
    return f"{shown} point" if value == 1 else f"{shown} points"


# How a programming language is named to a student.
LANGUAGE_LABELS = {
    "python": "Python",
    "c": "C",
    "cpp": "C++",
    "java": "Java",
    "javascript": "JavaScript",
}


FILTERS: dict[str, Callable[..., Any]] = {
    "language_label": lambda name: LANGUAGE_LABELS.get(name, name),
    "points": points,
    "accommodations": accommodations,
    "results_policy": lambda policy: RESULTS_POLICY.get(policy, ""),
    "duration": duration,
    "wait": wait,
    "utc_iso": utc_iso,
    "utc_text": utc_text,
    "utc_clock": utc_clock,
    "multiplier": multiplier,
    "state_label": lambda state: STATE_LABELS.get(state, state),
}
