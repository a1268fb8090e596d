"""An API replica stopped: another replica serves the same signed-in sessions.

Two ``safexam serve`` processes share PostgreSQL and Redis, as two replicas
behind a load balancer do. Sessions and login rate limits live in Redis, so
a student signed in through one replica keeps autosaving through the other
when the first is stopped, and failed sign-ins count across replicas.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from safexam.core.settings import Settings
from safexam.sessions.models import Response
from tests.factories import enroll, make_exam, make_question
from tests.fault_servers import ApiReplica
from tests.helpers import PASSWORD, ServiceUrls, make_user


async def fetch_csrf(browser: httpx.AsyncClient, replica: ApiReplica) -> None:
    answer = await browser.get(f"{replica.url}/api/v1/auth/csrf")
    assert answer.status_code == 200, answer.text
    browser.headers["X-CSRF-Token"] = answer.json()["csrf_token"]


async def test_second_replica_serves_the_session_of_a_stopped_one(
    db: AsyncSession, settings: Settings, services: ServiceUrls
) -> None:
    educator = await make_user(db, "educator")
    student = await make_user(db, "student")
    questions = [await make_question(db, educator, "mcq_single") for _ in range(3)]
    exam = await make_exam(db, educator, questions)
    await enroll(db, exam, student)
    env = {
        **os.environ,
        "SAFEXAM_ENV": "test",
        "SAFEXAM_DATABASE_URL": services.database_url,
        "SAFEXAM_REDIS_URL": services.redis_url,
        "SAFEXAM_REDIS_NAMESPACE": services.namespace,
        "SAFEXAM_SECRET_KEY": settings.secret_key,  # one key for every replica (CSRF tokens)
        "SAFEXAM_COOKIE_SECURE": "false",  # plain HTTP on localhost
        "SAFEXAM_LOG_LEVEL": "WARNING",
    }
    env.pop("SAFEXAM_BROKER_URL", None)
    first, second = (ApiReplica(env, services.tmp / f"api-{uuid.uuid4().hex}.log") for _ in "ab")
    try:
        for replica in (first, second):
            replica.start()
        await asyncio.gather(*(asyncio.to_thread(r.wait_ready) for r in (first, second)))
        async with httpx.AsyncClient(timeout=10) as browser, httpx.AsyncClient(timeout=10) as thief:
            # Failed sign-ins count in Redis, whichever replica sees them.
            await fetch_csrf(thief, first)
            wrong = {"email": educator.email, "password": "not the password"}
            for replica in (first, second, first, second, first):
                answer = await thief.post(f"{replica.url}/api/v1/auth/login", json=wrong)
                assert answer.status_code == 401, answer.text
            limited = await thief.post(f"{second.url}/api/v1/auth/login", json=wrong)
            assert limited.status_code == 429, limited.text

            await fetch_csrf(browser, first)
            signed = await browser.post(
                f"{first.url}/api/v1/auth/login",
                json={"email": student.email, "password": PASSWORD},
            )
            assert signed.status_code == 200, signed.text
            await fetch_csrf(browser, first)
            started = await browser.post(f"{first.url}/api/v1/exams/{exam.id}/sessions")
            assert started.status_code == 201, started.text
            session_id = started.json()["id"]

            async def autosave(replica: ApiReplica, question: Any, choice: str, seq: int) -> None:
                answer = await browser.put(
                    f"{replica.url}/api/v1/sessions/{session_id}/responses/{question.id}",
                    json={"answer": {"choice": choice}, "client_seq": seq},
                )
                assert answer.status_code == 200, answer.text

            await autosave(first, questions[0], "a", 1)
            await asyncio.to_thread(first.stop)
            try:
                await browser.get(f"{first.url}/healthz")
                raise AssertionError("the first replica still answers")
            except httpx.ConnectError:
                pass
            # Same cookies, other replica: the session and the exam go on.
            me = await browser.get(f"{second.url}/api/v1/auth/me")
            assert me.status_code == 200 and me.json()["email"] == student.email, me.text
            await autosave(second, questions[1], "b", 2)
            await autosave(second, questions[0], "c", 3)
            state = await browser.get(f"{second.url}/api/v1/sessions/{session_id}")
            assert state.status_code == 200, state.text
            assert {q: r["answer"]["choice"] for q, r in state.json()["responses"].items()} == {
                str(questions[0].id): "c",
                str(questions[1].id): "b",
            }
            # Signing out on one replica signs out everywhere.
            assert (await browser.post(f"{second.url}/api/v1/auth/logout")).status_code == 204
            first.start()
            await asyncio.to_thread(first.wait_ready)
            for replica in (first, second):
                gone = await browser.get(f"{replica.url}/api/v1/auth/me")
                assert gone.status_code == 401, gone.text
    finally:
        for replica in (first, second):
            replica.stop()
    saved = (
        await db.execute(select(Response).where(Response.session_id == uuid.UUID(session_id)))
    ).scalars()
    assert {r.question_id: r.client_seq for r in saved} == {
        questions[0].id: 3,
        questions[1].id: 2,
    }
