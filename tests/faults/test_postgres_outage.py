"""PostgreSQL restarted or hung during an exam.

The API answers 503 in the error shape (never a 500, never a hang past the
configured timeouts) while the database is away and recovers by itself when
it is back; workers survive and finish their jobs once each; every autosave
acknowledged before the outage is in the database. The cluster is a private
one this test starts (``tests/fault_servers.py``).
"""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from safexam.app import create_app
from safexam.core.broker import current_broker, use_broker
from safexam.core.db import create_engine, create_sessionmaker
from safexam.core.settings import Settings, to_asyncpg_url
from safexam.exams.models import Exam, Question
from safexam.grading.models import Result
from safexam.jobs.models import Job
from safexam.jobs.outbox import OutboxEntry, send_entries
from safexam.sessions.models import Response
from tests.factories import enroll, make_exam, make_question
from tests.fault_servers import PostgresCluster
from tests.faults.conftest import browser
from tests.grading.test_pipeline import submit
from tests.helpers import PASSWORD, ServiceUrls, csrf, login, make_user
from tests.jobs.test_recovery import finished_sessions, wait_status
from tests.test_errors import error_of
from tests.workers_helper import running_worker

#: Short bounds so the test does not wait long; production defaults are 5/30/10 s.
TIMEOUTS = {
    "database_connect_timeout_seconds": 1,
    "database_command_timeout_seconds": 1,
    "database_pool_timeout_seconds": 1,
}


class Student:
    """A signed-in student autosaving one session, remembering what the server acknowledged."""

    def __init__(self, client: Any, session_id: str) -> None:
        self.client = client
        self.session_id = session_id
        self.acknowledged: dict[str, tuple[int, str]] = {}
        self._seq = itertools.count(1)

    async def autosave(self, question_id: str, choice: str) -> Any:
        seq = next(self._seq)
        response = await self.client.put(
            f"/api/v1/sessions/{self.session_id}/responses/{question_id}",
            json={"answer": {"choice": choice}, "client_seq": seq},
        )
        if response.status_code == 200:
            self.acknowledged[question_id] = (seq, choice)
        return response


async def exam_world(
    maker: async_sessionmaker[AsyncSession],
) -> tuple[Exam, list[Question], str]:
    """A published exam of four questions and an enrolled student's email."""
    async with maker() as db:
        educator = await make_user(db, "educator")
        student = await make_user(db, "student")
        questions = [await make_question(db, educator, "mcq_single") for _ in range(4)]
        exam = await make_exam(db, educator, questions)
        await enroll(db, exam, student)
        return exam, questions, student.email


async def start_exam(client: Any, exam: Exam, email: str) -> Student:
    await login(client, email)
    started = await client.post(f"/api/v1/exams/{exam.id}/sessions")
    assert started.status_code == 201, started.text
    return Student(client, started.json()["id"])


def assert_unavailable(
    response: Any, elapsed: float, bound: float, codes: set[str], what: str = ""
) -> None:
    assert response.status_code == 503, (what, response.text)
    error = error_of(response)
    assert error["code"] in codes, (what, error)
    assert int(response.headers["retry-after"]) >= 1
    assert error["details"] == {"retry_after": int(response.headers["retry-after"])}
    assert elapsed < bound, f"{what}: 503 after {elapsed:.2f}s"


async def test_postgres_restart_503_then_recovery_nothing_acknowledged_lost(
    private_postgres: PostgresCluster, settings: Settings, services: ServiceUrls
) -> None:
    cluster = private_postgres
    url = cluster.url("safexam")
    engine = create_engine(to_asyncpg_url(url), pool_size=2)
    maker = create_sessionmaker(engine)
    exam, questions, email = await exam_world(maker)
    async with maker() as db:
        to_grade = await finished_sessions(db, 3)
    app = create_app(msgspec.structs.replace(settings, database_url=url, **TIMEOUTS))
    on_private_db = ServiceUrls(
        database_url=url,
        server_url=cluster.url(),
        redis_url=services.redis_url,
        namespace=services.namespace,
        tmp=services.tmp,
    )
    with running_worker(on_private_db, ("grading", "maintenance")) as worker:
        async with browser(app) as client:
            student = await start_exam(client, exam, email)
            for question in questions:
                assert (await student.autosave(str(question.id), "a")).status_code == 200

            # Grading jobs committed in the ledger, their messages not sent yet:
            # they reach the worker while the database is down.
            broker = current_broker()
            assert broker is not None
            use_broker(None)
            async with maker() as db:
                jobs = [await submit(db, session.id) for session, _ in to_grade]
            use_broker(broker)
            entries = [
                OutboxEntry(job.id, "grading", "grade_session", {"session_id": str(s.id)})
                for job, (s, _) in zip(jobs, to_grade, strict=True)
            ]

            await asyncio.to_thread(cluster.stop)
            assert len(await asyncio.to_thread(send_entries, broker, entries)) == len(jobs)
            calls: list[tuple[str, Callable[[], Awaitable[Any]]]] = [
                ("autosave", lambda: student.autosave(str(questions[0].id), "b")),
                ("session", lambda: client.get(f"/api/v1/sessions/{student.session_id}")),
                ("submit", lambda: client.post(f"/api/v1/sessions/{student.session_id}/submit")),
                ("my exams", lambda: client.get("/api/v1/exams")),
                ("live", lambda: client.get(f"/api/v1/sessions/{student.session_id}/events")),
            ]
            for _ in range(2):  # the first call meets the dead pool, the second a refused connect
                for name, call in calls:
                    started = time.monotonic()
                    response = await call()
                    elapsed = time.monotonic() - started
                    assert_unavailable(response, elapsed, 3.0, {"database_unavailable"}, name)
            # Signing in needs the database; being signed in does not (Redis).
            newcomer = browser(app, client)
            await csrf(newcomer)
            refused = await newcomer.post(
                "/api/v1/auth/login", json={"email": email, "password": PASSWORD}
            )
            assert_unavailable(refused, 0, 1, {"database_unavailable"})
            assert (await client.get("/api/v1/auth/me")).status_code == 200
            ready = await client.get("/readyz")
            assert ready.status_code == 503
            assert ready.json()["error"]["details"]["database"].startswith("error")
            assert ready.json()["error"]["details"]["redis"] == "ok"
            await asyncio.sleep(1)  # the worker's first retries meet the outage too

            await asyncio.to_thread(cluster.start)
            # No restart of the API: the very next request is served.
            back = await student.autosave(str(questions[1].id), "c")
            assert back.status_code == 200, back.text
            assert (await student.autosave(str(questions[0].id), "d")).status_code == 200
            assert (await client.get("/readyz")).status_code == 200
            assert (await client.get(f"/api/v1/sessions/{student.session_id}")).status_code == 200

            # No restart of the worker either: every job finishes, none failed.
            done = await wait_status(maker, [j.id for j in jobs], ("succeeded",), timeout=40)
            assert all(job.error is None for job in done)
            assert worker.proc.poll() is None
            assert '"job_claim_failed"' in worker.log()  # it did meet the outage

    async with maker() as db:
        saved = {
            str(r.question_id): (r.client_seq, r.answer["choice"])
            for r in (
                await db.execute(
                    select(Response).where(Response.session_id == uuid.UUID(student.session_id))
                )
            ).scalars()
        }
        assert saved == student.acknowledged
        for session, expected in to_grade:
            results = (
                (await db.execute(select(Result).where(Result.session_id == session.id)))
                .scalars()
                .all()
            )
            assert [r.score for r in results] == [expected]
        statuses = (
            await db.execute(
                select(Job.status, func.count())
                .where(Job.kind == "grade_session")
                .group_by(Job.status)
            )
        ).all()
        assert dict(statuses) == {"succeeded": len(jobs)}  # nothing failed, nothing twice
    await engine.dispose()


async def test_hung_postgres_answers_503_within_the_timeouts(
    private_postgres: PostgresCluster, settings: Settings
) -> None:
    cluster = private_postgres
    url = cluster.url("safexam")
    engine = create_engine(to_asyncpg_url(url), pool_size=1)
    exam, questions, email = await exam_world(create_sessionmaker(engine))
    await engine.dispose()
    app = create_app(msgspec.structs.replace(settings, database_url=url, **TIMEOUTS))
    async with browser(app) as client:
        student = await start_exam(client, exam, email)
        assert (await student.autosave(str(questions[0].id), "a")).status_code == 200
        # Every process of the cluster stopped: connections open, nobody answers.
        await asyncio.to_thread(cluster.freeze)
        try:
            calls: list[Callable[[], Awaitable[Any]]] = [
                *(lambda q=q: student.autosave(str(q.id), "b") for q in questions[:2]),
                lambda: client.get(f"/api/v1/sessions/{student.session_id}"),
            ]
            for call in calls:
                started = time.monotonic()
                response = await call()
                # At most a statement (1 s) plus the rollback of its connection
                # (1 s), or opening a connection (1 s).
                assert_unavailable(
                    response,
                    time.monotonic() - started,
                    3.0,
                    {"database_unavailable", "database_busy"},
                )
        finally:
            await asyncio.to_thread(cluster.thaw)
        deadline = time.monotonic() + 10
        while (response := await student.autosave(str(questions[2].id), "c")).status_code != 200:
            assert response.status_code == 503 and time.monotonic() < deadline, response.text
            await asyncio.sleep(0.2)
    saved = dict(student.acknowledged)
    assert str(questions[2].id) in saved and saved[str(questions[2].id)][1] == "c"
