"""Every builder of test data: users, question bodies, authoring payloads and database rows.

Two ways in. Tests of authoring send payloads through the API (``mcq``,
``coding``, ``exam``, ``new_question``, ``new_exam``). Tests of what comes
after (taking an exam, grading, judging) insert rows straight into the
database (``make_question``, ``make_exam``, ``enroll``, ``make_session``), so
they test one thing. Both build their question bodies from the same
functions, among them the one coding question, ``coding_body``.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from safexam.auth.models import User
from safexam.auth.service import create_user
from safexam.exams.models import Enrollment, Exam, ExamItem, Question
from safexam.orgs.models import Organization
from safexam.orgs.service import add_organization
from safexam.sessions.models import ExamSession, Response

# --- users ------------------------------------------------------------------------------------

PASSWORD = "correct horse battery staple"


async def make_user(
    db: AsyncSession,
    role: str = "student",
    email: str | None = None,
    name: str | None = None,
    *,
    organization: Organization | uuid.UUID | None = None,
) -> User:
    """A user with the test password, in ``organization`` (the default organization if None)."""
    email = email or f"{role}-{uuid.uuid4().hex[:8]}@college.edu"
    return await create_user(
        db,
        email=email,
        name=name or email.split("@")[0],
        role=role,
        password=PASSWORD,
        organization_id=organization.id if isinstance(organization, Organization) else organization,
    )


async def make_organization(
    db: AsyncSession, slug: str | None = None, *, domains: list[str] | None = None
) -> Organization:
    slug = slug or f"org-{uuid.uuid4().hex[:8]}"
    org = await add_organization(
        db, name=f"Organization {slug}", slug=slug, domains=domains, time_zone="Europe/Paris"
    )
    await db.commit()
    return org


# --- question bodies --------------------------------------------------------------------------

# Secret values planted in bodies; the leak test searches responses for them.
SECRET_MARK = "SECRET-"


def secret(label: str) -> str:
    return f"{SECRET_MARK}{label}-{uuid.uuid4().hex[:8]}"


def mcq_body(answer: str = "b", n: int = 4) -> dict[str, Any]:
    ids = "abcdefghij"[:n]
    return {"choices": [{"id": c, "text": f"choice {c}"} for c in ids], "answer": [answer]}


# The coding question: add two integers read from standard input.
ADD_STARTER = "def add(a, b):\n    pass\n"
ADD_TEMPLATE = "{{ SOURCE }}\nprint(add(*map(int, input().split())))\n"
ADD_STARTER_CODE = {"python": ADD_STARTER}
ADD_TEMPLATES = {"python": ADD_TEMPLATE}


def add_tests() -> list[dict[str, Any]]:
    """A visible test and a hidden one, five points each."""
    return [
        {"name": "small", "stdin": "1 2\n", "expected_output": "3\n", "points": 5, "hidden": False},
        {"name": "big", "stdin": "10 20\n", "expected_output": "30\n", "points": 5, "hidden": True},
    ]


def coding_limits(memory_mb: int = 256) -> dict[str, Any]:
    return {"cpu_time_s": 2, "wall_time_s": 5, "memory_mb": memory_mb, "output_kb": 64}


CODING_LIMITS = coding_limits()


def coding_body(
    *,
    languages: Sequence[str] = ("python", "c"),
    starter_code: Mapping[str, str] | None = ADD_STARTER_CODE,
    template: Mapping[str, str] | None = ADD_TEMPLATES,
    tests: Sequence[Mapping[str, Any]] | None = None,
    comparison: str | None = "trimmed",
    limits: Mapping[str, Any] | None = CODING_LIMITS,
    **extra: Any,
) -> dict[str, Any]:
    """The coding question's body; by default the add question with ``add_tests``.

    ``None`` leaves a key out, so the kind's default applies (no template: the
    program runs as submitted). ``extra`` adds or replaces keys.
    """
    body: dict[str, Any] = {"languages": list(languages)}
    if starter_code is not None:
        body["starter_code"] = dict(starter_code)
    if template is not None:
        body["template"] = dict(template)
    body["tests"] = add_tests() if tests is None else [dict(t) for t in tests]
    if comparison is not None:
        body["comparison"] = comparison
    if limits is not None:
        body["limits"] = dict(limits)
    body.update(extra)
    return body


def secret_coding_body() -> dict[str, Any]:
    """The coding question with secrets in its template and in its hidden test."""
    return coding_body(
        languages=["python"],
        template={"python": "{{ SOURCE }}\n# " + secret("template") + "\n"},
        tests=[
            {"name": "small", "stdin": "1 2\n", "expected_output": "3\n", "points": 5},
            {
                "name": "big",
                "stdin": secret("hidden-stdin") + "\n",
                "expected_output": secret("hidden-expected") + "\n",
                "points": 5,
                "hidden": True,
            },
        ],
    )


# Questions as (kind, body), for ``exam_with_questions``.


def mcq_single(answer: str = "b") -> tuple[str, dict[str, Any]]:
    return "mcq_single", mcq_body(answer)


def mcq_multi(answer: list[str], partial: bool = False) -> tuple[str, dict[str, Any]]:
    return "mcq_multi", {**mcq_body(), "answer": answer, "partial_credit": partial}


def numeric(answer: float, tolerance: float = 0.0) -> tuple[str, dict[str, Any]]:
    return "numeric", {"answer": answer, "tolerance": tolerance}


def short_text(answers: list[str], case_sensitive: bool = False) -> tuple[str, dict[str, Any]]:
    return "short_text", {"answers": answers, "case_sensitive": case_sensitive}


def coding_spec(scoring: str = "last") -> tuple[str, dict[str, Any]]:
    """A coding question with only languages, one test (expecting ``1``) and ``scoring``."""
    test = {"name": "t", "stdin": "", "expected_output": "1\n", "points": 1}
    return "coding", coding_body(
        languages=["python"],
        starter_code=None,
        template=None,
        tests=[test],
        comparison=None,
        limits=None,
        scoring=scoring,
    )


# --- payloads for the authoring API -----------------------------------------------------------


def mcq(**over: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "kind": "mcq_single",
        "prompt": "2 + 2 = ?",
        "points": 1,
        "tags": ["arith"],
        "status": "active",
        "body": {
            "choices": [{"id": "a", "text": "3"}, {"id": "b", "text": "4"}],
            "answer": ["b"],
        },
    }
    payload.update(over)
    return payload


def coding(**over: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "kind": "coding",
        "prompt": "Print the sum of two integers.",
        "points": 10,
        "status": "active",
        "body": coding_body(),
    }
    payload.update(over)
    return payload


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def exam(items: list[dict[str, Any]], **over: Any) -> dict[str, Any]:
    now = datetime.now(UTC)
    payload: dict[str, Any] = {
        "title": "Midterm",
        "description": "",
        "opens_at": iso(now - timedelta(hours=1)),
        "closes_at": iso(now + timedelta(hours=2)),
        "duration_minutes": 60,
        "attempts_allowed": 1,
        "shuffle_questions": True,
        "shuffle_choices": True,
        "release_policy": "immediate",
        "integrity": {"require_fullscreen": True},
        "items": items,
    }
    payload.update(over)
    return payload


async def new_question(client: Any, **over: Any) -> dict[str, Any]:
    response = await client.post("/api/v1/questions", json=mcq(**over))
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def new_exam(client: Any, items: list[dict[str, Any]], **over: Any) -> dict[str, Any]:
    response = await client.post("/api/v1/exams", json=exam(items, **over))
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


# --- rows inserted straight into the database -------------------------------------------------


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
            "mcq_multi": lambda: mcq_multi(["a", "c"], partial=True)[1],
            "numeric": lambda: numeric(42.5, 0.01)[1],
            "short_text": lambda: short_text([secret("short")])[1],
            "coding": secret_coding_body,
        }[kind]()
    question = Question(
        owner_id=owner.id,
        organization_id=owner.organization_id,
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
    title: str | None = None,
    opens_at: datetime | None = None,
    closes_at: datetime | None = None,
    duration_minutes: int = 60,
    attempts_allowed: int = 1,
    shuffle_questions: bool = False,
    shuffle_choices: bool = False,
    release_policy: str = "manual",
    integrity: dict[str, Any] | None = None,
    status: str = "published",
    first_position: int = 1,
) -> Exam:
    """Items: a question, (question, points), or {"tag", "count", "points"} for a draw."""
    now = datetime.now(UTC)
    exam = Exam(
        owner_id=owner.id,
        organization_id=owner.organization_id,
        title=title or f"Exam {uuid.uuid4().hex[:6]}",
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
    for position, item in enumerate(items, start=first_position):
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


async def exam_with_questions(
    db: AsyncSession,
    owner: User,
    questions: list[tuple[tuple[str, dict[str, Any]], float]],
    *,
    release_policy: str = "immediate",
) -> tuple[Exam, list[Question]]:
    """A published exam whose items are ``questions`` ((kind, body), item points).

    Items are numbered from 0, as ``paper_for`` numbers the paper.
    """
    made = [
        await make_question(db, owner, kind, body=body, prompt=f"Q{position}", points=1)
        for position, ((kind, body), _) in enumerate(questions)
    ]
    exam = await make_exam(
        db,
        owner,
        [(question, points) for question, (_, points) in zip(made, questions, strict=True)],
        title="Grading exam",
        closes_at=datetime.now(UTC) + timedelta(hours=2),
        release_policy=release_policy,
        first_position=0,
    )
    return exam, made


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
    now = datetime.now(UTC)
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
