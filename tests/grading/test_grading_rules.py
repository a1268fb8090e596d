"""grade_session against the real database: every kind, coding submissions, overrides, regrades."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from safexam.coding.models import CodingSubmission
from safexam.core.db import utcnow
from safexam.exams.models import Exam, Question
from safexam.grading.models import Result
from safexam.grading.regrade import run_regrade
from safexam.grading.service import grade_session
from safexam.jobs.models import Job
from safexam.jobs.runner import Done, run_job
from safexam.sessions.models import ExamSession, Response
from tests.factories import (
    coding_spec,
    exam_with_questions,
    make_session,
    mcq_multi,
    mcq_single,
    numeric,
    paper_for,
    short_text,
)
from tests.helpers import login, make_user


async def scores_of(db: AsyncSession, session_id: uuid.UUID) -> dict[uuid.UUID, float | None]:
    rows = await db.execute(
        select(Response.question_id, Response.score).where(Response.session_id == session_id)
    )
    return dict(rows.all())  # type: ignore[arg-type]


async def run_regrade_inline(
    sessionmaker: async_sessionmaker[AsyncSession], job_id: uuid.UUID
) -> Job:
    """Run a regrade job through the same runner the worker uses, in this process."""

    async def work(db: AsyncSession, claim: Any) -> Done:
        return Done(await run_regrade(db, claim, sessionmaker))

    await run_job(job_id, work, sessionmaker=sessionmaker)
    async with sessionmaker() as db:
        job = await db.get(Job, job_id)
        assert job is not None
        return job


async def test_every_kind_is_scored_with_item_points(db: AsyncSession) -> None:
    educator = await make_user(db, "educator")
    student = await make_user(db, "student")
    items = [
        (mcq_single("b"), 2),
        (mcq_multi(["a", "c"]), 2),
        (mcq_multi(["a", "c"], partial=True), 4),
        (numeric(10, 0.5), 1),
        (short_text(["Ada Lovelace"]), 1),
        (coding_spec(), 5),
        (mcq_single("a"), 3),  # left unanswered
    ]
    exam, qs = await exam_with_questions(db, educator, items)
    session = await make_session(
        db,
        exam,
        student,
        paper_for(qs, [p for _, p in items]),
        {
            qs[0].id: {"choice": "b"},
            qs[1].id: {"choices": ["a"]},
            qs[2].id: {"choices": ["a", "c", "d"]},
            qs[3].id: {"value": 10.4},
            qs[4].id: {"text": "  ada   LOVELACE "},
            qs[5].id: {"language": "python", "source": "print(1)"},
        },
    )
    outcome = await grade_session(db, session.id)
    await db.commit()
    assert outcome.score == 2 + 0 + 2 + 1 + 1
    assert outcome.max_score == 18
    assert outcome.pending_count == 1  # the coding question: no submission yet, not zero
    scores = await scores_of(db, session.id)
    assert scores == {
        qs[0].id: 2.0,
        qs[1].id: 0.0,
        qs[2].id: 2.0,
        qs[3].id: 1.0,
        qs[4].id: 1.0,
        qs[5].id: None,
        qs[6].id: 0.0,  # a row is created for the unanswered question
    }
    graded = await db.get(ExamSession, session.id, populate_existing=True)
    assert graded is not None and graded.status == "graded" and graded.graded_at is not None
    result = await db.get(Result, session.id, populate_existing=True)
    assert result is not None
    assert (result.score, result.max_score, result.pending_count) == (6.0, 18.0, 1)
    assert result.grading_version == exam.grading_version
    assert result.released_at is not None  # release_policy immediate

    # Grading again changes nothing: same rows, one result.
    again = await grade_session(db, session.id)
    await db.commit()
    assert again.score == outcome.score
    count = (
        await db.execute(
            select(func.count()).select_from(Result).where(Result.session_id == session.id)
        )
    ).scalar_one()
    assert count == 1
    assert await scores_of(db, session.id) == scores


async def test_manual_release_keeps_the_result_unreleased(db: AsyncSession) -> None:
    educator = await make_user(db, "educator")
    student = await make_user(db, "student")
    exam, qs = await exam_with_questions(
        db, educator, [(mcq_single("b"), 1)], release_policy="manual"
    )
    session = await make_session(db, exam, student, paper_for(qs, [1]), {qs[0].id: {"choice": "b"}})
    await grade_session(db, session.id)
    await db.commit()
    result = await db.get(Result, session.id)
    assert result is not None and result.released_at is None and result.score == 1.0


@pytest.mark.parametrize(("scoring", "expected"), [("last", 2.0), ("best", 8.0)])
async def test_coding_takes_the_submission_that_counts(
    db: AsyncSession, scoring: str, expected: float
) -> None:
    educator = await make_user(db, "educator")
    student = await make_user(db, "student")
    exam, qs = await exam_with_questions(db, educator, [(coding_spec(scoring), 10)])
    session = await make_session(db, exam, student, paper_for(qs, [10]), {})
    now = utcnow()

    def submission(kind: str, score: float, at: Any, status: str = "done") -> CodingSubmission:
        return CodingSubmission(
            session_id=session.id,
            question_id=qs[0].id,
            kind=kind,
            language="python",
            source="x",
            status=status,
            score=score,
            max_score=5,
            created_at=at,
        )

    db.add_all(
        [
            submission("submit", 4, now - timedelta(minutes=20)),  # 0.8
            submission("submit", 1, now - timedelta(minutes=10)),  # 0.2, the last in time
            submission("run", 5, now - timedelta(minutes=5)),  # runs never count
            submission("submit", 5, session.deadline_at + timedelta(seconds=1)),  # too late
            submission("submit", 5, now - timedelta(minutes=1), status="error"),  # not done
        ]
    )
    await db.commit()
    outcome = await grade_session(db, session.id)
    await db.commit()
    assert outcome.pending_count == 0
    assert outcome.score == expected


async def test_override_wins_and_survives_a_regrade(
    db: AsyncSession, sessionmaker: async_sessionmaker[AsyncSession], make_client: Any
) -> None:
    educator = await make_user(db, "educator")
    other = await make_user(db, "educator")
    student = await make_user(db, "student")
    exam, qs = await exam_with_questions(db, educator, [(mcq_single("b"), 2), (mcq_single("c"), 3)])
    session = await make_session(
        db,
        exam,
        student,
        paper_for(qs, [2, 3]),
        {qs[0].id: {"choice": "a"}, qs[1].id: {"choice": "a"}},
    )
    await grade_session(db, session.id)
    await db.commit()
    response_id = (
        await db.execute(
            select(Response.id).where(
                Response.session_id == session.id, Response.question_id == qs[0].id
            )
        )
    ).scalar_one()

    # One browser, several people in turn (test clients of one app share its loop).
    owner = await make_client()
    url = f"/api/v1/responses/{response_id}/override"
    await login(owner, other.email)
    assert (await owner.put(url, json={"score": 1})).status_code == 404
    await login(owner, student.email)
    assert (await owner.put(url, json={"score": 1})).status_code == 403
    await login(owner, educator.email)
    too_much = await owner.put(url, json={"score": 2.5, "comment": "x"})
    assert too_much.status_code == 422, too_much.text
    assert too_much.json()["error"]["details"][0]["field"] == "score"

    # Every override says why; without a reason it is refused, naming the field.
    no_reason = await owner.put(url, json={"score": 1.5, "comment": "partly right"})
    assert no_reason.status_code == 422, no_reason.text
    assert no_reason.json()["error"]["details"][0]["field"] == "reason"
    ok = await owner.put(
        url,
        json={"score": 1.5, "comment": "partly right reasoning", "reason": "Reread by hand"},
    )
    assert ok.status_code == 200, ok.text
    body = ok.json()
    assert body["override_score"] == 1.5 and body["override_by"] == str(educator.id)
    assert body["override_at"] is not None
    assert body["result"] == {"score": 1.5, "max_score": 5.0, "pending_count": 0}

    # The key changes: "a" becomes right for both questions; regrade everything.
    for q in qs:
        await db.execute(
            update(Question).where(Question.id == q.id).values(body={**q.body, "answer": ["a"]})
        )
    await db.commit()
    started = await owner.post(f"/api/v1/exams/{exam.id}/regrade", json={})
    assert started.status_code == 202, started.text
    job = await run_regrade_inline(sessionmaker, uuid.UUID(started.json()["job_id"]))
    assert job.status == "succeeded", job.error

    async with sessionmaker() as check:
        response = await check.get(Response, response_id)
        assert response is not None
        assert response.score == 2.0  # the automatic score moved with the key...
        assert response.override_score == 1.5  # ...but the educator's score still counts
        result = await check.get(Result, session.id)
        assert result is not None and result.score == 1.5 + 3.0
        exam_row = await check.get(Exam, exam.id)
        assert exam_row is not None and result.grading_version == exam_row.grading_version == 2

    # Clearing the override lets automatic grading count again.
    cleared = await owner.put(url, json={"score": None, "reason": "The key now accepts it"})
    assert cleared.status_code == 200, cleared.text
    assert cleared.json()["result"]["score"] == 5.0
