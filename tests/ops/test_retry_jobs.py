"""Operators retry failed and dead jobs, one or all of a kind, and it is on the audit trail."""

from __future__ import annotations

import json
import time
from itertools import pairwise
from typing import Any

from litestar.datastructures import State
from redis.asyncio import Redis
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from safexam.core.settings import Settings
from safexam.jobs import enqueue
from safexam.jobs.kinds import AUTOSUBMIT, GRADE_SESSION
from safexam.jobs.models import Job
from safexam.ops.queues_controller import queue_snapshots
from safexam.web.operator.queues import age_words, ago_words, rate_words
from tests.helpers import login, make_user, rows


async def dead_job(db: AsyncSession, kind: Any = GRADE_SESSION, status: str = "dead") -> Job:
    job = await enqueue(db, kind)
    await db.flush()
    await db.execute(
        update(Job)
        .where(Job.id == job.id)
        .values(status=status, attempts=5, error="ConnectionError: the judge went away")
    )
    await db.commit()
    return job


async def test_retry_all_of_a_kind(db: AsyncSession, client: Any) -> None:
    admin = await make_user(db, "operator")
    educator = await make_user(db, "educator")
    graded = [await dead_job(db), await dead_job(db, status="failed")]
    other = await dead_job(db, AUTOSUBMIT)

    await login(client, educator.email)
    refused = await client.post("/api/v1/ops/jobs/retry", json={"kind": "grade_session"})
    assert refused.status_code == 403

    await login(client, admin.email)
    overview = (await client.get("/api/v1/ops/queues")).json()
    assert overview["readiness"] == {"database": "ok", "redis": "ok"}
    assert overview["throughput_window_seconds"] == 300
    assert all("throughput_per_minute" in q for q in overview["queues"])
    listed = {j["id"]: j for j in overview["failed_jobs"]}
    assert listed[str(graded[0].id)]["error"] == "ConnectionError: the judge went away"

    unknown = await client.post("/api/v1/ops/jobs/retry", json={"kind": "nothing"})
    assert unknown.status_code == 422
    assert unknown.json()["error"]["details"][0]["field"] == "kind"

    response = await client.post("/api/v1/ops/jobs/retry", json={"kind": "grade_session"})
    assert response.status_code == 202, response.text
    assert response.json() == {"kind": "grade_session", "retried": 2, "skipped": 0}
    statuses = {
        r.id: (r.status, r.attempts, r.error)
        for r in await rows(db, "SELECT id, status, attempts, error FROM jobs")
    }
    for job in graded:
        assert statuses[job.id][0] in ("pending", "queued")
        assert statuses[job.id][1:] == (0, None)
    assert statuses[other.id][0] == "dead"
    trail = await rows(
        db, "SELECT actor_id, action, details FROM audit_events WHERE action = 'job.retry_all'"
    )
    assert len(trail) == 1 and trail[0].actor_id == admin.id
    assert trail[0].details["retried"] == 2 and trail[0].details["kind"] == "grade_session"

    single = await client.post(f"/api/v1/jobs/{other.id}/retry")
    assert single.status_code == 202, single.text
    trail = await rows(db, "SELECT subject_id FROM audit_events WHERE action = 'job.retry'")
    assert [r.subject_id for r in trail] == [other.id]
    # Not dead any more: a second retry is refused, and not audited.
    again = await client.post(f"/api/v1/jobs/{other.id}/retry")
    assert again.status_code == 409
    assert len(await rows(db, "SELECT 1 FROM audit_events WHERE action = 'job.retry'")) == 1


async def test_the_queues_stream_sends_changes_and_ends(
    db: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
    redis: Redis,
    settings: Settings,
) -> None:
    state = State({"sessionmaker": sessionmaker, "redis": redis})
    events = []
    started = time.monotonic()
    async for message in queue_snapshots(state, settings, every=0.05, lifetime=0.6):
        events.append(message)
        if len(events) == 1:
            await dead_job(db)
    assert time.monotonic() - started < 2
    first, second = (json.loads(str(m.data)) for m in events[:2])
    assert first["failed_jobs"] == [] and len(second["failed_jobs"]) == 1
    # A reading is sent only when it differs from the last one sent (here the age of
    # the job's waiting message moves on).
    sent = [m.data for m in events]
    assert all(a != b for a, b in pairwise(sent))


def test_ages_and_rates_in_words() -> None:
    assert age_words(None) == "nothing waiting"
    assert age_words(1.4) == "1 second"
    assert age_words(190.4) == "3 minutes"
    assert age_words(3 * 3600 + 60) == "3 hours 1 minute"
    assert ago_words(0.5) == "just now" and ago_words(12) == "12 seconds ago"
    assert rate_words(0, 300) == "none in 5 minutes" and rate_words(1.0, 300) == "1 a minute"
