"""Enrollments: who may sit an exam, by email, with their time accommodations."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import msgspec
import structlog
from sqlalchemy import delete, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from safexam.auth.models import User
from safexam.auth.service import normalize_email
from safexam.core.db import new_id
from safexam.core.errors import NotFound, Unprocessable
from safexam.exams.models import Enrollment, Exam
from safexam.exams.schemas import EnrollmentIn, EnrollmentOut

__all__ = ["list_enrollments", "remove_enrollment", "upsert_enrollments"]

log = structlog.get_logger(__name__)

# asyncpg allows 32,767 bind parameters per statement; six per enrollment row.
_ENROLLMENT_CHUNK = 1_000


async def upsert_enrollments(db: AsyncSession, exam: Exam, students: Sequence[EnrollmentIn]) -> int:
    """Enroll students by email (lower-cased), linking existing accounts.

    Unknown emails are pre-enrolled; ``safexam.auth.service.link_enrollments``
    attaches them when the account is created. An accommodation left out keeps
    its current value. 422 naming ``students[i].email`` for an email listed
    twice or belonging to an educator or admin. Returns how many were upserted.
    """
    emails = [normalize_email(s.email) for s in students]
    first_seen: dict[str, int] = {}
    for index, email in enumerate(emails):
        if email in first_seen:
            raise Unprocessable(
                f"{email} is listed twice (also at {first_seen[email]})",
                field=f"students[{index}].email",
            )
        first_seen[email] = index
    users = {
        u.email: u for u in (await db.execute(select(User).where(User.email.in_(emails)))).scalars()
    }
    for index, email in enumerate(emails):
        user = users.get(email)
        if user is not None and user.organization_id != exam.organization_id:
            # Named, not hidden: the educator typed the address and must learn
            # why it cannot sit this exam; nothing of the other organization shows.
            raise Unprocessable(
                f"{email} belongs to another organization; only students of this "
                "organization can be enrolled",
                field=f"students[{index}].email",
                code="other_organization",
            )
        if user is not None and user.role != "student":
            raise Unprocessable(
                f"{email} belongs to an {user.role} account, not a student",
                field=f"students[{index}].email",
            )
    # Rows that omit an accommodation must not overwrite it on conflict, so rows
    # are grouped by which accommodations they carry.
    groups: dict[tuple[bool, bool], list[dict[str, Any]]] = defaultdict(list)
    for student, email in zip(students, emails, strict=True):
        has_extra = student.extra_minutes is not msgspec.UNSET
        has_mult = student.time_multiplier is not msgspec.UNSET
        user = users.get(email)
        groups[(has_extra, has_mult)].append(
            {
                "id": new_id(),
                "exam_id": exam.id,
                "email": email,
                "user_id": user.id if user else None,
                # Not said: the student's standing accommodation (imported with them).
                "extra_minutes": (
                    student.extra_minutes if has_extra else (user.extra_minutes if user else 0)
                ),
                "time_multiplier": student.time_multiplier if has_mult else 1.0,
            }
        )
    for (has_extra, has_mult), rows in groups.items():
        for start in range(0, len(rows), _ENROLLMENT_CHUNK):
            stmt = pg_insert(Enrollment).values(rows[start : start + _ENROLLMENT_CHUNK])
            update: dict[str, Any] = {
                "user_id": func.coalesce(stmt.excluded.user_id, Enrollment.user_id)
            }
            if has_extra:
                update["extra_minutes"] = stmt.excluded.extra_minutes
            if has_mult:
                update["time_multiplier"] = stmt.excluded.time_multiplier
            await db.execute(
                stmt.on_conflict_do_update(index_elements=["exam_id", "email"], set_=update)
            )
    await db.commit()
    log.info("enrollments_upserted", exam_id=str(exam.id), count=len(emails))
    return len(emails)


async def list_enrollments(db: AsyncSession, exam: Exam) -> list[EnrollmentOut]:
    """The exam's enrollments by email, with the account's name once linked."""
    rows = await db.execute(
        select(Enrollment, User.name)
        .outerjoin(User, User.id == Enrollment.user_id)
        .where(Enrollment.exam_id == exam.id)
        .order_by(Enrollment.email)
    )
    return [
        EnrollmentOut(
            email=e.email,
            user_id=e.user_id,
            name=name,
            linked=e.user_id is not None,
            extra_minutes=e.extra_minutes,
            time_multiplier=e.time_multiplier,
            created_at=e.created_at,
        )
        for e, name in rows
    ]


async def remove_enrollment(db: AsyncSession, exam: Exam, email: str) -> None:
    """Unenroll one email; 404 if it was not enrolled."""
    result = await db.execute(
        delete(Enrollment)
        .where(Enrollment.exam_id == exam.id, Enrollment.email == normalize_email(email))
        .returning(Enrollment.id)
    )
    if result.first() is None:
        raise NotFound("no enrollment for this email")
    await db.commit()
    log.info("enrollment_removed", exam_id=str(exam.id))
