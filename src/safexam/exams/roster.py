"""Rosters: a pasted list or an uploaded CSV of students, enrolled with a report.

The rule for a roster with bad rows: every row is checked before anything is
written; the rows that pass are enrolled together in one transaction (through
:func:`safexam.exams.enrollments.upsert_enrollments`, as ``PUT .../enrollments``
does), and every row that does not is left out and comes back in the report
with its line number and the reason in words. Nothing is refused without being
reported. A roster that cannot be read as a whole (empty, an unknown column in
its header, more rows than one enrolment takes) changes nothing: 422.

Accepted formats, one student per line, commas, semicolons or tabs between
cells:

- no header: ``email[, extra minutes][, multiplier]``; a second cell written
  ``x1.5`` (or ``1.5x``) is a multiplier instead of extra minutes;
- a header row naming ``email`` and any of ``extra_minutes`` and
  ``multiplier`` (or ``time_multiplier``), in any order.

An email without an account yet is accepted (pre-enrolled, linked when the
account is created), and the report says so.
"""

from __future__ import annotations

import csv
import io
import re
import uuid
from typing import Annotated

import msgspec
import structlog
from msgspec import UNSET
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from safexam.auth.models import User
from safexam.auth.service import normalize_email
from safexam.core.audit import record_audit
from safexam.core.errors import Unprocessable
from safexam.exams.enrollments import upsert_enrollments
from safexam.exams.models import Exam
from safexam.exams.schemas import EnrollmentIn

__all__ = [
    "MAX_ROSTER_ROWS",
    "RosterAccepted",
    "RosterIn",
    "RosterRefused",
    "RosterReport",
    "import_roster",
    "read_roster",
]

log = structlog.get_logger(__name__)

MAX_ROSTER_ROWS = 5_000
MAX_EXTRA_MINUTES = 10_000
MAX_MULTIPLIER = 10.0
_EMAIL = re.compile(r"^[^@\s\x00-\x1f]+@[^@\s\x00-\x1f]+\.[^@\s\x00-\x1f]+$")
_COLUMNS = {
    "email": "email",
    "e-mail": "email",
    "extra_minutes": "extra_minutes",
    "extra minutes": "extra_minutes",
    "extra_time": "extra_minutes",
    "extra": "extra_minutes",
    "multiplier": "time_multiplier",
    "time_multiplier": "time_multiplier",
    "time multiplier": "time_multiplier",
}


class RosterIn(msgspec.Struct, forbid_unknown_fields=True):
    """The roster's text: pasted lines or an uploaded CSV file's content."""

    text: Annotated[str, msgspec.Meta(min_length=1, max_length=2_000_000)]


class RosterAccepted(msgspec.Struct):
    line: int
    email: str
    extra_minutes: int | None
    time_multiplier: float | None
    # False: no account yet; the enrolment is linked when the student's account is made.
    has_account: bool


class RosterRefused(msgspec.Struct):
    line: int
    text: str
    # bad_email, duplicate, not_a_student, bad_extra_minutes, bad_multiplier, too_many_cells
    code: str
    reason: str


class RosterReport(msgspec.Struct):
    enrolled: list[RosterAccepted]
    refused: list[RosterRefused]


class _Row(msgspec.Struct):
    line: int
    text: str
    cells: list[str]


def _delimiter(lines: list[str]) -> str:
    sample = next((line for line in lines if line.strip()), "")
    if "\t" in sample:
        return "\t"
    if ";" in sample and "," not in sample:
        return ";"
    return ","


def _rows(text: str) -> tuple[list[str] | None, list[_Row]]:
    """The header's columns (None without a header) and the non-blank rows."""
    lines = text.lstrip("\ufeff").splitlines()
    reader = csv.reader(io.StringIO("\n".join(lines)), delimiter=_delimiter(lines))
    rows: list[_Row] = []
    for number, cells in enumerate(reader, start=1):
        cells = [cell.strip() for cell in cells]
        while cells and not cells[-1]:
            cells.pop()
        if not cells:
            continue
        original = lines[number - 1].strip() if number <= len(lines) else ",".join(cells)
        rows.append(_Row(line=number, text=original, cells=cells))
    header: list[str] | None = None
    if rows and "@" not in rows[0].cells[0]:
        names = [cell.lower() for cell in rows[0].cells]
        if "email" in names or "e-mail" in names:
            unknown = [name for name in names if name not in _COLUMNS]
            if unknown:
                raise Unprocessable(
                    f"the header names a column this roster does not know: {unknown[0]!r} "
                    "(known: email, extra_minutes, multiplier)",
                    field="text",
                )
            header = [_COLUMNS[name] for name in names]
            rows = rows[1:]
    if not rows:
        raise Unprocessable("the roster has no students in it", field="text")
    if len(rows) > MAX_ROSTER_ROWS:
        raise Unprocessable(
            f"the roster has {len(rows)} rows; at most {MAX_ROSTER_ROWS} at a time", field="text"
        )
    return header, rows


def _extra_minutes(cell: str) -> int:
    value = int(cell)
    if not 0 <= value <= MAX_EXTRA_MINUTES:
        raise ValueError(cell)
    return value


# x and the multiplication sign, as a spreadsheet may write it.
_TIMES = ("x", "\u00d7")


def _multiplier(cell: str) -> float:
    value = float(cell.lower().strip("".join(_TIMES) + " "))
    if not 1 <= value <= MAX_MULTIPLIER:
        raise ValueError(cell)
    return value


def _is_multiplier(cell: str) -> bool:
    lowered = cell.lower()
    return lowered.startswith(_TIMES) or lowered.endswith(_TIMES)


class _Checked(msgspec.Struct):
    line: int
    email: str
    extra_minutes: int | None
    time_multiplier: float | None


def _check_cells(row: _Row, header: list[str] | None) -> _Checked | RosterRefused:
    def refuse(code: str, reason: str) -> RosterRefused:
        return RosterRefused(line=row.line, text=row.text, code=code, reason=reason)

    columns = header or ["email", "extra_minutes", "time_multiplier"]
    if len(row.cells) > len(columns):
        return refuse(
            "too_many_cells",
            f"It has {len(row.cells)} cells; a row has at most {len(columns)} "
            f"({', '.join(columns)}).",
        )
    values = dict(zip(columns, row.cells, strict=False))
    if header is None and _is_multiplier(values.get("extra_minutes", "")):
        values["time_multiplier"] = values.pop("extra_minutes")
    email = values.get("email", "")
    if not _EMAIL.match(email):
        if not email:
            return refuse("bad_email", "It has no email address.")
        return refuse("bad_email", f"“{email}” is not an email address.")
    extra: int | None = None
    if values.get("extra_minutes"):
        try:
            extra = _extra_minutes(values["extra_minutes"])
        except ValueError:
            return refuse(
                "bad_extra_minutes",
                f"Extra minutes must be a whole number from 0 to {MAX_EXTRA_MINUTES}, "
                f"not “{values['extra_minutes']}”.",
            )
    multiplier: float | None = None
    if values.get("time_multiplier"):
        try:
            multiplier = _multiplier(values["time_multiplier"])
        except ValueError:
            return refuse(
                "bad_multiplier",
                f"The time multiplier must be a number from 1 to {MAX_MULTIPLIER:g} "
                f"(1.5 is half as much time again), not “{values['time_multiplier']}”.",
            )
    return _Checked(
        line=row.line, email=normalize_email(email), extra_minutes=extra, time_multiplier=multiplier
    )


async def read_roster(
    db: AsyncSession, exam: Exam, text: str
) -> tuple[list[RosterAccepted], list[RosterRefused]]:
    """Check every row of the roster; nothing is written."""
    header, rows = _rows(text)
    checked: list[_Checked] = []
    refused: list[RosterRefused] = []
    for row in rows:
        result = _check_cells(row, header)
        if isinstance(result, RosterRefused):
            refused.append(result)
        else:
            checked.append(result)
    emails = {c.email for c in checked}
    roles = (
        {
            email: (role if organization_id == exam.organization_id else "other_organization")
            for email, role, organization_id in (
                await db.execute(
                    select(User.email, User.role, User.organization_id).where(
                        User.email.in_(emails)
                    )
                )
            ).all()
        }
        if emails
        else {}
    )
    seen: dict[str, int] = {}
    accepted: list[RosterAccepted] = []
    texts = {row.line: row.text for row in rows}
    for item in checked:
        role = roles.get(item.email)
        if item.email in seen:
            reason = f"{item.email} is already on line {seen[item.email]}."
            refused.append(RosterRefused(item.line, texts[item.line], "duplicate", reason))
            continue
        seen[item.email] = item.line
        if role == "other_organization":
            reason = f"{item.email} belongs to another organization."
            refused.append(RosterRefused(item.line, texts[item.line], "other_organization", reason))
            continue
        if role is not None and role != "student":
            reason = f"{item.email} belongs to an {role} account, not a student."
            refused.append(RosterRefused(item.line, texts[item.line], "not_a_student", reason))
            continue
        accepted.append(
            RosterAccepted(
                line=item.line,
                email=item.email,
                extra_minutes=item.extra_minutes,
                time_multiplier=item.time_multiplier,
                has_account=role is not None,
            )
        )
    refused.sort(key=lambda r: r.line)
    return accepted, refused


async def import_roster(
    db: AsyncSession, exam: Exam, text: str, *, actor_id: uuid.UUID
) -> RosterReport:
    """Enroll the roster's good rows in one transaction and report the others (see the module)."""
    accepted, refused = await read_roster(db, exam, text)
    if accepted:
        record_audit(
            db,
            actor_id=actor_id,
            action="enrollments_imported",
            subject_type="exam",
            subject_id=exam.id,
            exam_id=exam.id,
            details={"enrolled": len(accepted), "refused": len(refused)},
        )
        await upsert_enrollments(
            db,
            exam,
            [
                EnrollmentIn(
                    email=a.email,
                    extra_minutes=UNSET if a.extra_minutes is None else a.extra_minutes,
                    time_multiplier=UNSET if a.time_multiplier is None else a.time_multiplier,
                )
                for a in accepted
            ],
        )
    log.info("roster_imported", exam_id=str(exam.id), enrolled=len(accepted), refused=len(refused))
    return RosterReport(enrolled=accepted, refused=refused)
