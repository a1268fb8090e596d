"""What the exam's owner sees: who is taking it, how far they are, and the results table."""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Iterable
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from safexam.auth.guards import Principal
from safexam.auth.models import User
from safexam.coding.models import CodingSubmission
from safexam.core.errors import NotFound
from safexam.exams.kinds import correct_answer
from safexam.exams.models import Enrollment, Question
from safexam.exams.service import get_owned_exam
from safexam.grading.models import Result
from safexam.integrity.models import ActivityLog
from safexam.integrity.service import flag_kinds_of
from safexam.sessions.models import ExamSession, Response
from safexam.sessions.paper import paper_question_ids
from safexam.sessions.review import answered_paper, counted_submissions
from safexam.sessions.schemas import (
    ExamSessionRow,
    ExamSessionsOut,
    ResultColumn,
    ResultRow,
    ResultsOut,
    StudentResultItem,
    StudentResultOut,
    SubmissionDetailOut,
    SubmissionTestOut,
)

__all__ = [
    "exam_results",
    "exam_sessions_overview",
    "question_labels",
    "results_csv",
    "student_result",
]

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


def _columns(
    papers: Iterable[list[dict[str, Any]]],
) -> tuple[list[uuid.UUID], dict[uuid.UUID, float]]:
    """The results table's question columns and what each is worth.

    In exam order (item position), then by first appearance, so that Q1 means
    the same question on the table, in the CSV and on a student's page.
    """
    order: dict[uuid.UUID, tuple[int, int]] = {}
    points: dict[uuid.UUID, float] = {}
    for paper in papers:
        for index, entry in enumerate(paper):
            qid = uuid.UUID(str(entry["question_id"]))
            key = (int(entry.get("position", 0)), index)
            if qid not in order or key < order[qid]:
                order[qid] = key
            points[qid] = max(points.get(qid, 0.0), float(entry.get("points") or 0.0))
    return sorted(order, key=lambda q: (order[q], str(q))), points


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
    response_ids: dict[uuid.UUID, dict[str, uuid.UUID]] = {}
    for r in (
        await db.execute(
            select(
                Response.id,
                Response.session_id,
                Response.question_id,
                Response.score,
                Response.override_score,
            ).where(Response.session_id.in_(chosen))
        )
    ).all():
        value = r.override_score if r.override_score is not None else r.score
        scores.setdefault(r.session_id, {})[str(r.question_id)] = value
        response_ids.setdefault(r.session_id, {})[str(r.question_id)] = r.id

    column_ids, points = _columns(s.paper for s in latest.values())
    prompts = {
        q.id: q.prompt
        for q in (
            await db.execute(
                select(Question.id, Question.prompt).where(Question.id.in_(column_ids))
            )
        ).all()
    }
    columns = [
        ResultColumn(
            question_id=qid, label=f"Q{i}", prompt=prompts.get(qid, ""), points=points[qid]
        )
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
            response_ids={
                q: rid
                for q, rid in response_ids.get(session.id, {}).items()
                if uuid.UUID(q) in on_paper
            },
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


# What a spreadsheet reads as the start of a formula (the full-width forms too,
# which some spreadsheets fold into the ASCII ones), and leading white space
# that some of them skip before looking.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n", "\uff1d", "\uff0b", "\uff0d", "\uff20")


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int | float):
        # Numbers are ours, never text someone typed: they stay numbers.
        return repr(value) if isinstance(value, float) else str(value)
    if hasattr(value, "isoformat"):
        return str(value.isoformat())
    text = str(value)
    # Spreadsheets run cells that start like a formula; names, emails and
    # prompts are user input, so such a cell is made plain text.
    if text.lstrip(" ")[:1] in _FORMULA_START:
        return "'" + text
    return text


def results_csv(results: ResultsOut) -> str:
    """The results table as CSV: fixed columns, then one column per question (``Q1``...).

    Every cell is quoted, so no spreadsheet guesses at a cell's type from its
    text (a leading zero, a date-like name).
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n", quoting=csv.QUOTE_ALL)
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


async def question_labels(db: AsyncSession, exam_id: uuid.UUID) -> dict[uuid.UUID, str]:
    """Each question's label (``Q1``, ...) in column order, as the results table, its CSV,
    a student's result page and the integrity timeline all name it."""
    # The columns of the results table: the latest attempt of each student counts.
    latest: dict[uuid.UUID, list[dict[str, Any]]] = {}
    for user_id, paper in (
        await db.execute(
            select(ExamSession.user_id, ExamSession.paper)
            .where(ExamSession.exam_id == exam_id)
            .order_by(ExamSession.user_id, ExamSession.attempt)
        )
    ).all():
        latest[user_id] = paper
    column_ids, _ = _columns(latest.values())
    return {qid: f"Q{i}" for i, qid in enumerate(column_ids, start=1)}


async def student_result(
    db: AsyncSession, exam_id: uuid.UUID, session_id: uuid.UUID, principal: Principal
) -> StudentResultOut:
    """One attempt of the exam, for its owner: each answer, the key, the scores, the tests.

    404 when the exam is not the caller's or the session is not of this exam.
    """
    exam = await get_owned_exam(db, exam_id, principal)
    found = (
        await db.execute(
            select(ExamSession, User.email, User.name)
            .join(User, User.id == ExamSession.user_id)
            .where(ExamSession.id == session_id, ExamSession.exam_id == exam.id)
        )
    ).one_or_none()
    if found is None:
        raise NotFound("session not found")
    session, email, name = found
    labels = await question_labels(db, exam.id)
    column_ids = list(labels)
    questions, answered = await answered_paper(db, session)
    submissions = await _counted_submission_rows(db, session, questions)
    result = await db.get(Result, session.id)
    items: list[StudentResultItem] = []
    for item in answered:
        q, r, prompt, body, view = item.question, item.response, item.prompt, item.body, item.view
        auto = r.score if r is not None else None
        override = r.override_score if r is not None else None
        sub = submissions.get(q.id)
        items.append(
            StudentResultItem(
                question_id=q.id,
                label=labels.get(q.id, "Q?"),
                kind=q.kind,
                prompt=prompt,
                points=float(item.entry["points"]),
                response_id=r.id if r is not None else None,
                answer=r.answer if r is not None else None,
                correct_answer=correct_answer(q.kind, body),
                choices=view.get("choices"),
                auto_score=auto,
                override_score=override,
                override_comment=r.override_comment if r is not None else None,
                override_at=r.override_at if r is not None else None,
                score=override if override is not None else auto,
                feedback=r.feedback if r is not None else None,
                submission=None
                if sub is None
                else SubmissionDetailOut(
                    id=sub.id,
                    language=sub.language,
                    source=sub.source,
                    verdict=sub.verdict,
                    score=sub.score,
                    max_score=sub.max_score,
                    compile_output=sub.compile_output,
                    submitted_at=sub.created_at,
                    tests=[
                        SubmissionTestOut(
                            name=str(t.get("name") or f"Test {n}"),
                            hidden=bool(t.get("hidden")),
                            verdict=str(t.get("verdict") or "unknown"),
                            time_ms=int(t.get("time_ms") or 0),
                            points=float(t.get("points") or 0.0),
                            max_points=float(t.get("max_points") or 0.0),
                        )
                        for n, t in enumerate(sub.tests or [], start=1)
                    ],
                ),
            )
        )
    position = {qid: n for n, qid in enumerate(column_ids)}
    items.sort(key=lambda i: position.get(i.question_id, len(position)))
    max_score = (
        result.max_score
        if result is not None
        else float(sum(float(e.get("points") or 0.0) for e in session.paper))
    )
    return StudentResultOut(
        session_id=session.id,
        exam_id=exam.id,
        exam_title=exam.title,
        user_id=session.user_id,
        email=email,
        name=name,
        status=session.status,
        attempt=session.attempt,
        started_at=session.started_at,
        submitted_at=session.submitted_at,
        graded_at=session.graded_at,
        score=result.score if result is not None else None,
        max_score=max_score,
        pending_count=result.pending_count if result is not None else 0,
        released_at=(result.released_at if result is not None else None) or exam.released_at,
        items=items,
    )


async def _counted_submission_rows(
    db: AsyncSession, session: ExamSession, questions: dict[uuid.UUID, Question]
) -> dict[uuid.UUID, CodingSubmission]:
    """Per coding question, the submission its score comes from (as the review counts it)."""
    counted = await counted_submissions(db, session, questions)
    if not counted:
        return {}
    rows = (
        await db.execute(
            select(CodingSubmission).where(
                CodingSubmission.id.in_([s.id for s in counted.values()])
            )
        )
    ).scalars()
    by_id = {row.id: row for row in rows}
    return {qid: by_id[s.id] for qid, s in counted.items() if s.id in by_id}
