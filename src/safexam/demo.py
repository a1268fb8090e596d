"""A small demo: one educator, two students and one published exam open now.

``safexam demo`` and ``make run`` load it so that a fresh checkout has
something to sign in to. Loading twice changes nothing except re-opening the
exam's window if it has closed since.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from safexam.auth.models import User
from safexam.auth.service import add_user, get_user_by_email
from safexam.core.db import utcnow
from safexam.exams.kinds import decode_body
from safexam.exams.models import Enrollment, Exam, ExamItem, Question

__all__ = ["DEMO_PASSWORD", "DemoSummary", "load_demo"]

# Demo accounts only exist where someone ran `safexam demo` (or `make run`);
# the password is printed on purpose so a newcomer can sign in.
DEMO_PASSWORD = "safexam-demo"
EDUCATOR = ("educator@demo.safexam.dev", "Demo Educator")
STUDENTS = (
    ("student1@demo.safexam.dev", "Demo Student One"),
    ("student2@demo.safexam.dev", "Demo Student Two"),
)
EXAM_TITLE = "Demo quiz: arithmetic and Python"

_QUESTIONS: tuple[tuple[str, list[tuple[str, str]], str], ...] = (
    ("2 + 2 = ?", [("a", "3"), ("b", "4"), ("c", "5")], "b"),
    ("Which number is prime?", [("a", "9"), ("b", "15"), ("c", "17"), ("d", "21")], "c"),
    ("What does `len([1, 2, 3])` return in Python?", [("a", "2"), ("b", "3"), ("c", "6")], "b"),
    ("7 * 8 = ?", [("a", "54"), ("b", "56"), ("c", "64")], "b"),
)


@dataclass(frozen=True)
class DemoSummary:
    educator_email: str
    student_emails: tuple[str, ...]
    password: str
    exam_id: uuid.UUID
    created: bool


async def _ensure_user(db: AsyncSession, email: str, name: str, role: str) -> User:
    user = await get_user_by_email(db, email)
    if user is None:
        user = await add_user(db, email=email, name=name, role=role, password=DEMO_PASSWORD)
    return user


async def load_demo(db: AsyncSession) -> DemoSummary:
    """Create the demo users and exam if missing; commit; say what is there."""
    educator = await _ensure_user(db, *EDUCATOR, role="educator")
    students = [await _ensure_user(db, email, name, role="student") for email, name in STUDENTS]
    now = utcnow()
    exam = (
        await db.execute(select(Exam).where(Exam.owner_id == educator.id, Exam.title == EXAM_TITLE))
    ).scalar_one_or_none()
    created = exam is None
    if exam is None:
        exam = Exam(
            owner_id=educator.id,
            title=EXAM_TITLE,
            description="Four multiple-choice questions; results are shown as soon as you submit.",
            opens_at=now - timedelta(minutes=5),
            closes_at=now + timedelta(days=30),
            duration_minutes=30,
            attempts_allowed=1,
            shuffle_questions=False,
            shuffle_choices=False,
            release_policy="immediate",
            integrity={},
            status="published",
            published_at=now,
        )
        db.add(exam)
        await db.flush()
        for position, (prompt, choices, answer) in enumerate(_QUESTIONS):
            body = {
                "choices": [{"id": cid, "text": text} for cid, text in choices],
                "answer": [answer],
            }
            # Through the same strict schema as the API, so the demo never holds
            # a body the rest of the system would reject.
            decode_body("mcq_single", body)
            question = Question(
                owner_id=educator.id,
                kind="mcq_single",
                prompt=prompt,
                body=body,
                points=1.0,
                tags=["demo"],
                status="active",
                source="manual",
            )
            db.add(question)
            await db.flush()
            db.add(
                ExamItem(exam_id=exam.id, position=position, question_id=question.id, points=1.0)
            )
    elif exam.closes_at < now + timedelta(days=1):
        # A demo that ran a month ago would otherwise greet people with a closed exam.
        exam.opens_at = min(exam.opens_at, now - timedelta(minutes=5))
        exam.closes_at = now + timedelta(days=30)
    for student in students:
        await db.execute(
            insert(Enrollment)
            .values(exam_id=exam.id, email=student.email, user_id=student.id)
            .on_conflict_do_nothing(index_elements=["exam_id", "email"])
        )
    await db.commit()
    return DemoSummary(
        educator_email=educator.email,
        student_emails=tuple(s.email for s in students),
        password=DEMO_PASSWORD,
        exam_id=exam.id,
        created=created,
    )
