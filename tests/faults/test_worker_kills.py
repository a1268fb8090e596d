"""A judge worker SIGKILLed in the middle of a submission: a new attempt finishes it, once.

The grading counterpart is ``tests/jobs/test_recovery.py``; ``bench/faults.py``
kills both pools at random under load.
"""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from safexam.coding.models import CodingSubmission
from safexam.coding.sandbox import bwrap_path
from safexam.core.broker import create_broker
from safexam.core.settings import Settings
from safexam.jobs import outbox
from tests.coding.test_api import setup_exam, student_client
from tests.helpers import ServiceUrls
from tests.jobs.test_recovery import wait_status
from tests.workers_helper import running_worker

pytestmark = pytest.mark.skipif(bwrap_path() is None, reason="bubblewrap is not installed")

TESTS = 3
# Each test takes a while, so the kill surely lands between two of them.
SLOW = "import time\ndef add(a, b):\n    time.sleep(0.6)\n    return a + b\n"


async def submission(maker: async_sessionmaker[AsyncSession], sid: str) -> CodingSubmission:
    async with maker() as db:
        row = await db.get(CodingSubmission, sid)
        assert row is not None
        return row


async def test_judge_worker_killed_mid_submission_finishes_once(
    db: AsyncSession,
    make_client: Any,
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
    services: ServiceUrls,
) -> None:
    tests = [
        {"name": f"t{i}", "stdin": f"{i} {i}\n", "expected_output": f"{2 * i}\n", "points": 1}
        for i in range(TESTS)
    ]
    _, student, question, session = await setup_exam(db, tests=tests)
    client = await student_client(make_client, student)
    with running_worker(services, ("judge",), threads=1) as doomed:
        sent = await client.post(
            f"/api/v1/sessions/{session.id}/submissions",
            json={"question_id": str(question.id), "language": "python", "source": SLOW},
        )
        assert sent.status_code == 202, sent.text
        sid = sent.json()["id"]
        # (The app sends the message from its own event loop, right after the commit.)
        deadline = time.monotonic() + 30
        while (await submission(sessionmaker, sid)).tests_done < 1:
            assert time.monotonic() < deadline, doomed.log()[-3000:]
            await asyncio.sleep(0.05)
        doomed.kill()  # SIGKILL between two tests: one result stored, the job "running"
    halfway = await submission(sessionmaker, sid)
    assert halfway.status == "running" and 1 <= halfway.tests_done < TESTS
    job_id = halfway.job_id
    assert job_id is not None

    broker = create_broker(settings)
    try:
        with running_worker(services, ("judge",), threads=1) as survivor:
            # The heartbeat is stale: the sweep re-sends and the new worker takes over.
            report = await outbox.sweep(sessionmaker, broker, stale_after=timedelta(seconds=0))
            assert job_id in report.abandoned
            try:
                [job] = await wait_status(sessionmaker, [job_id], ("succeeded",), timeout=60)
            except AssertionError:
                print(survivor.log()[-4000:])
                raise
    finally:
        broker.close()
    assert job.attempts == 2
    done = await submission(sessionmaker, sid)
    assert (done.status, done.verdict, done.score, done.max_score) == ("done", "accepted", 3, 3)
    # Every test judged and stored once: the dead attempt's partial result is not kept twice.
    assert done.tests_done == done.tests_total == len(done.tests) == TESTS
    assert sorted(t["name"] for t in done.tests) == [f"t{i}" for i in range(TESTS)]
