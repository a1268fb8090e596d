"""Bulk regrade through a real ``regrade`` worker: dry-run diff, safe apply, serialization."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from safexam.core.settings import Settings
from safexam.exams.models import Question
from safexam.grading.models import Result
from safexam.grading.service import grade_session
from safexam.jobs.models import Job
from safexam.sessions.models import Response
from tests.factories import exam_with_questions, make_session, mcq_multi, mcq_single, paper_for
from tests.helpers import ServiceUrls, login, make_user
from tests.live import live_server, sse_events
from tests.workers_helper import running_worker


async def job_row(maker: async_sessionmaker[AsyncSession], job_id: str) -> Job:
    async with maker() as db:
        job = await db.get(Job, uuid.UUID(job_id))
        assert job is not None
        return job


async def wait_job(
    maker: async_sessionmaker[AsyncSession],
    job_id: str,
    statuses: tuple[str, ...],
    timeout: float = 30,
) -> Job:
    for _ in range(int(timeout / 0.05)):
        job = await job_row(maker, job_id)
        if job.status in statuses:
            return job
        await asyncio.sleep(0.05)
    raise AssertionError(f"job {job_id} still {job.status}")


async def totals(db: AsyncSession) -> dict[uuid.UUID, float]:
    return dict((await db.execute(select(Result.session_id, Result.score))).all())  # type: ignore[arg-type]


async def test_dry_run_apply_and_serialization(
    db: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
    services: ServiceUrls,
) -> None:
    educator = await make_user(db, "educator")
    exam, qs = await exam_with_questions(
        db,
        educator,
        [(mcq_single("b"), 2), (mcq_multi(["a", "c"], partial=True), 4), (mcq_single("d"), 1)],
    )
    paper = paper_for(qs, [2, 4, 1])
    picks = [("a", ["a", "c"], "d"), ("b", ["a"], "d"), ("a", ["a", "b"], "a"), ("c", ["c"], "d")]
    sessions = []
    for one, many, last in picks:
        student = await make_user(db, "student")
        s = await make_session(
            db,
            exam,
            student,
            paper,
            {qs[0].id: {"choice": one}, qs[1].id: {"choices": many}, qs[2].id: {"choice": last}},
        )
        await grade_session(db, s.id)
        sessions.append(s)
    await db.commit()
    before = await totals(db)
    assert [before[s.id] for s in sessions] == [5.0, 5.0, 0.0, 3.0]

    # The key changes: q0 is "a", q1's right answers are a and b (partial credit).
    await db.execute(
        update(Question).where(Question.id == qs[0].id).values(body={**qs[0].body, "answer": ["a"]})
    )
    await db.execute(
        update(Question)
        .where(Question.id == qs[1].id)
        .values(body={**qs[1].body, "answer": ["a", "b"]})
    )
    await db.commit()
    # New per-student totals: q0 (2 pts) + q1 partial ((right - wrong)/2 * 4) + q2.
    expected_new = [2 + 0 + 1, 0 + 2 + 1, 2 + 4 + 0, 0 + 0 + 1]

    async with live_server(settings) as base, httpx.AsyncClient(base_url=base, timeout=30) as web:
        await login(web, educator.email)
        dry = await web.post(f"/api/v1/exams/{exam.id}/regrade", json={"dry_run": True})
        assert dry.status_code == 202, dry.text
        dry_id = dry.json()["job_id"]
        # A second regrade of the same exam while the first is active is refused.
        second = await web.post(f"/api/v1/exams/{exam.id}/regrade", json={})
        assert second.status_code == 409, second.text
        assert second.json()["error"]["code"] == "regrade_in_progress"

        with running_worker(services, ("regrade",)):
            stream = await sse_events(
                web,
                f"/api/v1/jobs/{dry_id}/events",
                until=lambda e: (e.get("data") or {}).get("status") == "succeeded",
            )
            final = [e for e in stream if "data" in e][-1]["data"]
            assert final["progress"] == {"done": 12, "total": 12, "failed": 0}
            diff = final["result"]
            by_session = {s["session_id"]: s for s in diff["students"]}
            for s, old, new in zip(sessions, [5.0, 5.0, 0.0, 3.0], expected_new, strict=True):
                if old == new:
                    assert str(s.id) not in by_session or by_session[str(s.id)]["delta"] == 0
                    continue
                entry = by_session[str(s.id)]
                assert (entry["old"], entry["new"], entry["delta"]) == (old, new, new - old)
            assert diff["totals"]["old"] == sum(by_session[k]["old"] for k in by_session)
            assert diff["totals"]["new"] == sum(by_session[k]["new"] for k in by_session)
            assert diff["totals"]["responses"] == 12
            # A dry run writes nothing.
            async with sessionmaker() as check:
                assert await totals(check) == before

            # The educator overrides a score in between: applying the stale diff is refused.
            async with sessionmaker() as check:
                response_id = (
                    await check.execute(
                        select(Response.id).where(
                            Response.session_id == sessions[3].id, Response.question_id == qs[2].id
                        )
                    )
                ).scalar_one()
            override = await web.put(
                f"/api/v1/responses/{response_id}/override",
                json={"score": 0.5, "reason": "Half right"},
            )
            assert override.status_code == 200, override.text
            stale = await web.post(f"/api/v1/jobs/{dry_id}/apply")
            assert stale.status_code == 409, stale.text
            assert stale.json()["error"]["code"] == "regrade_stale"

            # A fresh dry run, applied as a unit, gives exactly its diff.
            dry2 = await web.post(f"/api/v1/exams/{exam.id}/regrade", json={"dry_run": True})
            assert dry2.status_code == 202, dry2.text
            dry2_job = await wait_job(sessionmaker, dry2.json()["job_id"], ("succeeded", "failed"))
            assert dry2_job.status == "succeeded", dry2_job.error
            applied = await web.post(f"/api/v1/jobs/{dry2_job.id}/apply")
            assert applied.status_code == 202, applied.text
            again = await web.post(f"/api/v1/jobs/{dry2_job.id}/apply")
            assert again.status_code == 409 and again.json()["error"]["code"] == "already_applied"
            apply_job = await wait_job(
                sessionmaker, applied.json()["job_id"], ("succeeded", "failed")
            )
            assert apply_job.status == "succeeded", apply_job.error

    planned: dict[str, Any] = {
        s["session_id"]: s["new"] for s in (dry2_job.result or {})["students"]
    }
    async with sessionmaker() as check:
        after = await totals(check)
    for s in sessions:
        assert after[s.id] == planned.get(str(s.id), before[s.id])
    # The override set in between still wins after the apply.
    assert after[sessions[3].id] == 0 + 0 + 0.5
    assert [after[s.id] for s in sessions[:3]] == expected_new[:3]
