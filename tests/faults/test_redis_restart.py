"""Redis restarted during an exam (a private redis-server with an append-only file).

- Signed-in sessions survive the restart (persistence), and during the outage
  students keep autosaving: answers go to PostgreSQL and the session is
  honoured from the replica's recent, bounded copy (``core.redis.SessionStore``).
- What needs Redis to be sound answers 503 ``redis_unavailable`` in the error
  shape, never a 500: signing in (the login limiter fails closed, or a wrong
  and a right password would answer differently), signing out, code runs
  (their rate limit), and any session this replica has not seen recently.
- A submit during the outage is accepted (the job is a row first) and graded
  once Redis is back, by the maintenance sweep re-sending it.
- Live updates: the channels subscriber reconnects on its own and every open
  stream re-reads its state, so nothing changed during the outage is missed.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import msgspec
import pytest
from redis.exceptions import ConnectionError as RedisConnectionError
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from safexam.app import create_app
from safexam.core.db import create_engine
from safexam.core.events import channels_plugin, publish, session_channel, sse_stream
from safexam.core.redis import SessionStore, create_redis
from safexam.core.settings import Settings
from safexam.jobs.models import Job
from tests.factories import enroll, make_exam, make_question
from tests.fault_servers import RedisServer, free_port
from tests.faults.conftest import browser
from tests.faults.test_postgres_outage import Student, assert_unavailable
from tests.helpers import PASSWORD, ServiceUrls, csrf, login, make_user
from tests.jobs.test_recovery import wait_status
from tests.workers_helper import running_worker


async def test_redis_restart_sessions_survive_and_autosaves_keep_working(
    db: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
    services: ServiceUrls,
    private_redis: RedisServer,
) -> None:
    educator = await make_user(db, "educator")
    alice, bob = await make_user(db, "student"), await make_user(db, "student")
    mcqs = [await make_question(db, educator, "mcq_single") for _ in range(3)]
    code = await make_question(db, educator, "coding")
    exam = await make_exam(db, educator, [*mcqs, code])
    for student in (alice, bob):
        await enroll(db, exam, student)
    app = create_app(msgspec.structs.replace(settings, redis_url=private_redis.url))
    on_private_redis = ServiceUrls(
        database_url=services.database_url,
        server_url=services.server_url,
        redis_url=private_redis.url,
        namespace=services.namespace,
        tmp=services.tmp,
    )
    with running_worker(on_private_redis, ("grading", "maintenance")):
        async with browser(app) as first:
            students: list[Student] = []
            for client, user in ((first, alice), (browser(app, first), bob)):
                await login(client, user.email)
                started = await client.post(f"/api/v1/exams/{exam.id}/sessions")
                assert started.status_code == 201, started.text
                students.append(Student(client, started.json()["id"]))
            a, b = students
            for question in mcqs:
                assert (await a.autosave(str(question.id), "a")).status_code == 200
            assert (await b.autosave(str(mcqs[0].id), "a")).status_code == 200

            await asyncio.to_thread(private_redis.stop)
            # Autosaves go on: the session comes from this replica's recent copy.
            for question in mcqs:
                saved = await a.autosave(str(question.id), "b")
                assert saved.status_code == 200, saved.text
            assert (await a.client.get(f"/api/v1/sessions/{a.session_id}")).status_code == 200
            assert (await a.client.get("/api/v1/auth/me")).json()["email"] == alice.email
            # A submit is accepted: the job is a row, its message waits for the sweep.
            submitted = await b.client.post(f"/api/v1/sessions/{b.session_id}/submit")
            assert submitted.status_code == 202, submitted.text
            job_id = uuid.UUID(submitted.json()["job_id"])

            # What needs Redis answers 503 in the error shape, quickly.
            stranger = browser(app, first)
            await csrf(stranger)
            outage_calls = {
                "login (right password)": lambda: stranger.post(
                    "/api/v1/auth/login", json={"email": bob.email, "password": PASSWORD}
                ),
                "login (wrong password)": lambda: stranger.post(
                    "/api/v1/auth/login", json={"email": bob.email, "password": "wrong guess"}
                ),
                "code run (rate limited)": lambda: a.client.post(
                    f"/api/v1/sessions/{a.session_id}/runs",
                    json={"question_id": str(code.id), "language": "python", "source": "pass"},
                ),
                "unknown session": lambda: stranger.get(
                    "/api/v1/auth/me", cookies={"safexam_session": "f" * 32}
                ),
                "sign-out": lambda: b.client.post("/api/v1/auth/logout"),
                # Signed out here even though Redis could not be told: not honoured again.
                "after sign-out": lambda: b.client.get("/api/v1/auth/me"),
            }
            for what, call in outage_calls.items():
                started_at = time.monotonic()
                response = await call()
                elapsed = time.monotonic() - started_at
                assert_unavailable(response, elapsed, 2.0, {"redis_unavailable"}, what)

            await asyncio.to_thread(private_redis.start)
            # The append-only file brought every session back.
            assert (await a.client.get("/api/v1/auth/me")).json()["email"] == alice.email
            assert (await a.autosave(str(mcqs[0].id), "c")).status_code == 200
            assert (await b.client.get("/api/v1/auth/me")).status_code == 200
            assert (await b.client.post("/api/v1/auth/logout")).status_code == 204
            assert (await b.client.get("/api/v1/auth/me")).status_code == 401
            await login(stranger, bob.email)
            # The job submitted during the outage is sent by the sweep and graded.
            [graded] = await wait_status(sessionmaker, [job_id], ("succeeded",), timeout=30)
            assert graded.attempts == 1

    async with sessionmaker() as check:
        from sqlalchemy import select

        from safexam.sessions.models import Response

        rows = (
            await check.execute(
                select(Response).where(Response.session_id == uuid.UUID(a.session_id))
            )
        ).scalars()
        assert {str(r.question_id): (r.client_seq, r.answer["choice"]) for r in rows} == (
            a.acknowledged
        )
        job = await check.get(Job, job_id)
        assert job is not None and job.status == "succeeded"


async def test_live_updates_resume_after_a_redis_restart(
    settings: Settings, private_redis: RedisServer
) -> None:
    state: dict[str, Any] = {"status": "active"}
    # A database nobody listens on, for the end: a re-read that finds PostgreSQL gone.
    gone = create_engine(f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/x", pool_size=1)

    async def read_state() -> dict[str, Any]:
        if state.get("database") == "down":
            async with gone.connect() as conn:
                await conn.execute(text("SELECT 1"))
        return dict(state)

    async def next_data(stream: Any) -> str:
        while True:
            message = await asyncio.wait_for(anext(stream), 10)
            if not message.comment:
                return str(message.data)

    redis = create_redis(private_redis.url)
    plugin = channels_plugin(redis, settings)
    before, during = session_channel(uuid.uuid4()), session_channel(uuid.uuid4())
    async with plugin:
        opened = sse_stream(plugin, before, read_state, event="session", heartbeat_seconds=0.5)
        assert await next_data(opened) == '{"status":"active"}'
        await publish(redis, before, {"id": "x"})  # the subscription works before the outage
        state["status"] = "submitted"
        assert await next_data(opened) == '{"status":"submitted"}'

        await asyncio.to_thread(private_redis.stop)
        await asyncio.sleep(0.3)
        # Changed while nobody could be told (the worker's publish fails).
        state["status"] = "graded"
        await publish(redis, before, {"id": "x"})
        # A stream opened during the outage still starts with the current state.
        late = sse_stream(plugin, during, read_state, event="session", heartbeat_seconds=0.5)
        assert await next_data(late) == '{"status":"graded"}'

        await asyncio.to_thread(private_redis.start)
        # The subscriber reconnects by itself and the open stream re-reads.
        assert await next_data(opened) == '{"status":"graded"}'
        # Both streams hear notifications published after the restart.
        state["status"] = "released"
        await publish(redis, during, {"id": "y"})
        assert await next_data(late) == '{"status":"released"}'
        await publish(redis, before, {"id": "y"})
        assert await next_data(opened) == '{"status":"released"}'
        # PostgreSQL gone at the next re-read: the stream ends cleanly (the
        # browser reconnects and gets the state first once there is one).
        state["database"] = "down"
        await publish(redis, before, {"id": "z"})
        with pytest.raises(StopAsyncIteration):
            await next_data(opened)
        await late.aclose()
    await redis.aclose()
    await gone.dispose()


async def test_session_copy_only_while_redis_is_down_and_only_briefly(
    private_redis: RedisServer,
) -> None:
    redis = create_redis(private_redis.url)
    store = SessionStore(redis, namespace="copies", fallback_seconds=1.0)
    small = SessionStore(redis, namespace="copies", fallback_size=2)
    for key in ("alive", "stale", "revoked"):
        await store.set(key, key.encode(), expires_in=60)
    for key in ("k1", "k2", "k3"):
        await small.set(key, key.encode(), expires_in=60)  # k1 is pushed out of memory
    await redis.delete("copies:revoked")  # signed out on another replica, Redis up
    assert await store.get("revoked", renew_for=60) is None
    await asyncio.sleep(1.1)
    assert await store.get("alive", renew_for=60) == b"alive"  # confirmed just now

    await asyncio.to_thread(private_redis.stop)
    assert await store.get("alive", renew_for=60) == b"alive"
    assert await small.get("k3", renew_for=60) == b"k3"
    for refused in (
        lambda: store.get("stale"),  # confirmed too long ago
        lambda: store.get("revoked"),  # Redis said it was gone: never honoured again
        lambda: store.get("never-seen"),
        lambda: small.get("k1"),  # beyond the size bound
        lambda: store.set("new", b"x", expires_in=60),  # sign-in needs Redis
        lambda: store.delete("alive"),  # so does sign-out...
        lambda: store.get("alive"),  # ...though this replica stops honouring it at once
    ):
        with pytest.raises(RedisConnectionError):
            await refused()
    await asyncio.to_thread(private_redis.start)
    # The sign-out did not reach Redis (the client was told 503): the session is still there.
    assert await store.get("alive", renew_for=60) == b"alive"
    await redis.aclose()
