"""Rows for grading tests, inserted directly (no dependency on the session API)."""

from __future__ import annotations

import random
import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from safexam.auth.models import User
from safexam.core.db import utcnow
from safexam.exams.models import Exam, ExamItem, Question
from safexam.sessions.models import ExamSession, Response

MCQ4 = [{"id": c, "text": f"choice {c}"} for c in "abcd"]


def mcq_single(answer: str = "b") -> tuple[str, dict[str, Any]]:
    return "mcq_single", {"choices": MCQ4, "answer": [answer]}


def mcq_multi(answer: list[str], partial: bool = False) -> tuple[str, dict[str, Any]]:
    return "mcq_multi", {"choices": MCQ4, "answer": answer, "partial_credit": partial}


def numeric(answer: float, tolerance: float = 0.0) -> tuple[str, dict[str, Any]]:
    return "numeric", {"answer": answer, "tolerance": tolerance}


def short_text(answers: list[str], case_sensitive: bool = False) -> tuple[str, dict[str, Any]]:
    return "short_text", {"answers": answers, "case_sensitive": case_sensitive}


def coding(scoring: str = "last") -> tuple[str, dict[str, Any]]:
    return "coding", {
        "languages": ["python"],
        "tests": [{"name": "t", "stdin": "", "expected_output": "1\n", "points": 1}],
        "scoring": scoring,
    }


async def make_exam(
    db: AsyncSession,
    owner: User,
    questions: list[tuple[tuple[str, dict[str, Any]], float]],
    *,
    release_policy: str = "immediate",
) -> tuple[Exam, list[Question]]:
    """A published exam whose items are ``questions`` ((kind, body), item points)."""
    now = utcnow()
    exam = Exam(
        owner_id=owner.id,
        title="Grading exam",
        opens_at=now - timedelta(hours=1),
        closes_at=now + timedelta(hours=2),
        duration_minutes=60,
        release_policy=release_policy,
        status="published",
    )
    db.add(exam)
    await db.flush()
    made: list[Question] = []
    for position, ((kind, body), points) in enumerate(questions):
        question = Question(
            owner_id=owner.id,
            kind=kind,
            prompt=f"Q{position}",
            body=body,
            points=1,
            status="active",
        )
        db.add(question)
        await db.flush()
        db.add(ExamItem(exam_id=exam.id, position=position, question_id=question.id, points=points))
        made.append(question)
    await db.commit()
    return exam, made


def paper_for(exam_questions: list[Question], points: list[float]) -> list[dict[str, Any]]:
    return [
        {
            "question_id": str(q.id),
            "points": float(p),
            "position": i,
            "choice_order": None,
            "variant": None,
        }
        for i, (q, p) in enumerate(zip(exam_questions, points, strict=True))
    ]


async def make_session(
    db: AsyncSession,
    exam: Exam,
    student: User,
    paper: list[dict[str, Any]],
    answers: dict[uuid.UUID, dict[str, Any] | None],
    *,
    status: str = "submitted",
    commit: bool = True,
) -> ExamSession:
    """A finished session with the given answers (question id -> answer)."""
    now = utcnow()
    session = ExamSession(
        exam_id=exam.id,
        user_id=student.id,
        attempt=1,
        status=status,
        started_at=now - timedelta(minutes=30),
        deadline_at=now + timedelta(minutes=30),
        submitted_at=now if status != "active" else None,
        seed=random.randint(1, 2**31),
        paper=paper,
    )
    db.add(session)
    await db.flush()
    for qid, answer in answers.items():
        db.add(
            Response(
                session_id=session.id, question_id=qid, answer=answer, client_seq=1, saved_at=now
            )
        )
    if commit:
        await db.commit()
    return session
