"""A small but complete exam world with real ids, for the role matrix and schemathesis.

Six browsers (anonymous, student, other student, educator, other educator,
admin) talk to one server; the educator owns a published exam the student is
taking, a second exam whose session is submitted and graded (so its response,
grading job and review exist), a draft exam and spare questions; the student
has a coding run. The "other" student and educator own nothing of that, so
every owned object is someone else's to them.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from safexam.auth.models import User
from safexam.exams.questions_service import add_question
from safexam.grading.service import grade_session
from safexam.integrity.models import SimilarityPair
from safexam.jobs.models import Job
from safexam.sessions.models import Response
from tests.factories import coding, exam, iso, mcq
from tests.helpers import PASSWORD, make_user

ROLES = ("anonymous", "student", "other_student", "educator", "other_educator", "admin")
# Which user each signed-in role is, by its account's role.
ACCOUNT_ROLE = {
    "student": "student",
    "other_student": "student",
    "educator": "educator",
    "other_educator": "educator",
    "admin": "admin",
}

ClientFactory = Callable[[], Awaitable[httpx.AsyncClient]]


def ok(response: httpx.Response, *statuses: int) -> dict[str, Any]:
    assert response.status_code in (statuses or (200, 201, 202)), (
        response.request.method,
        response.request.url,
        response.status_code,
        response.text,
    )
    body: dict[str, Any] = response.json() if response.content else {}
    return body


async def csrf(client: httpx.AsyncClient) -> None:
    token = ok(await client.get("/api/v1/auth/csrf"))["csrf_token"]
    client.headers["X-CSRF-Token"] = token


async def sign_in(client: httpx.AsyncClient, email: str) -> None:
    await csrf(client)
    ok(await client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD}))
    await csrf(client)


@dataclass
class World:
    new_client: ClientFactory
    sessionmaker: async_sessionmaker[AsyncSession]
    # Every account of the world is in this organization (None: the default one).
    organization_id: uuid.UUID | None = None
    emails: dict[str, str] = field(default_factory=dict)
    clients: dict[str, httpx.AsyncClient] = field(default_factory=dict)
    ids: dict[str, str] = field(default_factory=dict)
    seq: int = 0

    def next_seq(self) -> int:
        self.seq += 1
        return self.seq

    # ---------------------------------------------------------------- browsers

    async def browser(self, role: str) -> httpx.AsyncClient:
        """A new browser for ``role``: signed in, with its CSRF header set."""
        client = await self.new_client()
        if role == "anonymous":
            await csrf(client)
        else:
            await sign_in(client, self.emails[role])
        return client

    async def browser_of_new_account(self, role: str) -> httpx.AsyncClient:
        """A new browser signed in as a new user of ``role``'s kind (anonymous: none).

        For routes that act on every sign-in of a user (sign out everywhere),
        which would sign the world's own browsers out.
        """
        if role == "anonymous":
            return await self.browser(role)
        async with self.sessionmaker() as db:
            user = await make_user(
                db,
                ACCOUNT_ROLE[role],
                email=f"{role}-{uuid.uuid4().hex[:8]}@college.edu",
                organization=self.organization_id,
            )
        client = await self.new_client()
        await sign_in(client, user.email)
        return client

    @property
    def educator(self) -> httpx.AsyncClient:
        return self.clients["educator"]

    @property
    def student(self) -> httpx.AsyncClient:
        return self.clients["student"]

    # ---------------------------------------------------------------- objects

    async def new_question(self, **over: Any) -> str:
        return str(ok(await self.educator.post("/api/v1/questions", json=mcq(**over)))["id"])

    async def new_exam(self, *, publish: bool, enroll: bool = True, **over: Any) -> str:
        items = [{"question_id": self.ids["question_id"], "points": 2}]
        if "coding_question_id" in self.ids:
            items.append({"question_id": self.ids["coding_question_id"], "points": 10})
        exam_id = str(ok(await self.educator.post("/api/v1/exams", json=exam(items, **over)))["id"])
        if enroll:
            body = {"students": [{"email": self.emails["student"], "extra_minutes": 0}]}
            ok(await self.educator.put(f"/api/v1/exams/{exam_id}/enrollments", json=body))
        if publish:
            ok(await self.educator.post(f"/api/v1/exams/{exam_id}/publish"))
        return exam_id

    async def new_session(self) -> str:
        """A fresh exam the student has just started; returns the session id."""
        exam_id = await self.new_exam(publish=True)
        return str(ok(await self.student.post(f"/api/v1/exams/{exam_id}/sessions"))["id"])

    async def save_answer(self, session_id: str, question_id: str) -> None:
        body = {"answer": {"choice": "b"}, "client_seq": self.next_seq()}
        url = f"/api/v1/sessions/{session_id}/responses/{question_id}"
        ok(await self.student.put(url, json=body))

    async def failed_job(self) -> str:
        """A grading job of a fresh submitted session, marked failed as a dead worker leaves it."""
        session_id = await self.new_session()
        job_id = str(ok(await self.student.post(f"/api/v1/sessions/{session_id}/submit"))["job_id"])
        async with self.sessionmaker() as db:
            await db.execute(update(Job).where(Job.id == uuid.UUID(job_id)).values(status="failed"))
            await db.commit()
        return job_id

    async def new_enrollment(self) -> str:
        """An address pre-enrolled on the main exam, for removing it."""
        email = f"pre-{uuid.uuid4().hex[:8]}@college.edu"
        body = {"students": [{"email": email, "extra_minutes": 0}]}
        ok(await self.educator.put(f"/api/v1/exams/{self.ids['exam_id']}/enrollments", json=body))
        return email

    async def qie_draft(self) -> str:
        """A generated draft of the educator's generation job, as the ``qie`` worker adds it."""
        async with self.sessionmaker() as db:
            owner = await db.scalar(select(User.id).where(User.email == self.emails["educator"]))
            assert owner is not None
            question = await add_question(
                db,
                owner_id=owner,
                kind="numeric",
                prompt=f"Generated {self.next_seq()}: 6 x 7?",
                body={"answer": 42},
                status="draft",
                source="qie",
                provenance={"generator": "embedded", "job_id": self.ids["qie_job_id"]},
            )
            await db.commit()
            return str(question.id)

    async def new_user(self) -> str:
        """An account of its own, for an admin to change."""
        async with self.sessionmaker() as db:
            return str((await make_user(db, "educator", organization=self.organization_id)).id)

    async def fresh(self, name: str) -> str:
        """A new object of the named kind, for requests that use theirs up (delete, submit...)."""
        makers: dict[str, Callable[[], Awaitable[str]]] = {
            "question": self.new_question,
            "draft_exam": lambda: self.new_exam(publish=False),
            "published_exam": lambda: self.new_exam(publish=True),
            "session": self.new_session,
            "failed_job": self.failed_job,
            "enrollment": self.new_enrollment,
            "qie_draft": self.qie_draft,
            "user": self.new_user,
        }
        return await makers[name]()


async def build_world(
    new_client: ClientFactory,
    db: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
    organization_id: uuid.UUID | None = None,
) -> World:
    world = World(new_client=new_client, sessionmaker=sessionmaker, organization_id=organization_id)
    for role, account_role in ACCOUNT_ROLE.items():
        user = await make_user(
            db,
            account_role,
            email=f"{role}-{uuid.uuid4().hex[:8]}@college.edu",
            organization=organization_id,
        )
        world.emails[role] = user.email
    for role in ROLES:
        world.clients[role] = await world.browser(role)
    ids = world.ids
    ids["question_id"] = await world.new_question()
    ids["coding_question_id"] = str(
        ok(await world.educator.post("/api/v1/questions", json=coding()))["id"]
    )
    ids["spare_question_id"] = await world.new_question(prompt="Spare")
    # A bank of the educator's, private: another educator of the organization does not see it.
    ids["bank_id"] = str(
        ok(await world.educator.post("/api/v1/banks", json={"name": "Algebra"}))["id"]
    )
    # An author's trial of a coding question of their own (queued; no judge runs here).
    ids["trial_question_id"] = str(
        ok(await world.educator.post("/api/v1/questions", json=coding()))["id"]
    )
    trial = {"language": "python", "source": "def add(a, b):\n    return a + b\n"}
    ids["trial_id"] = str(
        ok(
            await world.educator.post(
                f"/api/v1/questions/{ids['trial_question_id']}/trials", json=trial
            )
        )["id"]
    )
    ids["draft_exam_id"] = await world.new_exam(publish=False, enroll=False)

    # The exam being taken: an answer saved, a coding run queued.
    ids["exam_id"] = await world.new_exam(publish=True)
    ids["session_id"] = str(
        ok(await world.student.post(f"/api/v1/exams/{ids['exam_id']}/sessions"))["id"]
    )
    await world.save_answer(ids["session_id"], ids["question_id"])
    run = {
        "question_id": ids["coding_question_id"],
        "language": "python",
        "source": "def add(a, b):\n    return a + b\n",
    }
    ids["submission_id"] = str(
        ok(await world.student.post(f"/api/v1/sessions/{ids['session_id']}/runs", json=run))["id"]
    )

    # A finished exam: submitted, graded by the grading service, results out.
    ids["graded_exam_id"] = await world.new_exam(publish=True, release_policy="immediate")
    graded = str(
        ok(await world.student.post(f"/api/v1/exams/{ids['graded_exam_id']}/sessions"))["id"]
    )
    ids["graded_session_id"] = graded
    await world.save_answer(graded, ids["question_id"])
    ids["job_id"] = str(ok(await world.student.post(f"/api/v1/sessions/{graded}/submit"))["job_id"])
    async with sessionmaker() as session:
        await grade_session(session, uuid.UUID(graded))
        await session.commit()
        ids["response_id"] = str(
            (
                await session.execute(
                    select(Response.id).where(
                        Response.session_id == uuid.UUID(graded),
                        Response.question_id == uuid.UUID(ids["question_id"]),
                    )
                )
            ).scalar_one()
        )
    regrade = await world.educator.post(
        f"/api/v1/exams/{ids['graded_exam_id']}/regrade", json={"dry_run": True}
    )
    ids["dry_run_job_id"] = str(ok(regrade)["job_id"])
    ids["student_email"] = world.emails["student"]
    # A similar pair for the integrity review (the two sessions need not share an exam here).
    a, b = sorted((uuid.UUID(ids["session_id"]), uuid.UUID(graded)))
    async with sessionmaker() as session:
        pair = SimilarityPair(
            exam_id=uuid.UUID(ids["graded_exam_id"]),
            question_id=uuid.UUID(ids["coding_question_id"]),
            language="python",
            session_a_id=a,
            session_b_id=b,
            score=0.9,
            a_coverage=0.9,
            b_coverage=0.9,
            regions=[{"a_first": 1, "a_last": 2, "b_first": 1, "b_last": 2, "tokens": 12}],
            a_source="def add(a, b):\n    return a + b\n",
            b_source="def add(x, y):\n    return x + y\n",
        )
        session.add(pair)
        await session.commit()
        ids["pair_id"] = str(pair.id)
    # A generation job of the educator's (no worker here: it stays queued).
    generation = await world.educator.post(
        "/api/v1/qie/jobs", json={"topic": "arithmetic", "kinds": ["numeric"], "count": 2}
    )
    ids["qie_job_id"] = str(ok(generation)["job_id"])
    return world


def now_iso() -> str:
    return iso(datetime.now(UTC))
