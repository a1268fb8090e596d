"""Generation jobs end to end: API -> job ledger -> a real ``qie`` Dramatiq worker -> drafts."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from safexam.exams.models import Question
from tests.helpers import ServiceUrls, login, make_user
from tests.qie.llm_server import Reply, local_llm, questions
from tests.workers_helper import running_worker

PASSAGE = (Path(__file__).parent / "data" / "steam_engine.txt").read_text()
SPIDER = {
    "kind": "numeric",
    "prompt": "How many legs does a spider have?",
    "body": {"answer": 8, "tolerance": 0},
}


async def _finished_job(client: Any, job_id: str, timeout: float = 30.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        response = await client.get(f"/api/v1/jobs/{job_id}")
        assert response.status_code == 200, response.text
        job: dict[str, Any] = response.json()
        if job["status"] in ("succeeded", "failed", "dead"):
            return job
        await asyncio.sleep(0.1)
    raise AssertionError(f"job {job_id} did not finish in {timeout}s")


async def test_generation_jobs_through_a_real_qie_worker(
    client: Any, db: AsyncSession, services: ServiceUrls
) -> None:
    educator = await make_user(db, "educator")
    await login(client, educator.email)
    # The worker has an LLM configured (this test's local server); its first
    # answer is a refused key, then it works.
    script = [Reply(status=401, body=b'{"error": "invalid key"}'), questions([SPIDER, {"x": 1}])]
    with (
        local_llm(script) as llm,
        running_worker(
            services, ("qie",), SAFEXAM_LLM_BASE_URL=llm.url, SAFEXAM_LLM_MODEL="local-model"
        ) as worker,
    ):
        # 1. The embedded generator, from a passage.
        response = await client.post(
            "/api/v1/qie/jobs",
            json={
                "source_text": PASSAGE,
                "count": 12,
                "kinds": ["mcq_single", "mcq_multi", "short_text", "numeric"],
                "tags": ["steam"],
                "generator": "embedded",
            },
        )
        assert response.status_code == 202, response.text
        job_id = response.json()["job_id"]
        job = await _finished_job(client, job_id)
        assert job["status"] == "succeeded", (job, worker.log()[-3000:])
        result = job["result"]
        assert result["generator"] == "embedded" and result["created"] == 12
        assert job["progress"]["done"] == 12 and job["progress"]["total"] == 12
        listed = await client.get(
            "/api/v1/questions", params={"status": "draft", "source": "qie", "limit": 50}
        )
        assert listed.status_code == 200, listed.text
        assert listed.json()["total"] == 12
        rows = (await db.scalars(select(Question).where(Question.owner_id == educator.id))).all()
        assert {str(q.id) for q in rows} == set(result["question_ids"])
        assert all(q.provenance and q.provenance["job_id"] == job_id for q in rows)
        assert all(q.tags == ["steam"] and q.status == "draft" for q in rows)

        # 2. A broken model (refused key) fails the job, not the worker.
        response = await client.post(
            "/api/v1/qie/jobs", json={"topic": "spiders", "kinds": ["numeric"], "count": 2}
        )
        broken = await _finished_job(client, response.json()["job_id"])
        assert broken["status"] == "failed"
        assert "HTTP 401" in broken["error"]

        # 3. The same worker carries on: the model answers, its junk item is dropped.
        response = await client.post(
            "/api/v1/qie/jobs", json={"topic": "spiders", "kinds": ["numeric"], "count": 2}
        )
        ok = await _finished_job(client, response.json()["job_id"])
        assert ok["status"] == "succeeded", (ok, worker.log()[-3000:])
        assert ok["result"]["generator"] == "llm" and ok["result"]["model"] == "local-model"
        assert ok["result"]["created"] == 1
        assert ok["result"]["dropped"] == {"malformed_item": 1}
        assert worker.proc.poll() is None
    assert len(llm.requests) == 2
