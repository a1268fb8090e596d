"""The review names the code submission a coding question's score came from:
the last judged before the deadline, or the best when the question says so."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from safexam.auth.guards import Principal
from safexam.coding.models import CodingSubmission
from safexam.grading.service import grade_session
from safexam.sessions.review import review_session
from tests.factories import (
    coding_spec,
    enroll,
    exam_with_questions,
    make_session,
    make_user,
    paper_for,
)


@pytest.mark.parametrize(("scoring", "counted"), [("last", "second"), ("best", "first")])
async def test_the_submission_that_counts(
    db: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
    scoring: str,
    counted: str,
) -> None:
    educator = await make_user(db, "educator")
    student = await make_user(db)
    exam, questions = await exam_with_questions(db, educator, [(coding_spec(scoring), 4.0)])
    await enroll(db, exam, student)
    session = await make_session(db, exam, student, paper_for(questions, [4.0]), {})
    now = datetime.now(UTC)
    for source, score, status, minutes in (
        ("first", 1.0, "done", -20),
        ("second", 0.0, "done", -10),
        ("queued", None, "queued", -5),  # never judged: counts for nothing
        ("late", 1.0, "done", 45),  # after the deadline: counts for nothing
    ):
        db.add(
            CodingSubmission(
                session_id=session.id,
                question_id=questions[0].id,
                kind="submit",
                language="python",
                source=source,
                status=status,
                verdict=None if score is None else ("accepted" if score else "wrong_answer"),
                score=score,
                max_score=None if score is None else 1.0,
                tests=[]
                if score is None
                else [{"name": "t", "verdict": "accepted" if score else "wrong_answer"}],
                tests_done=0 if score is None else 1,
                tests_total=1,
                created_at=now + timedelta(minutes=minutes),
            )
        )
    await db.commit()
    async with sessionmaker() as worker_db:
        await grade_session(worker_db, session.id)
        await worker_db.commit()

    review = await review_session(
        db,
        session.id,
        Principal(
            id=student.id,
            email=student.email,
            name="s",
            role="student",
            organization_id=student.organization_id,
        ),
    )
    submission = review.questions[0].submission
    assert submission is not None and submission.source == counted
    assert submission.tests_passed == (1 if counted == "first" else 0)
    # The page shows the same score the grading gave.
    assert review.questions[0].score == (4.0 if counted == "first" else 0.0)
