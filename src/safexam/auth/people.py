"""Students imported into an organization from a CSV: email, name, optional extra time.

Every row is checked before anything is written; the good rows are created
(or, for a student of this organization who has an account already, their
name and extra time brought up to date) in one transaction, and every other
row comes back in the report with its line and the reason in words.

``extra_minutes`` is the student's standing accommodation: an enrolment that
does not say how much extra time to give uses it
(:func:`safexam.exams.enrollments.upsert_enrollments`).
"""

from __future__ import annotations

import csv
import io
import re
from typing import Annotated

import msgspec
import structlog
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from safexam.auth.guards import Principal
from safexam.auth.models import User
from safexam.auth.service import add_user, normalize_email
from safexam.core.audit import record_audit
from safexam.core.errors import Unprocessable

__all__ = ["MAX_IMPORT_ROWS", "StudentImportIn", "StudentImportOut", "import_students"]

log = structlog.get_logger(__name__)

MAX_IMPORT_ROWS = 5_000
MAX_EXTRA_MINUTES = 600
_EMAIL = re.compile(r"^[^@\s\x00-\x1f]+@[^@\s\x00-\x1f]+\.[^@\s\x00-\x1f]+$")


class StudentImportIn(msgspec.Struct, forbid_unknown_fields=True):
    #: The CSV: ``email,name[,extra_minutes]`` a line, with or without that header.
    text: Annotated[str, msgspec.Meta(max_length=2_000_000)]


class RefusedRow(msgspec.Struct):
    line: int
    text: str
    code: str
    reason: str


class StudentImportOut(msgspec.Struct):
    created: int
    updated: int
    refused: list[RefusedRow]


def _extra(cell: str) -> int:
    value = int(cell)
    if not 0 <= value <= MAX_EXTRA_MINUTES:
        raise ValueError(cell)
    return value


async def import_students(db: AsyncSession, actor: Principal, text: str) -> StudentImportOut:
    """Create the CSV's students in the actor's organization; report the refused rows; commits."""
    lines = [(n, line) for n, line in enumerate(text.splitlines(), start=1) if line.strip()]
    if not lines:
        raise Unprocessable("The file has no rows", field="text")
    if len(lines) > MAX_IMPORT_ROWS + 1:
        raise Unprocessable(f"At most {MAX_IMPORT_ROWS} students a file", field="text")
    rows = list(csv.reader(io.StringIO("\n".join(line for _, line in lines))))
    numbered = list(zip([n for n, _ in lines], rows, [line for _, line in lines], strict=True))
    if numbered and numbered[0][1] and numbered[0][1][0].strip().lower() == "email":
        numbered = numbered[1:]
    refused: list[RefusedRow] = []
    good: dict[str, tuple[int, str, int]] = {}
    for number, cells, raw in numbered:
        cells = [c.strip() for c in cells]

        def refuse(code: str, reason: str, number: int = number, raw: str = raw) -> None:
            refused.append(RefusedRow(line=number, text=raw, code=code, reason=reason))

        if len(cells) > 3:
            refuse(
                "too_many_cells",
                f"It has {len(cells)} cells; a row has email, name, extra minutes.",
            )
            continue
        email = normalize_email(cells[0]) if cells else ""
        if not _EMAIL.match(email):
            refuse("bad_email", f"“{cells[0] if cells else ''}” is not an email address.")
            continue
        name = cells[1] if len(cells) > 1 and cells[1] else ""
        if not name:
            refuse("no_name", "It has no name.")
            continue
        extra = 0
        if len(cells) > 2 and cells[2]:
            try:
                extra = _extra(cells[2])
            except ValueError:
                refuse(
                    "bad_extra_minutes",
                    f"Extra minutes must be a whole number from 0 to {MAX_EXTRA_MINUTES}, "
                    f"not “{cells[2]}”.",
                )
                continue
        if email in good:
            refuse("duplicate", f"{email} is already on line {good[email][0]}.")
            continue
        good[email] = (number, name[:200], extra)
    existing = (
        {
            u.email: u
            for u in (await db.scalars(select(User).where(User.email.in_(list(good))))).all()
        }
        if good
        else {}
    )
    created = updated = 0
    for email, (number, name, extra) in good.items():
        user = existing.get(email)
        if user is None:
            await add_user(
                db,
                email=email,
                name=name,
                role="student",
                organization_id=actor.organization_id,
                extra_minutes=extra,
            )
            created += 1
        elif user.organization_id != actor.organization_id:
            refused.append(
                RefusedRow(
                    number,
                    _raw(numbered, number),
                    "other_organization",
                    f"{email} belongs to another organization.",
                )
            )
        elif user.role != "student":
            refused.append(
                RefusedRow(
                    number,
                    _raw(numbered, number),
                    "not_a_student",
                    f"{email} belongs to an {user.role} account, not a student.",
                )
            )
        else:
            user.name = name
            user.extra_minutes = extra
            updated += 1
    refused.sort(key=lambda r: r.line)
    if created or updated:
        record_audit(
            db,
            actor_id=actor.id,
            action="users.import",
            subject_type="organization",
            subject_id=actor.organization_id,
            details={"created": created, "updated": updated, "refused": len(refused)},
        )
    await db.commit()
    log.info("students_imported", created=created, updated=updated, refused=len(refused))
    return StudentImportOut(created=created, updated=updated, refused=refused)


def _raw(numbered: list[tuple[int, list[str], str]], number: int) -> str:
    return next(raw for n, _, raw in numbered if n == number)
