"""A small demo: one educator, two students and one published exam open now,
with one question of every kind (the coding one in Python, with hidden tests).

``safexam demo`` and ``make run`` load it so that a fresh checkout has
something to sign in to. Loading twice changes nothing except re-opening the
exam's window if it has closed since.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from safexam.auth.models import User
from safexam.auth.service import add_user, get_user_by_email
from safexam.core.db import utcnow
from safexam.exams.kinds import decode_body
from safexam.exams.models import Enrollment, Exam, ExamItem, Question
from safexam.orgs.service import add_organization, get_organization

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
# The demo's people belong to an organization of their own, as a college's would.
ORGANIZATION = ("Demo College", "demo")
ORGANIZATION_DOMAIN = "demo.safexam.dev"

# One question of every kind, so a new student meets each input the exam page has:
# (kind, prompt, body, points). Bodies go through the same strict schema as the API.
_QUESTIONS: tuple[tuple[str, str, dict[str, Any], float], ...] = (
    (
        "mcq_single",
        "2 + 2 = ?",
        {
            "choices": [
                {"id": "a", "text": "3"},
                {"id": "b", "text": "4"},
                {"id": "c", "text": "5"},
            ],
            "answer": ["b"],
        },
        1.0,
    ),
    (
        "mcq_multi",
        "Which of these numbers are prime? Choose every one that is.",
        {
            "choices": [
                {"id": "a", "text": "2"},
                {"id": "b", "text": "9"},
                {"id": "c", "text": "17"},
                {"id": "d", "text": "21"},
            ],
            "answer": ["a", "c"],
            "partial_credit": True,
        },
        1.0,
    ),
    ("numeric", "What is 7 * 8?", {"answer": 56, "tolerance": 0}, 1.0),
    (
        "short_text",
        "Which Python keyword starts the definition of a function?",
        {"answers": ["def"], "case_sensitive": False},
        1.0,
    ),
    (
        "coding",
        "Read two whole numbers from standard input, one per line, and print their sum.\n\n"
        "For the input `2` and `3` the program prints `5`.",
        {
            "languages": ["python"],
            "starter_code": {
                "python": "a = int(input())\nb = int(input())\n# print the sum of a and b\n"
            },
            "tests": [
                {"name": "small numbers", "stdin": "2\n3\n", "expected_output": "5"},
                {"name": "a negative number", "stdin": "-4\n10\n", "expected_output": "6"},
                {
                    "name": "large numbers",
                    "stdin": "123456789\n987654321\n",
                    "expected_output": "1111111110",
                    "hidden": True,
                },
                {"name": "zeros", "stdin": "0\n0\n", "expected_output": "0", "hidden": True},
            ],
        },
        2.0,
    ),
)


@dataclass(frozen=True)
class DemoSummary:
    educator_email: str
    student_emails: tuple[str, ...]
    password: str
    exam_id: uuid.UUID
    created: bool
    organization_slug: str = ORGANIZATION[1]


async def _ensure_user(
    db: AsyncSession, email: str, name: str, role: str, organization_id: uuid.UUID
) -> User:
    user = await get_user_by_email(db, email)
    if user is None:
        user = await add_user(
            db,
            email=email,
            name=name,
            role=role,
            password=DEMO_PASSWORD,
            organization_id=organization_id,
        )
    return user


async def _ensure_organization(db: AsyncSession) -> uuid.UUID:
    name, slug = ORGANIZATION
    org = await get_organization(db, slug)
    if org is None:
        org = await add_organization(db, name=name, slug=slug, domains=[ORGANIZATION_DOMAIN])
    return org.id


async def load_demo(db: AsyncSession) -> DemoSummary:
    """Create the demo organization, users and exam if missing; commit; say what is there."""
    org_id = await _ensure_organization(db)
    educator = await _ensure_user(db, *EDUCATOR, role="educator", organization_id=org_id)
    students = [
        await _ensure_user(db, email, name, role="student", organization_id=org_id)
        for email, name in STUDENTS
    ]
    now = utcnow()
    exam = (
        await db.execute(select(Exam).where(Exam.owner_id == educator.id, Exam.title == EXAM_TITLE))
    ).scalar_one_or_none()
    created = exam is None
    if exam is None:
        exam = Exam(
            owner_id=educator.id,
            organization_id=educator.organization_id,
            title=EXAM_TITLE,
            description=(
                "One question of each kind: single and multiple choice, a number, a short"
                " text and a small Python program. Results are shown as soon as you submit."
            ),
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
        for position, (kind, prompt, body, points) in enumerate(_QUESTIONS):
            # Through the same strict schema as the API, so the demo never holds
            # a body the rest of the system would reject.
            decode_body(kind, body)
            question = Question(
                owner_id=educator.id,
                organization_id=educator.organization_id,
                kind=kind,
                prompt=prompt,
                body=body,
                points=points,
                tags=["demo"],
                status="active",
                source="manual",
            )
            db.add(question)
            await db.flush()
            db.add(
                ExamItem(exam_id=exam.id, position=position, question_id=question.id, points=points)
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
