"""Release policies, review, the owner's session list and results (JSON and CSV)."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from safexam.grading.service import grade_session
from tests.factories import enroll, make_exam, make_question
from tests.helpers import one, signed_in


async def grade(sessionmaker: async_sessionmaker[AsyncSession], session_id: str) -> None:
    """What the grading worker does for the job submit created."""
    async with sessionmaker() as worker_db:
        await grade_session(worker_db, uuid.UUID(session_id))
        await worker_db.commit()


async def _take(
    make_client: Any,
    db: AsyncSession,
    exam: Any,
    answers: dict[str, dict[str, Any]],
    name: str | None = None,
) -> tuple[Any, dict[str, Any]]:
    client, student = await signed_in(make_client, db, "student", email=name)
    await enroll(db, exam, student)
    session = (await client.post(f"/api/v1/exams/{exam.id}/sessions")).json()
    for q in session["questions"]:
        if q["kind"] in answers:
            r = await client.put(
                f"/api/v1/sessions/{session['id']}/responses/{q['id']}",
                json={"answer": answers[q["kind"]], "client_seq": 1},
            )
            assert r.status_code == 200, r.text
    assert (await client.post(f"/api/v1/sessions/{session['id']}/submit")).status_code == 202
    return client, session


async def test_manual_release_and_review(
    make_client: Any, db: AsyncSession, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    educator_client, educator = await signed_in(make_client, db, "educator")
    mcq = await make_question(db, educator, "mcq_single")
    num = await make_question(db, educator, "numeric")
    exam = await make_exam(db, educator, [(mcq, 2.0), (num, 3.0)], release_policy="manual")
    client, session = await _take(
        make_client, db, exam, {"mcq_single": {"choice": "b"}, "numeric": {"value": 1.0}}
    )
    before = await client.get(f"/api/v1/sessions/{session['id']}/review")
    assert before.status_code == 403
    assert before.json()["error"]["code"] == "results_not_released"
    await grade(sessionmaker, session["id"])
    still = await client.get(f"/api/v1/sessions/{session['id']}/review")
    assert still.status_code == 403 and still.json()["error"]["code"] == "results_not_released"
    assert (await client.get(f"/api/v1/sessions/{session['id']}")).json()["result"] is None

    # Only the owner releases.
    _, _ = await signed_in(make_client, db, "educator")
    assert (await client.post(f"/api/v1/exams/{exam.id}/release")).status_code == 403
    released = await educator_client.post(f"/api/v1/exams/{exam.id}/release")
    assert released.status_code == 200, released.text
    assert released.json()["results_released"] == 1
    assert (await one(db, "SELECT released_at FROM exams WHERE id = :e", e=exam.id)).released_at
    assert (await one(db, "SELECT released_at FROM results")).released_at

    review = await client.get(f"/api/v1/sessions/{session['id']}/review")
    assert review.status_code == 200, review.text
    body = review.json()
    assert body["score"] == 2.0 and body["max_score"] == 5.0
    by_kind = {q["kind"]: q for q in body["questions"]}
    assert by_kind["mcq_single"]["answer"] == {"choice": "b"}
    assert by_kind["mcq_single"]["correct_answer"] == {"choices": ["b"]}
    assert by_kind["mcq_single"]["score"] == 2.0
    assert by_kind["numeric"]["correct_answer"] == {"value": 42.5, "tolerance": 0.01}
    assert by_kind["numeric"]["score"] == 0.0
    view = (await client.get(f"/api/v1/sessions/{session['id']}")).json()
    assert view["result"] == {"score": 2.0, "max_score": 5.0}


async def test_immediate_and_after_close_policies(
    make_client: Any, db: AsyncSession, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    _, educator = await signed_in(make_client, db, "educator")
    q = await make_question(db, educator, "mcq_single")
    now = datetime.now(UTC)
    immediate = await make_exam(db, educator, [q], release_policy="immediate")
    after_close = await make_exam(
        db, educator, [q], release_policy="after_close", closes_at=now + timedelta(hours=2)
    )
    c1, s1 = await _take(make_client, db, immediate, {"mcq_single": {"choice": "b"}})
    c2, s2 = await _take(make_client, db, after_close, {"mcq_single": {"choice": "b"}})
    for sid in (s1["id"], s2["id"]):
        await grade(sessionmaker, sid)
    assert (await c1.get(f"/api/v1/sessions/{s1['id']}/review")).status_code == 200
    assert (await c2.get(f"/api/v1/sessions/{s2['id']}/review")).status_code == 403
    await db.execute(
        text("UPDATE exams SET closes_at = now() - interval '1 minute' WHERE id = :e"),
        {"e": after_close.id},
    )
    await db.commit()
    assert (await c2.get(f"/api/v1/sessions/{s2['id']}/review")).status_code == 200


async def test_owner_views_and_csv_export(
    make_client: Any, db: AsyncSession, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    educator_client, educator = await signed_in(make_client, db, "educator")
    mcq = await make_question(db, educator, "mcq_single", prompt="Which is four?")
    short = await make_question(
        db,
        educator,
        "short_text",
        prompt="Name, the gas",
        body={"answers": ["oxygen"], "case_sensitive": False},
    )
    exam = await make_exam(db, educator, [(mcq, 2.0), (short, 2.0)])
    _, ada = await _take(
        make_client,
        db,
        exam,
        {"mcq_single": {"choice": "b"}, "short_text": {"text": "Oxygen"}},
        name="ada@college.edu",
    )
    _, bob = await _take(
        make_client, db, exam, {"mcq_single": {"choice": "a"}}, name="bob@college.edu"
    )
    await grade(sessionmaker, ada["id"])
    await grade(sessionmaker, bob["id"])
    await enroll(db, exam, "=cmd@college.edu")  # never signed in, never started

    sessions = await educator_client.get(f"/api/v1/exams/{exam.id}/sessions")
    assert sessions.status_code == 200
    assert {r["email"] for r in sessions.json()["items"]} == {"ada@college.edu", "bob@college.edu"}
    assert all(
        r["status"] == "graded" and r["remaining_seconds"] == 0 for r in sessions.json()["items"]
    )

    results = await educator_client.get(f"/api/v1/exams/{exam.id}/results")
    assert results.status_code == 200, results.text
    body = results.json()
    assert body["exam_id"] == str(exam.id)
    rows = {r["email"]: r for r in body["rows"]}
    assert rows["ada@college.edu"]["score"] == 4.0 and rows["ada@college.edu"]["percent"] == 100.0
    assert rows["bob@college.edu"]["score"] == 0.0 and rows["bob@college.edu"]["max_score"] == 4.0
    # Unanswered scores zero once graded.
    assert rows["bob@college.edu"]["questions"] == {str(mcq.id): 0.0, str(short.id): 0.0}
    assert rows["=cmd@college.edu"]["status"] == "not_started"
    for field in (
        "session_id",
        "email",
        "name",
        "status",
        "score",
        "max_score",
        "percent",
        "questions",
    ):
        assert field in rows["ada@college.edu"]

    export = await educator_client.get(f"/api/v1/exams/{exam.id}/results?format=csv")
    assert export.status_code == 200
    assert export.headers["content-type"].startswith("text/csv")
    table = list(csv.reader(io.StringIO(export.text)))
    assert table[0][:9] == [
        "email",
        "name",
        "status",
        "attempt",
        "started_at",
        "submitted_at",
        "score",
        "max_score",
        "percent",
    ]
    assert table[0][9:] == ["Q1 Which is four?", "Q2 Name, the gas"]
    by_email = {r[0]: r for r in table[1:]}
    assert set(by_email) == {"ada@college.edu", "bob@college.edu", "'=cmd@college.edu"}
    ada_row = by_email["ada@college.edu"]
    assert ada_row[2] == "graded" and ada_row[6:9] == ["4.0", "4.0", "100.0"]
    assert ada_row[9:] == ["2.0", "2.0"]
    assert by_email["bob@college.edu"][9:] == ["0.0", "0.0"]
    assert by_email["'=cmd@college.edu"][2] == "not_started"
    assert datetime.fromisoformat(ada_row[4]) <= datetime.fromisoformat(ada_row[5])


async def test_other_educators_and_students_get_nothing(make_client: Any, db: AsyncSession) -> None:
    _, educator = await signed_in(make_client, db, "educator")
    rival, _ = await signed_in(make_client, db, "educator")
    q = await make_question(db, educator)
    exam = await make_exam(db, educator, [q])
    student_client, _ = await _take(make_client, db, exam, {})
    for path in ("sessions", "results", "results?format=csv"):
        response = await rival.get(f"/api/v1/exams/{exam.id}/{path}")
        assert response.status_code == 404, (path, response.text)
        assert (await student_client.get(f"/api/v1/exams/{exam.id}/{path}")).status_code == 403
    assert (await rival.post(f"/api/v1/exams/{exam.id}/release")).status_code == 404
    assert (await rival.get(f"/api/v1/exams/{uuid.uuid4()}/results")).status_code == 404
