"""The student's view of their session: the paper with saved answers, and the review.

Both show only the allow-listed student view of each question (no answer key,
hidden test or template); the review adds the correct answers, scores and
feedback once the exam's release policy allows.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from safexam.auth.guards import Principal
from safexam.coding.models import CodingSubmission
from safexam.core.errors import Forbidden
from safexam.exams.kinds import concrete_question, correct_answer, public_view
from safexam.exams.models import Exam, Question
from safexam.exams.variants import variant_seed
from safexam.grading.models import Result
from safexam.integrity.service import note_client
from safexam.sessions.models import ExamSession, Response
from safexam.sessions.paper import paper_question_ids
from safexam.sessions.rules import db_now, own_session, remaining_seconds, results_visible
from safexam.sessions.schemas import (
    PaperQuestion,
    ReviewItem,
    ReviewOut,
    ReviewSubmission,
    SavedResponse,
    ScoreOut,
    SessionOut,
)

__all__ = ["counted_submissions", "get_session", "review_session", "session_view"]


@dataclass(frozen=True)
class AnsweredItem:
    """One question of a session's paper as the student saw it, with the answer saved to it."""

    entry: Mapping[str, Any]
    question: Question
    response: Response | None
    prompt: str
    body: dict[str, Any]
    view: dict[str, Any]


async def answered_paper(
    db: AsyncSession, session: ExamSession
) -> tuple[dict[uuid.UUID, Question], list[AnsweredItem]]:
    """The session's questions by id, and its paper in order with each saved answer.

    A question deleted since the paper was drawn is left out of the list.
    """
    question_ids = paper_question_ids(session.paper)
    questions = {
        q.id: q
        for q in (await db.execute(select(Question).where(Question.id.in_(question_ids)))).scalars()
    }
    responses = {
        r.question_id: r
        for r in (
            await db.execute(select(Response).where(Response.session_id == session.id))
        ).scalars()
    }
    items: list[AnsweredItem] = []
    for entry in session.paper:
        q = questions.get(uuid.UUID(str(entry["question_id"])))
        if q is None:
            continue
        prompt, body = concrete_question(
            q.kind, q.prompt, q.body, entry.get("variant"), variant_seed(session.seed, q.id)
        )
        view = public_view(q.kind, body, entry.get("choice_order"))
        items.append(AnsweredItem(entry, q, responses.get(q.id), prompt, body, view))
    return questions, items


async def session_view(
    db: AsyncSession, session: ExamSession, exam: Exam, now: datetime
) -> SessionOut:
    """The session as its student sees it at ``now``: paper, saved answers, visible result."""
    question_ids = paper_question_ids(session.paper)
    questions = {
        row.id: row
        for row in (
            await db.execute(
                select(Question.id, Question.kind, Question.prompt, Question.body).where(
                    Question.id.in_(question_ids)
                )
            )
        ).all()
    }
    shown: list[PaperQuestion] = []
    for entry in session.paper:
        q = questions.get(uuid.UUID(str(entry["question_id"])))
        if q is None:
            continue
        prompt, body = concrete_question(
            q.kind, q.prompt, q.body, entry.get("variant"), variant_seed(session.seed, q.id)
        )
        # Allow-listed student view: no answer key, hidden test or template.
        view = public_view(q.kind, body, entry.get("choice_order"))
        shown.append(
            PaperQuestion(
                id=q.id,
                kind=q.kind,
                prompt=prompt,
                points=float(entry["points"]),
                choices=view.get("choices"),
                multiple=view.get("multiple"),
                languages=view.get("languages"),
                starter_code=view.get("starter_code"),
                visible_tests=view.get("visible_tests"),
                limits=view.get("limits"),
            )
        )
    saved = {
        str(r.question_id): SavedResponse(
            answer=r.answer, client_seq=r.client_seq, saved_at=r.saved_at
        )
        for r in (
            await db.execute(
                select(
                    Response.question_id, Response.answer, Response.client_seq, Response.saved_at
                ).where(Response.session_id == session.id)
            )
        ).all()
    }
    result = await db.get(Result, session.id)
    visible = results_visible(
        release_policy=exam.release_policy,
        closes_at=exam.closes_at,
        exam_released_at=exam.released_at,
        result=result,
        now=now,
    )
    return SessionOut(
        id=session.id,
        exam_id=session.exam_id,
        attempt=session.attempt,
        status=session.status,
        started_at=session.started_at,
        deadline_at=session.deadline_at,
        submitted_at=session.submitted_at,
        server_time=now,
        remaining_seconds=remaining_seconds(session.status, session.deadline_at, now),
        questions=shown,
        responses=saved,
        result=ScoreOut(score=result.score, max_score=result.max_score)
        if visible and result is not None
        else None,
    )


async def get_session(
    db: AsyncSession,
    session_id: uuid.UUID,
    principal: Principal,
    *,
    ip: str | None = None,
    user_agent: str | None = None,
) -> SessionOut:
    """The student's own session with every saved answer; 404 for anyone else's."""
    now = await db_now(db)
    session = await own_session(db, session_id, principal)
    exam = await db.get(Exam, session.exam_id)
    assert exam is not None  # foreign key
    view = await session_view(db, session, exam, now)
    if session.status == "active" and await note_client(
        db,
        session_id=session.id,
        start_ip=session.ip_address,
        start_user_agent=session.user_agent,
        ip=ip,
        user_agent=user_agent,
    ):
        await db.commit()
    return view


async def counted_submissions(
    db: AsyncSession, session: ExamSession, questions: dict[uuid.UUID, Question]
) -> dict[uuid.UUID, ReviewSubmission]:
    """Per coding question, the submission its score comes from.

    The rule grading applies (``grading.service.coding_fractions``): judged
    submissions made before the deadline; the last counts, or the best when
    the question's body says ``"scoring": "best"``.
    """
    coding = [q for q in questions.values() if q.kind == "coding"]
    if not coding:
        return {}
    best_mode = {q.id for q in coding if (q.body or {}).get("scoring") == "best"}
    rows = (
        await db.execute(
            select(CodingSubmission)
            .where(
                CodingSubmission.session_id == session.id,
                CodingSubmission.kind == "submit",
                CodingSubmission.status == "done",
                CodingSubmission.created_at <= session.deadline_at,
                CodingSubmission.question_id.in_([q.id for q in coding]),
            )
            .order_by(CodingSubmission.created_at, CodingSubmission.id)
        )
    ).scalars()
    counted: dict[uuid.UUID, CodingSubmission] = {}
    for row in rows:
        kept = counted.get(row.question_id)
        if kept is not None and row.question_id in best_mode and _fraction(row) <= _fraction(kept):
            continue
        counted[row.question_id] = row
    return {
        qid: ReviewSubmission(
            id=row.id,
            language=row.language,
            source=row.source,
            verdict=row.verdict,
            score=row.score,
            max_score=row.max_score,
            tests_passed=sum(1 for t in row.tests or [] if t.get("verdict") == "accepted"),
            tests_total=row.tests_total,
            submitted_at=row.created_at,
        )
        for qid, row in counted.items()
    }


def _fraction(row: CodingSubmission) -> float:
    maximum = float(row.max_score or 0.0)
    return float(row.score or 0.0) / maximum if maximum > 0 else 0.0


async def review_session(
    db: AsyncSession, session_id: uuid.UUID, principal: Principal
) -> ReviewOut:
    """Each question with the student's answer, the correct answer, score and feedback.

    403 ``results_not_released`` until the exam's release policy allows it.
    """
    now = await db_now(db)
    session = await own_session(db, session_id, principal)
    exam = await db.get(Exam, session.exam_id)
    assert exam is not None
    result = await db.get(Result, session.id)
    if not results_visible(
        release_policy=exam.release_policy,
        closes_at=exam.closes_at,
        exam_released_at=exam.released_at,
        result=result,
        now=now,
    ):
        raise Forbidden("Results of this exam are not released yet", code="results_not_released")
    assert result is not None
    questions, answered = await answered_paper(db, session)
    submissions = await counted_submissions(db, session, questions)
    items: list[ReviewItem] = []
    for item in answered:
        q, r, prompt, body, view = item.question, item.response, item.prompt, item.body, item.view
        score = None
        if r is not None:
            score = r.override_score if r.override_score is not None else r.score
        items.append(
            ReviewItem(
                id=q.id,
                kind=q.kind,
                prompt=prompt,
                points=float(item.entry["points"]),
                answer=r.answer if r is not None else None,
                correct_answer=correct_answer(q.kind, body),
                score=score,
                feedback=(r.override_comment or r.feedback) if r is not None else None,
                choices=view.get("choices"),
                languages=view.get("languages"),
                submission=submissions.get(q.id),
            )
        )
    return ReviewOut(
        session_id=session.id,
        exam_id=session.exam_id,
        status=session.status,
        score=result.score,
        max_score=result.max_score,
        released_at=result.released_at or exam.released_at,
        questions=items,
    )
