"""What the exam's owner sees: who is taking it, how far they are, and the results table."""

from __future__ import annotations

import csv
import io
import uuid
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from safexam.auth.guards import Principal
from safexam.auth.models import User
from safexam.exams.models import Enrollment, Question
from safexam.exams.service import get_owned_exam
from safexam.grading.models import Result
from safexam.integrity.models import ActivityLog
from safexam.integrity.service import flag_kinds_of
from safexam.sessions.models import ExamSession, Response
from safexam.sessions.paper import paper_question_ids
from safexam.sessions.schemas import (
    ExamSessionRow,
    ExamSessionsOut,
    ResultColumn,
    ResultRow,
    ResultsOut,
)

__all__ = ["exam_results", "exam_sessions_overview", "results_csv"]

CSV_FIXED_COLUMNS = (
    "email",
    "name",
    "status",
    "attempt",
    "started_at",
    "submitted_at",
    "score",
    "max_score",
    "percent",
)
PROMPT_LABEL_CHARS = 40


async def exam_sessions_overview(
    db: AsyncSession, exam_id: uuid.UUID, principal: Principal
) -> ExamSessionsOut:
    """Every session of the exam: who, status, time left, answers saved, integrity counts."""
    exam = await get_owned_exam(db, exam_id, principal)
    now = (await db.execute(select(func.now()))).scalar_one()
    rows = (
        await db.execute(
            select(ExamSession, User.email, User.name)
            .join(User, User.id == ExamSession.user_id)
            .where(ExamSession.exam_id == exam.id)
            .order_by(ExamSession.started_at, ExamSession.id)
        )
    ).all()
    counts: dict[uuid.UUID, dict[str, int]] = {}
    for session_id, kind, n in (
        await db.execute(
            select(ActivityLog.session_id, ActivityLog.kind, func.count())
            .join(ExamSession, ExamSession.id == ActivityLog.session_id)
            .where(ExamSession.exam_id == exam.id)
            .group_by(ActivityLog.session_id, ActivityLog.kind)
        )
    ).all():
        counts.setdefault(session_id, {})[kind] = int(n)
    answered = {
        session_id: int(n)
        for session_id, n in (
            await db.execute(
                select(Response.session_id, func.count())
                .join(ExamSession, ExamSession.id == Response.session_id)
                .where(ExamSession.exam_id == exam.id)
                .group_by(Response.session_id)
            )
        ).all()
    }
    flagged = set(flag_kinds_of(exam.integrity))
    items = []
    for session, email, name in rows:
        by_kind = counts.get(session.id, {})
        remaining = (
            max(0, int((session.deadline_at - now).total_seconds()))
            if session.status == "active"
            else 0
        )
        items.append(
            ExamSessionRow(
                session_id=session.id,
                user_id=session.user_id,
                email=email,
                name=name,
                attempt=session.attempt,
                status=session.status,
                started_at=session.started_at,
                deadline_at=session.deadline_at,
                submitted_at=session.submitted_at,
                remaining_seconds=remaining,
                answered=answered.get(session.id, 0),
                question_count=len(session.paper),
                event_counts=dict(sorted(by_kind.items())),
                flagged_events=sum(n for k, n in by_kind.items() if k in flagged),
            )
        )
    return ExamSessionsOut(exam_id=exam.id, server_time=now, items=items, total=len(items))


async def exam_results(db: AsyncSession, exam_id: uuid.UUID, principal: Principal) -> ResultsOut:
    """One row per enrolled student (their latest attempt), one column per question.

    Students who never started appear with status ``not_started``; with tag
    draws each student has their own questions, so a column is empty for
    students whose paper did not include it. A per-question score is the
    educator's override when there is one.
    """
    exam = await get_owned_exam(db, exam_id, principal)
    sessions = list(
        (
            await db.execute(
                select(ExamSession)
                .where(ExamSession.exam_id == exam.id)
                .order_by(ExamSession.user_id, ExamSession.attempt)
            )
        ).scalars()
    )
    latest: dict[uuid.UUID, ExamSession] = {}
    for s in sessions:
        latest[s.user_id] = s  # ordered by attempt: the last one wins
    enrolled = (
        await db.execute(
            select(Enrollment.email, Enrollment.user_id).where(Enrollment.exam_id == exam.id)
        )
    ).all()
    user_ids = set(latest) | {u for _, u in enrolled if u is not None}
    emails = {e for e, _ in enrolled}
    users = {
        u.id: u
        for u in (
            await db.execute(
                select(User).where(or_(User.id.in_(list(user_ids)), User.email.in_(list(emails))))
            )
        ).scalars()
    }
    by_email = {u.email: u for u in users.values()}
    chosen = [s.id for s in latest.values()]
    results = {
        r.session_id: r
        for r in (await db.execute(select(Result).where(Result.session_id.in_(chosen)))).scalars()
    }
    scores: dict[uuid.UUID, dict[str, float | None]] = {}
    for r in (
        await db.execute(
            select(
                Response.session_id,
                Response.question_id,
                Response.score,
                Response.override_score,
            ).where(Response.session_id.in_(chosen))
        )
    ).all():
        value = r.override_score if r.override_score is not None else r.score
        scores.setdefault(r.session_id, {})[str(r.question_id)] = value

    # Columns: questions in exam order (item position), then by first appearance.
    order: dict[uuid.UUID, tuple[int, int]] = {}
    for s in latest.values():
        for index, entry in enumerate(s.paper):
            qid = uuid.UUID(str(entry["question_id"]))
            key = (int(entry.get("position", 0)), index)
            if qid not in order or key < order[qid]:
                order[qid] = key
    column_ids = sorted(order, key=lambda q: (order[q], str(q)))
    prompts = {
        q.id: q.prompt
        for q in (
            await db.execute(
                select(Question.id, Question.prompt).where(Question.id.in_(column_ids))
            )
        ).all()
    }
    columns = [
        ResultColumn(question_id=qid, label=f"Q{i}", prompt=prompts.get(qid, ""))
        for i, qid in enumerate(column_ids, start=1)
    ]

    rows: list[ResultRow] = []
    seen_users: set[uuid.UUID] = set()

    def row_for(user: User | None, email: str, session: ExamSession | None) -> ResultRow:
        if session is None:
            return ResultRow(
                session_id=None,
                user_id=user.id if user else None,
                email=email,
                name=user.name if user else "",
                status="not_started",
                attempt=None,
                started_at=None,
                submitted_at=None,
                score=None,
                max_score=None,
                percent=None,
                questions={},
            )
        result = results.get(session.id)
        on_paper = paper_question_ids(session.paper)
        max_score = (
            result.max_score
            if result is not None
            else float(sum(float(e["points"]) for e in session.paper))
        )
        score = result.score if result is not None else None
        percent = (
            round(100.0 * score / max_score, 2) if score is not None and max_score > 0 else None
        )
        got = scores.get(session.id, {})
        return ResultRow(
            session_id=session.id,
            user_id=session.user_id,
            email=email,
            name=user.name if user else "",
            status=session.status,
            attempt=session.attempt,
            started_at=session.started_at,
            submitted_at=session.submitted_at,
            score=score,
            max_score=max_score,
            percent=percent,
            questions={str(q): got.get(str(q)) for q in on_paper},
        )

    for email, user_id in enrolled:
        user = users.get(user_id) if user_id is not None else by_email.get(email)
        if user is not None:
            if user.id in seen_users:
                continue
            seen_users.add(user.id)
        rows.append(row_for(user, email, latest.get(user.id) if user else None))
    # Someone who started and was un-enrolled later still has a result to show.
    for user_id, session in latest.items():
        if user_id not in seen_users:
            user = users.get(user_id)
            seen_users.add(user_id)
            rows.append(row_for(user, user.email if user else "", session))
    rows.sort(key=lambda r: r.email)
    return ResultsOut(exam_id=exam.id, columns=columns, rows=rows)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if hasattr(value, "isoformat"):
        return str(value.isoformat())
    text = str(value)
    # Spreadsheets run cells that start like a formula; names and emails are user input.
    if text[:1] in ("=", "+", "-", "@", "\t", "\r") and not _is_number(text):
        return "'" + text
    return text


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def results_csv(results: ResultsOut) -> str:
    """The results table as CSV: fixed columns, then one column per question (``Q1``...)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    header = list(CSV_FIXED_COLUMNS)
    for column in results.columns:
        prompt = " ".join(column.prompt.split())
        if len(prompt) > PROMPT_LABEL_CHARS:
            prompt = prompt[: PROMPT_LABEL_CHARS - 1] + "…"
        header.append(_cell(f"{column.label} {prompt}".strip()))
    writer.writerow(header)
    for row in results.rows:
        fixed = [
            row.email,
            row.name,
            row.status,
            row.attempt,
            row.started_at,
            row.submitted_at,
            row.score,
            row.max_score,
            row.percent,
        ]
        per_question = [row.questions.get(str(c.question_id)) for c in results.columns]
        writer.writerow([_cell(v) for v in (*fixed, *per_question)])
    return buffer.getvalue()
