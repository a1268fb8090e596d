"""The similarity job end to end: asked for over the API, run by a real ``regrade`` worker."""

from __future__ import annotations

import asyncio
import uuid

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from safexam.core.settings import Settings
from safexam.jobs.models import Job
from tests.helpers import ServiceUrls, login, rows
from tests.integrity.world import cohort_world
from tests.live import live_server
from tests.workers_helper import running_worker


async def test_compare_now_runs_on_the_regrade_pool_and_stores_the_copied_pair(
    db: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
    services: ServiceUrls,
) -> None:
    world = await cohort_world(db)
    async with live_server(settings) as base, httpx.AsyncClient(base_url=base, timeout=30) as web:
        await login(web, world.owner.email)
        asked = await web.post(f"/api/v1/exams/{world.exam.id}/integrity/similarity")
        assert asked.status_code == 202, asked.text
        (job_id,) = asked.json()["job_ids"]
        again = await web.post(f"/api/v1/exams/{world.exam.id}/integrity/similarity")
        assert again.status_code == 409 and "similarity_in_progress" in again.text
        with running_worker(services, ("regrade",)):
            for _ in range(600):  # up to 30 s
                async with sessionmaker() as check:
                    job = await check.get(Job, uuid.UUID(job_id))
                    assert job is not None
                    if job.status in ("succeeded", "failed", "dead"):
                        break
                await asyncio.sleep(0.05)
        assert job.status == "succeeded", job.error
        assert job.result is not None and job.result["languages"]["python"]["pairs"] == 1
        overview = (await web.get(f"/api/v1/exams/{world.exam.id}/integrity")).json()
    pairs = await rows(db, "SELECT session_a_id, session_b_id FROM similarity_pairs")
    assert [{r.session_a_id, r.session_b_id} for r in pairs] == [
        {world.sessions["ada"].id, world.sessions["ben"].id}
    ]
    assert [j["status"] for j in overview["jobs"]] == ["succeeded"]
