"""GET /api/v1/exams for a student: enrolled, published exams and their state."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from safexam.grading.service import grade_session
from tests.factories import enroll, make_exam, make_question
from tests.helpers import signed_in


async def test_states_of_my_exams(
    make_client: Any, db: AsyncSession, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    client, student = await signed_in(make_client, db, "student")
    _, educator = await signed_in(make_client, db, "educator")
    q = await make_question(db, educator)
    now = datetime.now(UTC)
    exams = {
        "upcoming": await make_exam(
            db, educator, [q], opens_at=now + timedelta(days=1), closes_at=now + timedelta(days=2)
        ),
        "open": await make_exam(db, educator, [q]),
        "in_progress": await make_exam(db, educator, [q]),
        "submitted": await make_exam(db, educator, [q], release_policy="manual"),
        "results_released": await make_exam(db, educator, [q], release_policy="immediate"),
        "closed": await make_exam(
            db, educator, [q], opens_at=now - timedelta(days=2), closes_at=now - timedelta(days=1)
        ),
    }
    hidden_draft = await make_exam(db, educator, [q], status="draft")
    not_mine = await make_exam(db, educator, [q])
    for exam in [*exams.values(), hidden_draft]:
        await enroll(db, exam, student)
    sessions = {}
    for state in ("in_progress", "submitted", "results_released"):
        sessions[state] = (await client.post(f"/api/v1/exams/{exams[state].id}/sessions")).json()
    for state in ("submitted", "results_released"):
        await client.post(f"/api/v1/sessions/{sessions[state]['id']}/submit")
    async with sessionmaker() as worker_db:
        await grade_session(worker_db, uuid.UUID(sessions["results_released"]["id"]))
        await worker_db.commit()

    response = await client.get("/api/v1/exams")
    assert response.status_code == 200, response.text
    body = response.json()
    by_id = {item["id"]: item for item in body["items"]}
    assert str(hidden_draft.id) not in by_id and str(not_mine.id) not in by_id
    assert body["total"] == len(exams)
    assert {state: by_id[str(e.id)]["state"] for state, e in exams.items()} == {s: s for s in exams}
    running = by_id[str(exams["in_progress"].id)]
    assert running["session_id"] == sessions["in_progress"]["id"]
    assert running["deadline_at"] is not None and running["attempts_used"] == 1
    for field in ("opens_at", "closes_at", "duration_minutes", "title"):
        assert field in running
