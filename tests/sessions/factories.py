"""Factories for exams, questions and enrollments, inserted straight into the database.

Tests of the exam session build their world here rather than through the
authoring API, so they test one thing: taking the exam.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from safexam.auth.models import User
from safexam.exams.models import Enrollment, Exam, ExamItem, Question

# Secret values planted in bodies; the leak test searches responses for them.
SECRET_MARK = "SECRET-"


def secret(label: str) -> str:
    return f"{SECRET_MARK}{label}-{uuid.uuid4().hex[:8]}"


def mcq_body(answer: str = "b", n: int = 4) -> dict[str, Any]:
    ids = "abcdefghij"[:n]
    return {"choices": [{"id": c, "text": f"choice {c}"} for c in ids], "answer": [answer]}


def coding_body() -> dict[str, Any]:
    return {
        "languages": ["python"],
        "starter_code": {"python": "def add(a, b):\n    pass\n"},
        "template": {"python": "{{ SOURCE }}\n# " + secret("template") + "\n"},
        "tests": [
            {"name": "small", "stdin": "1 2\n", "expected_output": "3\n", "points": 5},
            {
                "name": "big",
                "stdin": secret("hidden-stdin") + "\n",
                "expected_output": secret("hidden-expected") + "\n",
                "points": 5,
                "hidden": True,
            },
        ],
        "comparison": "trimmed",
        "limits": {"cpu_time_s": 2, "wall_time_s": 5, "memory_mb": 256, "output_kb": 64},
    }


async def make_question(
    db: AsyncSession,
    owner: User,
    kind: str = "mcq_single",
    *,
    body: dict[str, Any] | None = None,
    prompt: str | None = None,
    points: float = 1.0,
    tags: list[str] | None = None,
    status: str = "active",
) -> Question:
    if body is None:
        body = {
            "mcq_single": lambda: mcq_body("b"),
            "mcq_multi": lambda: {**mcq_body("a"), "answer": ["a", "c"], "partial_credit": True},
            "numeric": lambda: {"answer": 42.5, "tolerance": 0.01},
            "short_text": lambda: {"answers": [secret("short")], "case_sensitive": False},
            "coding": coding_body,
        }[kind]()
    question = Question(
        owner_id=owner.id,
        kind=kind,
        prompt=prompt or f"{kind} question {uuid.uuid4().hex[:6]}",
        body=body,
        points=points,
        tags=tags or [],
        status=status,
    )
    db.add(question)
    await db.commit()
    return question


async def make_exam(
    db: AsyncSession,
    owner: User,
    items: list[Question | tuple[Question, float] | dict[str, Any]],
    *,
    opens_at: datetime | None = None,
    closes_at: datetime | None = None,
    duration_minutes: int = 60,
    attempts_allowed: int = 1,
    shuffle_questions: bool = False,
    shuffle_choices: bool = False,
    release_policy: str = "manual",
    integrity: dict[str, Any] | None = None,
    status: str = "published",
) -> Exam:
    """Items: a question, (question, points), or {"tag", "count", "points"} for a draw."""
    now = datetime.now(UTC)
    exam = Exam(
        owner_id=owner.id,
        title=f"Exam {uuid.uuid4().hex[:6]}",
        description="",
        opens_at=opens_at or now - timedelta(hours=1),
        closes_at=closes_at or now + timedelta(hours=3),
        duration_minutes=duration_minutes,
        attempts_allowed=attempts_allowed,
        shuffle_questions=shuffle_questions,
        shuffle_choices=shuffle_choices,
        release_policy=release_policy,
        integrity=integrity or {},
        status=status,
        published_at=now if status == "published" else None,
    )
    db.add(exam)
    await db.flush()
    for position, item in enumerate(items, start=1):
        if isinstance(item, Question):
            row = ExamItem(exam_id=exam.id, position=position, question_id=item.id, points=1.0)
        elif isinstance(item, tuple):
            row = ExamItem(
                exam_id=exam.id, position=position, question_id=item[0].id, points=item[1]
            )
        else:
            row = ExamItem(
                exam_id=exam.id,
                position=position,
                draw_tag=item["tag"],
                draw_count=item["count"],
                points=item.get("points", 1.0),
            )
        db.add(row)
    await db.commit()
    return exam


async def enroll(
    db: AsyncSession,
    exam: Exam,
    student: User | str,
    *,
    extra_minutes: int = 0,
    time_multiplier: float = 1.0,
) -> Enrollment:
    """Enroll a user, or an email address of someone who has not signed in yet."""
    email = student if isinstance(student, str) else student.email
    enrollment = Enrollment(
        exam_id=exam.id,
        email=email.lower(),
        user_id=None if isinstance(student, str) else student.id,
        extra_minutes=extra_minutes,
        time_multiplier=time_multiplier,
    )
    db.add(enrollment)
    await db.commit()
    return enrollment


async def move_deadline(
    db: AsyncSession, session_id: str | uuid.UUID, seconds_from_now: float
) -> None:
    """Put a session's deadline in the past (or future) as the database's clock sees it."""
    await db.execute(
        text(
            "UPDATE exam_sessions SET started_at = now() - interval '3 hours',"
            " deadline_at = now() + make_interval(secs => :s) WHERE id = :id"
        ),
        {"s": seconds_from_now, "id": uuid.UUID(str(session_id))},
    )
    await db.commit()


async def one(db: AsyncSession, sql: str, **params: Any) -> Any:
    """One row of a fresh query (never a cached ORM object)."""
    return (await db.execute(text(sql), params)).first()


async def rows(db: AsyncSession, sql: str, **params: Any) -> list[Any]:
    return list((await db.execute(text(sql), params)).all())
