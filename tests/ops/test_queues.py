"""The operators' queue view and the Prometheus endpoint."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from safexam.core.broker import create_broker, use_broker
from safexam.core.settings import Settings
from safexam.jobs import enqueue, outbox
from safexam.jobs.kinds import GRADE_SESSION
from tests.helpers import login, make_user


async def test_queues_endpoint_and_metrics(
    db: AsyncSession, client: Any, settings: Settings
) -> None:
    use_broker(create_broker(settings))
    admin = await make_user(db, "operator")
    educator = await make_user(db, "educator")
    for _ in range(3):
        await enqueue(db, GRADE_SESSION)
    await db.commit()
    await outbox.drain()

    await login(client, educator.email)
    assert (await client.get("/api/v1/ops/queues")).status_code == 403
    await login(client, admin.email)
    response = await client.get("/api/v1/ops/queues")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["broker"] == "redis"
    grading = next(q for q in body["queues"] if q["name"] == "grading")
    assert grading["depth"] == 3 and grading["delayed"] == 0 and grading["dead_letters"] == 0
    assert grading["oldest_age_seconds"] is not None and grading["oldest_age_seconds"] >= 0
    assert {"kind": "grade_session", "status": "queued", "count": 3} in body["jobs"]

    metrics = await client.get("/metrics")
    assert metrics.status_code == 200
    text = metrics.text
    assert 'safexam_jobs{kind="grade_session",status="queued"} 3.0' in text
    assert 'safexam_queue_depth{queue="grading"} 3.0' in text
    assert (
        'safexam_http_requests_total{method="GET",route="/api/v1/ops/queues",status="200"}' in text
    )
    assert "safexam_http_request_duration_seconds_bucket" in text
    assert "# TYPE safexam_job_duration_seconds histogram" in text
