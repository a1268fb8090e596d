"""A queued run or submission shows its place in the judge queue and the estimated wait."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from safexam.coding import queue
from safexam.coding.models import CodingSubmission
from safexam.coding.queue import QueueEstimate
from safexam.core.settings import Settings
from tests.factories import coding_body, exam_with_questions, make_session, paper_for
from tests.helpers import login, make_user
from tests.live import live_server

SOURCE = "def add(a, b):\n    return a + b\n"


@pytest.fixture(autouse=True)
def _measure_every_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests change the pool between reads; no figure may be kept from before."""
    monkeypatch.setattr(queue, "ESTIMATE_TTL_S", 0.0)
    monkeypatch.setattr(queue, "_cached", None)


async def _queued_submissions(
    db: AsyncSession, make_client: Any, students: int
) -> tuple[list[Any], list[str], list[str]]:
    """``students`` students each submit once, in order: their clients, emails, submission ids."""
    educator = await make_user(db, "educator")
    exam, (question,) = await exam_with_questions(db, educator, [(("coding", coding_body()), 10)])
    clients, emails, ids = [], [], []
    for _ in range(students):
        student = await make_user(db, "student")
        session = await make_session(
            db, exam, student, paper_for([question], [10]), {}, status="active"
        )
        client = await make_client()
        await login(client, student.email)
        response = await client.post(
            f"/api/v1/sessions/{session.id}/submissions",
            json={"question_id": str(question.id), "language": "python", "source": SOURCE},
        )
        assert response.status_code == 202, response.text
        clients.append(client)
        emails.append(student.email)
        ids.append(response.json()["id"])
    return clients, emails, ids


async def _judged_lately(db: AsyncSession, like: str, seconds: list[float]) -> None:
    """Finished judgings of the given durations, a minute ago (copies of ``like``)."""
    now = (await db.execute(select(func.now()))).scalar_one()
    template = await db.get(CodingSubmission, uuid.UUID(like))
    assert template is not None
    for took in seconds:
        started = now - timedelta(minutes=1)
        db.add(
            CodingSubmission(
                id=uuid.uuid4(),
                session_id=template.session_id,
                question_id=template.question_id,
                kind="run",
                language="python",
                source=SOURCE,
                status="done",
                verdict="accepted",
                created_at=started - timedelta(seconds=1),
                started_at=started,
                finished_at=started + timedelta(seconds=took),
            )
        )
    await db.commit()


async def _set_status(db: AsyncSession, submission_id: str, status: str) -> None:
    await db.execute(
        update(CodingSubmission)
        .where(CodingSubmission.id == uuid.UUID(submission_id))
        .values(status=status, started_at=func.now())
    )
    await db.commit()


def test_the_wait_is_the_position_over_the_recent_throughput() -> None:
    # Two judgings at once, four seconds each: one finishes every two seconds.
    assert QueueEstimate(parallel=2, mean_seconds=4.0).wait_seconds(1) == 2
    assert QueueEstimate(parallel=2, mean_seconds=4.0).wait_seconds(3) == 6
    assert QueueEstimate(parallel=1, mean_seconds=0.1).wait_seconds(1) == 1  # never "0 s"
    assert QueueEstimate(parallel=3, mean_seconds=None).wait_seconds(5) is None


async def test_queued_submissions_show_their_place_and_the_wait(
    db: AsyncSession, make_client: Any
) -> None:
    clients, _, ids = await _queued_submissions(db, make_client, 3)

    async def place(i: int) -> tuple[Any, Any]:
        body = (await clients[i].get(f"/api/v1/submissions/{ids[i]}")).json()
        return body["queue_position"], body["estimated_wait_seconds"]

    # Nothing judged lately: a place, but no estimate rather than a guess.
    assert [await place(i) for i in range(3)] == [(1, None), (2, None), (3, None)]

    # The first is being judged; judgings have taken 3 and 5 seconds (4 on average).
    await _set_status(db, ids[0], "running")
    await _judged_lately(db, ids[0], [3.0, 5.0])
    assert await place(0) == (None, None)
    assert await place(1) == (1, 4)
    assert await place(2) == (2, 8)

    # A second judge at work halves the wait.
    await _set_status(db, ids[1], "running")
    assert await place(2) == (1, 2)

    # Ended submissions are in no queue; an educator reading one sees the same fields.
    await db.execute(
        update(CodingSubmission)
        .where(CodingSubmission.id.in_([uuid.UUID(i) for i in ids]))
        .values(status="done", finished_at=func.now())
    )
    await db.commit()
    assert [await place(i) for i in range(3)] == [(None, None)] * 3


async def test_the_live_stream_follows_the_place_without_a_notification(
    db: AsyncSession, make_client: Any, settings: Settings
) -> None:
    _, emails, ids = await _queued_submissions(db, make_client, 2)
    await _judged_lately(db, ids[0], [2.0])
    states: list[dict[str, Any]] = []

    async def read(http: httpx.AsyncClient) -> None:
        url = f"/api/v1/submissions/{ids[1]}/events"
        async with http.stream("GET", url, headers={"Accept": "text/event-stream"}) as response:
            assert response.status_code == 200
            async for line in response.aiter_lines():
                if line.startswith("data:"):
                    states.append(json.loads(line.split(":", 1)[1]))
                    if states[-1]["queue_position"] == 1:
                        return

    async with live_server(settings) as base, httpx.AsyncClient(base_url=base, timeout=30) as http:
        await login(http, emails[1])
        reader = asyncio.create_task(read(http))
        for _ in range(100):
            if states:
                break
            await asyncio.sleep(0.05)
        assert states and states[0]["queue_position"] == 2
        assert states[0]["estimated_wait_seconds"] == 4
        # The one ahead starts; nothing is published on this submission's channel,
        # yet its stream, re-reading while queued, tells the student.
        await _set_status(db, ids[0], "running")
        await asyncio.wait_for(reader, timeout=10)
    assert states[-1]["status"] == "queued"
    assert (states[-1]["queue_position"], states[-1]["estimated_wait_seconds"]) == (1, 2)


async def test_the_pools_figures_are_measured_once_a_second_per_process(
    db: AsyncSession, make_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    clients, _, ids = await _queued_submissions(db, make_client, 3)
    await _judged_lately(db, ids[0], [4.0])
    monkeypatch.setattr(queue, "ESTIMATE_TTL_S", 60.0)

    async def third() -> tuple[int, int]:
        body = (await clients[2].get(f"/api/v1/submissions/{ids[2]}")).json()
        return body["queue_position"], body["estimated_wait_seconds"]

    assert await third() == (3, 12)
    # Two judges start: the place is read each time, the pool's figures are kept a while.
    await _set_status(db, ids[0], "running")
    await _set_status(db, ids[1], "running")
    assert await third() == (1, 4)
    monkeypatch.setattr(queue, "ESTIMATE_TTL_S", 0.0)
    assert await third() == (1, 2)
