"""Job status visibility, and what the outbox does around commits and rollbacks."""

from __future__ import annotations

import uuid
from typing import Any

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from safexam.core.broker import create_broker, use_broker
from safexam.core.settings import Settings
from safexam.jobs import enqueue, outbox
from safexam.jobs.kinds import AUTOSUBMIT, GRADE_SESSION
from safexam.jobs.models import Job
from tests.factories import exam_with_questions, make_session, mcq_single, paper_for
from tests.helpers import login, make_user


async def test_job_visible_to_requester_owner_student_and_admin_only(
    db: AsyncSession, client: Any
) -> None:
    educator = await make_user(db, "educator")
    other = await make_user(db, "educator")
    student = await make_user(db, "student")
    stranger = await make_user(db, "student")
    admin = await make_user(db, "admin")
    exam, qs = await exam_with_questions(db, educator, [(mcq_single("b"), 1)])
    session = await make_session(db, exam, student, paper_for(qs, [1]), {})
    job = await enqueue(
        db,
        GRADE_SESSION,
        args={"session_id": str(session.id)},
        exam_id=exam.id,
        session_id=session.id,
    )
    job.result = {"score": 1.0}
    await db.commit()
    url = f"/api/v1/jobs/{job.id}"
    seen: dict[str, Any] = {}
    for who in (educator, admin, student, other, stranger):
        await login(client, who.email)
        response = await client.get(url)
        seen[who.email] = (response.status_code, response.json())
    code, body = seen[educator.email]
    assert code == 200
    assert body["kind"] == "grade_session" and body["status"] == "pending"
    assert body["progress"] == {"done": 0, "total": 0, "failed": 0}
    assert body["error"] is None and body["result"] == {"score": 1.0}
    assert seen[admin.email][0] == 200
    # The student sees their grading job but not the score (release policy decides that).
    assert seen[student.email][0] == 200 and seen[student.email][1]["result"] is None
    assert seen[other.email][0] == 404 and seen[stranger.email][0] == 404
    assert (await client.get(f"/api/v1/jobs/{uuid.uuid4()}")).status_code == 404
    # Only the deployment's operators may retry (org admins neither), and only
    # failed or dead jobs.
    for who in (educator, admin):
        await login(client, who.email)
        assert (await client.post(f"{url}/retry")).status_code == 403
    await login(client, (await make_user(db, "operator")).email)
    refused = await client.post(f"{url}/retry")
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "job_not_retryable"


async def test_message_leaves_after_commit_and_never_after_rollback(
    db: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
    redis: Redis,
) -> None:
    broker = create_broker(settings)
    use_broker(broker)
    queue_key = f"{settings.redis_namespace}:dramatiq:grading"
    rolled_back = await enqueue(db, GRADE_SESSION)
    await db.rollback()
    await outbox.drain()
    assert await redis.llen(queue_key) == 0
    job = await enqueue(db, GRADE_SESSION, args={"session_id": "x"})
    assert await redis.llen(queue_key) == 0  # nothing leaves before the commit
    await db.commit()
    await outbox.drain()
    assert await redis.llen(queue_key) == 1
    message_id = (await redis.lrange(queue_key, 0, 0))[0]
    import json

    message = json.loads(await redis.hget(f"{queue_key}.msgs", message_id))
    assert message["message_id"] == str(job.id)  # the message id is the job id
    assert message["kwargs"] == {"session_id": "x", "job_id": str(job.id)}
    async with sessionmaker() as check:
        sent = await check.get(Job, job.id)
        assert sent is not None and sent.status == "queued" and sent.queued_at is not None
        assert await check.get(Job, rolled_back.id) is None
    # A delayed job (the auto-submit at a deadline) waits in the delay queue.
    await enqueue(
        db,
        AUTOSUBMIT,
        args={"session_id": "y"},
        delay_ms=60_000,
    )
    await db.commit()
    await outbox.drain()
    assert await redis.hlen(f"{settings.redis_namespace}:dramatiq:maintenance.DQ.msgs") == 1
    broker.close()


async def test_retry_of_a_job_a_sweep_holds_is_refused_at_once(
    db: AsyncSession, client: Any, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    """An outbox sweep locks pending jobs while it sends their messages (to a broker
    that may hang); an operator's retry of such a job is answered at once, not
    after the database's command timeout as a 503."""
    import time

    from sqlalchemy import text

    job = await enqueue(db, GRADE_SESSION, args={"session_id": str(uuid.uuid4())})
    await db.commit()
    await login(client, (await make_user(db, "operator")).email)
    async with sessionmaker() as sweep:
        await sweep.execute(text("SELECT id FROM jobs WHERE id = :id FOR UPDATE"), {"id": job.id})
        began = time.monotonic()
        refused = await client.post(f"/api/v1/jobs/{job.id}/retry")
        took = time.monotonic() - began
        await sweep.rollback()
    assert refused.status_code == 409, refused.text
    assert refused.json()["error"]["code"] == "job_not_retryable"
    assert took < 5, f"the retry waited {took:.1f} s for the sweep's lock"
