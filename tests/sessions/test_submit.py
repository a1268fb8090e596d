"""Submit, auto-submit of abandoned sessions and the periodic sweep."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from safexam.auth.guards import Principal
from safexam.core.errors import Conflict
from safexam.sessions.service import autosave, finalize_expired_session, sweep_expired_sessions
from tests.factories import enroll, make_exam, make_question, move_deadline
from tests.helpers import one, rows, signed_in


async def _exam_with_students(
    make_client: Any, db: AsyncSession, n: int
) -> list[tuple[Any, dict[str, Any]]]:
    _, educator = await signed_in(make_client, db, "educator")
    q1 = await make_question(db, educator, "mcq_single")
    q2 = await make_question(db, educator, "short_text")
    exam = await make_exam(db, educator, [q1, q2])
    out = []
    for _ in range(n):
        client, student = await signed_in(make_client, db, "student")
        await enroll(db, exam, student)
        session = (await client.post(f"/api/v1/exams/{exam.id}/sessions")).json()
        out.append((client, session))
    return out


async def test_submit_creates_one_grading_job_and_is_idempotent(
    make_client: Any, db: AsyncSession
) -> None:
    [(client, session)] = await _exam_with_students(make_client, db, 1)
    first = await client.post(f"/api/v1/sessions/{session['id']}/submit")
    assert first.status_code == 202, first.text
    body = first.json()
    assert body["status"] == "submitted" and body["job_id"]
    job = await one(
        db,
        "SELECT kind, queue, actor, args, session_id FROM jobs WHERE id = :i",
        i=uuid.UUID(body["job_id"]),
    )
    assert (job.kind, job.queue, job.actor) == ("grade_session", "grading", "grade_session")
    assert job.args["session_id"] == session["id"] and str(job.session_id) == session["id"]
    second = await client.post(f"/api/v1/sessions/{session['id']}/submit")
    assert second.status_code == 202 and second.json()["job_id"] == body["job_id"]
    count = await one(db, "SELECT count(*) FROM jobs WHERE kind = 'grade_session'")
    assert count[0] == 1
    view = (await client.get(f"/api/v1/sessions/{session['id']}")).json()
    assert view["status"] == "submitted" and view["remaining_seconds"] == 0
    assert view["submitted_at"] is not None


async def test_abandoned_session_is_finalized_with_its_answers_intact(
    make_client: Any, db: AsyncSession, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    [(client, session)] = await _exam_with_students(make_client, db, 1)
    saved = {}
    for q, answer in zip(session["questions"], ({"choice": "b"}, {"text": "kept"}), strict=True):
        response = await client.put(
            f"/api/v1/sessions/{session['id']}/responses/{q['id']}",
            json={"answer": answer, "client_seq": 3},
        )
        assert response.json()["applied"]
        saved[q["id"]] = answer
    sid = uuid.UUID(session["id"])
    # Not yet due: nothing happens.
    async with sessionmaker() as worker_db:
        assert await finalize_expired_session(worker_db, sid) is None
    assert (await one(db, "SELECT status FROM exam_sessions")).status == "active"

    # The browser is gone; the deadline passes.
    await move_deadline(db, sid, -5)
    async with sessionmaker() as worker_db:
        job_id = await finalize_expired_session(worker_db, sid)
        # The job's work never commits; the job runner does, with the job's status.
        await worker_db.commit()
    assert job_id is not None
    row = await one(db, "SELECT status, submitted_at, deadline_at FROM exam_sessions")
    assert row.status == "expired" and row.submitted_at == row.deadline_at
    stored = {
        str(r.question_id): r.answer
        for r in await rows(db, "SELECT question_id, answer FROM responses")
    }
    assert stored == saved
    job = await one(db, "SELECT kind, session_id FROM jobs WHERE id = :i", i=job_id)
    assert job.kind == "grade_session" and job.session_id == sid
    # A duplicate message changes nothing.
    async with sessionmaker() as worker_db:
        assert await finalize_expired_session(worker_db, sid) is None
    assert (await one(db, "SELECT count(*) FROM jobs WHERE kind = 'grade_session'"))[0] == 1
    # The student's late submit sees the server's verdict and the same job.
    late = await client.post(f"/api/v1/sessions/{session['id']}/submit")
    assert late.status_code == 202
    assert late.json()["status"] == "expired" and late.json()["job_id"] == str(job_id)


async def test_sweep_finalizes_only_sessions_past_deadline_plus_grace(
    make_client: Any, db: AsyncSession, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    students = await _exam_with_students(make_client, db, 4)
    ids = [uuid.UUID(s["id"]) for _, s in students]
    await move_deadline(db, ids[0], -120)  # long past
    await move_deadline(db, ids[1], -10)  # past, but inside the 30 s grace
    # ids[2] still running; ids[3] submitted by the student.
    await students[3][0].post(f"/api/v1/sessions/{ids[3]}/submit")
    async with sessionmaker() as worker_db:
        assert await sweep_expired_sessions(worker_db, grace_seconds=30) == 1
    statuses = dict(
        (r.id, r.status) for r in await rows(db, "SELECT id, status FROM exam_sessions")
    )
    assert statuses == {ids[0]: "expired", ids[1]: "active", ids[2]: "active", ids[3]: "submitted"}
    # A later sweep (the clock moved on) picks up the rest that are due.
    now = (await one(db, "SELECT now() AS n")).n
    async with sessionmaker() as worker_db:
        assert (
            await sweep_expired_sessions(worker_db, now + timedelta(seconds=31), grace_seconds=30)
            == 1
        )
    async with sessionmaker() as worker_db:
        assert (
            await sweep_expired_sessions(worker_db, now + timedelta(days=1), grace_seconds=30) == 1
        )
    graded = await rows(
        db, "SELECT session_id FROM jobs WHERE kind = 'grade_session' ORDER BY session_id"
    )
    assert sorted(r.session_id for r in graded) == sorted(ids)
    assert (await one(db, "SELECT count(*) FROM exam_sessions WHERE status = 'active'"))[0] == 0


async def test_a_save_waiting_on_a_submit_is_refused(
    make_client: Any,
    db: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
    engine: AsyncEngine,
) -> None:
    """The autosave guard locks the session row: a save racing a submit sees the submit."""
    [(_, session)] = await _exam_with_students(make_client, db, 1)
    sid = uuid.UUID(session["id"])
    me = await one(
        db,
        "SELECT s.user_id, u.organization_id FROM exam_sessions s"
        " JOIN users u ON u.id = s.user_id WHERE s.id = :i",
        i=sid,
    )
    principal = Principal(
        id=me.user_id,
        email="x@college.edu",
        name="x",
        role="student",
        organization_id=me.organization_id,
    )
    async with sessionmaker() as submitter:
        # A submit in flight: the row is locked and already says "submitted".
        await submitter.execute(
            text(
                "UPDATE exam_sessions SET status = 'submitted', submitted_at = now() WHERE id = :i"
            ),
            {"i": sid},
        )
        save = asyncio.create_task(
            autosave(
                engine,
                sid,
                uuid.UUID(session["questions"][0]["id"]),
                principal,
                answer={"choice": "a"},
                client_seq=1,
            )
        )
        await asyncio.sleep(0.3)
        await submitter.commit()
        with pytest.raises(Conflict) as refused:
            await asyncio.wait_for(save, 10)
    assert refused.value.code == "session_closed"
    assert (await one(db, "SELECT count(*) FROM responses"))[0] == 0
