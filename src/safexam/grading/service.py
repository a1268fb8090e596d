"""Grading a session, educator overrides, and the session total.

A question is worth, on one exam, what its exam item says (the ``points`` of
the student's paper entry); the kind's rule gives the fraction earned. An
educator's override replaces the automatic score of one response and is never
touched by later grading or regrades. Coding questions take the score of the
submission that counts (the last ``submit`` before the deadline, or the best
when the question says ``scoring: best``); until one exists the question is
pending, not zero, and the session total is provisional (``pending_count``).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog
from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from safexam.auth.guards import Principal, ensure_owner
from safexam.core.audit import record_audit
from safexam.core.db import utcnow
from safexam.core.errors import Conflict, NotFound, Unprocessable
from safexam.exams import kinds
from safexam.exams.models import Exam, Question
from safexam.exams.variants import variant_seed
from safexam.sessions.models import FINISHED_STATUSES, ExamSession, Response

__all__ = [
    "GRADABLE_STATUSES",
    "GradeOutcome",
    "ItemScore",
    "concrete_body",
    "grade_session",
    "grade_sessions",
    "override_response",
    "recompute_result",
    "score_items",
]

log = structlog.get_logger(__name__)

GRADABLE_STATUSES = FINISHED_STATUSES


class SessionNotGradable(Exception):
    """The session cannot be graded (unknown, or still active)."""


@dataclass(frozen=True)
class QuestionRow:
    id: uuid.UUID
    kind: str
    prompt: str
    body: dict[str, Any]


@dataclass(frozen=True)
class ItemScore:
    question_id: uuid.UUID
    score: float | None  # None: pending (coding without a counted submission)
    max_score: float


@dataclass(frozen=True)
class GradeOutcome:
    session_id: uuid.UUID
    exam_id: uuid.UUID
    score: float
    max_score: float
    pending_count: int
    grading_version: int
    released: bool

    def as_result(self) -> dict[str, Any]:
        return {
            "session_id": str(self.session_id),
            "score": self.score,
            "max_score": self.max_score,
            "pending_count": self.pending_count,
            "grading_version": self.grading_version,
        }


def concrete_body(
    question: QuestionRow, entry: Mapping[str, Any], session_seed: int
) -> dict[str, Any]:
    """The body the student actually answered (a parametric question's variant)."""
    if not question.body.get("parameters"):
        # The common case, once per response of a closing exam: no seed to format.
        return question.body
    return kinds.concrete_body(
        question.kind,
        question.body,
        entry.get("variant"),
        variant_seed(session_seed, question.id),
    )


def _round(value: float) -> float:
    # Scores are sums of fractions of points; keep them free of float dust.
    return round(value, 6)


def score_items(
    paper: Sequence[Mapping[str, Any]],
    questions: Mapping[uuid.UUID, QuestionRow],
    answers: Mapping[uuid.UUID, Any],
    coding_scores: Mapping[uuid.UUID, float],
    session_seed: int,
) -> list[ItemScore]:
    """Score every paper entry; ``coding_scores`` maps a coding question to its fraction."""
    scores: list[ItemScore] = []
    for entry in paper:
        qid = uuid.UUID(str(entry["question_id"]))
        points = float(entry.get("points") or 0.0)
        question = questions.get(qid)
        if question is None:
            scores.append(ItemScore(qid, 0.0, points))
            continue
        if not kinds.KINDS[question.kind].scored_from_answer:
            fraction = coding_scores.get(qid)
            scores.append(
                ItemScore(qid, None if fraction is None else _round(fraction * points), points)
            )
            continue
        body = concrete_body(question, entry, session_seed)
        fraction = kinds.score_fraction(question.kind, body, answers.get(qid))
        scores.append(ItemScore(qid, _round(fraction * points), points))
    return scores


async def load_questions(
    db: AsyncSession, ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, QuestionRow]:
    rows = (
        await db.execute(
            select(Question.id, Question.kind, Question.prompt, Question.body).where(
                Question.id.in_(list(ids))
            )
        )
    ).all()
    return {r.id: QuestionRow(r.id, r.kind, r.prompt, r.body) for r in rows}


async def coding_fractions(
    db: AsyncSession,
    session_id: uuid.UUID,
    deadline_at: datetime,
    questions: Mapping[uuid.UUID, QuestionRow],
) -> dict[uuid.UUID, float]:
    """The fraction earned per coding question from the submission that counts."""
    coding = [q for q in questions.values() if q.kind == "coding"]
    if not coding:
        return {}
    rows = (
        await db.execute(
            text(
                """
                SELECT question_id, score, max_score, created_at FROM coding_submissions
                 WHERE session_id = :sid AND kind = 'submit' AND status = 'done'
                   AND created_at <= :deadline AND question_id = ANY(:qids)
                 ORDER BY created_at, id
                """
            ),
            {"sid": session_id, "deadline": deadline_at, "qids": [q.id for q in coding]},
        )
    ).all()
    best_mode = {q.id for q in coding if q.body.get("scoring") == "best"}
    fractions: dict[uuid.UUID, float] = {}
    for row in rows:
        maximum = float(row.max_score or 0.0)
        fraction = min(1.0, max(0.0, float(row.score or 0.0) / maximum)) if maximum > 0 else 0.0
        if row.question_id in best_mode:
            fractions[row.question_id] = max(fraction, fractions.get(row.question_id, 0.0))
        else:
            fractions[row.question_id] = fraction  # ordered by time: the last one wins
    return fractions


async def grade_session(db: AsyncSession, session_id: uuid.UUID) -> GradeOutcome:
    """Score every response of a finished session and write the result; caller commits.

    Idempotent: a second run writes the same rows (overrides are kept). The
    session row is locked first, so a concurrent override or grading of the
    same session waits instead of interleaving.
    """
    return (await grade_sessions(db, [session_id]))[0]


async def grade_sessions(db: AsyncSession, session_ids: Sequence[uuid.UUID]) -> list[GradeOutcome]:
    """Grade several finished sessions with a handful of set-based statements; caller commits.

    The same rules as one at a time (this *is* the one-at-a-time path with a
    list of one); a batch shares its question lookups and writes every score
    and total in one statement each, which is what lets a closing exam of
    thousands of sessions grade in seconds.
    """
    rows = (
        (
            await db.execute(
                select(ExamSession)
                .where(ExamSession.id.in_(list(session_ids)))
                .order_by(ExamSession.id)
                .with_for_update()
            )
        )
        .scalars()
        .all()
    )
    by_id = {s.id: s for s in rows}
    for sid in session_ids:
        found = by_id.get(sid)
        if found is None:
            raise SessionNotGradable(f"session {sid} does not exist")
        if found.status not in GRADABLE_STATUSES:
            raise SessionNotGradable(f"session {sid} is {found.status}, not finished")
    exams: dict[uuid.UUID, Exam] = {}
    for session in rows:
        if session.exam_id not in exams:
            exam = await db.get(Exam, session.exam_id)
            assert exam is not None
            exams[session.exam_id] = exam
    all_qids = {uuid.UUID(str(e["question_id"])) for s in rows for e in s.paper or []}
    questions = await load_questions(db, all_qids)
    answers: dict[uuid.UUID, dict[uuid.UUID, Any]] = {s.id: {} for s in rows}
    for sid, qid, answer in (
        await db.execute(
            select(Response.session_id, Response.question_id, Response.answer).where(
                Response.session_id.in_(list(by_id))
            )
        )
    ).all():
        answers[sid][qid] = answer
    now = utcnow()
    item_sids: list[uuid.UUID] = []
    item_qids: list[uuid.UUID] = []
    item_scores: list[float | None] = []
    item_maxes: list[float] = []
    item_versions: list[int] = []
    for session in rows:
        coding = await coding_fractions(db, session.id, session.deadline_at, questions)
        version = exams[session.exam_id].grading_version
        for item in score_items(
            session.paper or [], questions, answers[session.id], coding, session.seed
        ):
            item_sids.append(session.id)
            item_qids.append(item.question_id)
            item_scores.append(item.score)
            item_maxes.append(item.max_score)
            item_versions.append(version)
    if item_sids:
        await db.execute(
            text(
                """
                INSERT INTO responses (id, session_id, question_id, answer, client_seq, saved_at,
                                       score, max_score, graded_version)
                SELECT gen_random_uuid(), v.sid, v.qid, NULL, 0, :saved_at, v.score, v.max_score,
                       v.version
                  FROM unnest(CAST(:sids AS uuid[]), CAST(:qids AS uuid[]),
                              CAST(:scores AS float8[]), CAST(:maxes AS float8[]),
                              CAST(:versions AS int[])) AS v(sid, qid, score, max_score, version)
                ON CONFLICT (session_id, question_id) DO UPDATE
                   SET score = excluded.score, max_score = excluded.max_score,
                       graded_version = excluded.graded_version
                """
            ),
            {
                "saved_at": now,
                "sids": item_sids,
                "qids": item_qids,
                "scores": item_scores,
                "maxes": item_maxes,
                "versions": item_versions,
            },
        )
    await db.execute(
        update(ExamSession)
        .where(ExamSession.id.in_(list(by_id)))
        .values(status="graded", graded_at=now)
        .execution_options(synchronize_session=False)
    )
    for session in rows:
        # Already written above; keep the loaded objects in step without a second UPDATE.
        set_committed_value(session, "status", "graded")
        set_committed_value(session, "graded_at", now)
    outcomes = await _write_results(db, rows, exams, item_sids, item_qids, graded_at=now)
    order = {sid: i for i, sid in enumerate(session_ids)}
    outcomes.sort(key=lambda o: order[o.session_id])
    log.info("sessions_graded", count=len(outcomes))
    return outcomes


async def _write_results(
    db: AsyncSession,
    sessions: Sequence[ExamSession],
    exams: Mapping[uuid.UUID, Exam],
    item_sids: Sequence[uuid.UUID],
    item_qids: Sequence[uuid.UUID],
    *,
    graded_at: datetime,
) -> list[GradeOutcome]:
    """Upsert the ``results`` rows of ``sessions`` from their papers' responses at once."""
    sids = [s.id for s in sessions]
    maxes = [_round(sum(float(e.get("points") or 0.0) for e in s.paper or [])) for s in sessions]
    versions = [exams[s.exam_id].grading_version for s in sessions]
    release = [exams[s.exam_id].release_policy == "immediate" for s in sessions]
    rows = (
        await db.execute(
            text(
                """
                INSERT INTO results (session_id, score, max_score, pending_count,
                                     grading_version, graded_at, released_at)
                SELECT m.sid,
                       round(CAST(coalesce(sum(coalesce(r.override_score, r.score)), 0)
                                  AS numeric), 6),
                       m.max_score,
                       count(r.id) FILTER (WHERE r.override_score IS NULL AND r.score IS NULL),
                       m.version, :graded_at,
                       CASE WHEN m.release THEN CAST(:graded_at AS timestamptz) END
                  FROM unnest(CAST(:sids AS uuid[]), CAST(:maxes AS float8[]),
                              CAST(:versions AS int[]), CAST(:release AS bool[]))
                       AS m(sid, max_score, version, release)
                  LEFT JOIN (unnest(CAST(:item_sids AS uuid[]), CAST(:item_qids AS uuid[]))
                             AS p(sid, qid)
                             JOIN responses r ON r.session_id = p.sid AND r.question_id = p.qid)
                    ON p.sid = m.sid
                 GROUP BY m.sid, m.max_score, m.version, m.release
                ON CONFLICT (session_id) DO UPDATE
                   SET score = excluded.score, max_score = excluded.max_score,
                       pending_count = excluded.pending_count,
                       grading_version = excluded.grading_version,
                       graded_at = excluded.graded_at,
                       released_at = coalesce(results.released_at, excluded.released_at)
                RETURNING session_id, score, max_score, pending_count, grading_version,
                          released_at
                """
            ),
            {
                "sids": sids,
                "maxes": maxes,
                "versions": versions,
                "release": release,
                "item_sids": list(item_sids),
                "item_qids": list(item_qids),
                "graded_at": graded_at,
            },
        )
    ).all()
    exam_of = {s.id: s.exam_id for s in sessions}
    return [
        GradeOutcome(
            session_id=r.session_id,
            exam_id=exam_of[r.session_id],
            score=float(r.score),
            max_score=float(r.max_score),
            pending_count=int(r.pending_count),
            grading_version=int(r.grading_version),
            released=r.released_at is not None,
        )
        for r in rows
    ]


async def recompute_result(
    db: AsyncSession,
    session: ExamSession,
    exam: Exam,
    *,
    graded_at: datetime | None = None,
) -> GradeOutcome:
    """Recompute the session's total from its responses (overrides win) and upsert ``results``."""
    paper_qids = [str(e["question_id"]) for e in session.paper or []]
    row = (
        await db.execute(
            text(
                """
                SELECT coalesce(sum(coalesce(override_score, score)), 0) AS score,
                       coalesce(sum(max_score), 0) AS max_score,
                       count(*) FILTER (WHERE override_score IS NULL AND score IS NULL)
                           AS pending
                  FROM responses
                 WHERE session_id = :sid AND question_id = ANY(CAST(:qids AS uuid[]))
                """
            ),
            {"sid": session.id, "qids": paper_qids},
        )
    ).one()
    max_score = sum(float(e.get("points") or 0.0) for e in session.paper or [])
    release = exam.release_policy == "immediate"
    graded_at = graded_at or utcnow()
    released_at = (
        await db.execute(
            text(
                """
                INSERT INTO results (session_id, score, max_score, pending_count,
                                     grading_version, graded_at, released_at)
                VALUES (:sid, :score, :max_score, :pending, :version, :graded_at,
                        CASE WHEN :release THEN CAST(:graded_at AS timestamptz) END)
                ON CONFLICT (session_id) DO UPDATE
                   SET score = excluded.score, max_score = excluded.max_score,
                       pending_count = excluded.pending_count,
                       grading_version = excluded.grading_version,
                       graded_at = excluded.graded_at,
                       released_at = coalesce(results.released_at, excluded.released_at)
                RETURNING released_at
                """
            ),
            {
                "sid": session.id,
                "score": _round(float(row.score)),
                "max_score": _round(max_score),
                "pending": int(row.pending),
                "version": exam.grading_version,
                "graded_at": graded_at,
                "release": release,
            },
        )
    ).scalar_one()
    return GradeOutcome(
        session_id=session.id,
        exam_id=exam.id,
        score=_round(float(row.score)),
        max_score=_round(max_score),
        pending_count=int(row.pending),
        grading_version=exam.grading_version,
        released=released_at is not None,
    )


@dataclass(frozen=True)
class OverrideOutcome:
    response: Response
    result: GradeOutcome


async def override_response(
    db: AsyncSession,
    response_id: uuid.UUID,
    principal: Principal,
    *,
    score: float | None,
    comment: str | None,
    reason: str | None,
) -> OverrideOutcome:
    """Set (or with ``score=None`` clear) the educator's score for one response; commits.

    Only the exam's owner (or an admin) may; the score must lie in
    ``[0, max]`` where max is what the question is worth on the student's paper.
    Every change says why (``reason``), and is audited in the same transaction.
    """
    reason = (reason or "").strip()
    found = (
        await db.execute(
            select(Response, ExamSession.exam_id)
            .join(ExamSession, ExamSession.id == Response.session_id)
            .where(Response.id == response_id)
        )
    ).one_or_none()
    if found is None:
        raise NotFound("response not found")
    exam = await db.get(Exam, found.exam_id)
    assert exam is not None
    ensure_owner(exam.owner_id, principal, "response", organization_id=exam.organization_id)
    session = (
        await db.execute(
            select(ExamSession).where(ExamSession.id == found.Response.session_id).with_for_update()
        )
    ).scalar_one()
    if session.status != "graded":
        raise Conflict(
            "The session is not graded yet; override once its grading finished",
            code="session_not_graded",
        )
    response = await db.get(Response, response_id, with_for_update=True, populate_existing=True)
    assert response is not None
    points = next(
        (
            float(e.get("points") or 0.0)
            for e in session.paper or []
            if str(e["question_id"]) == str(response.question_id)
        ),
        response.max_score or 0.0,
    )
    if score is not None and not (0 <= score <= points):
        raise Unprocessable(f"score must be between 0 and {points:g}", field="score")
    if not reason:
        raise Unprocessable("Say why the score changes", field="reason")
    before = response.override_score if response.override_score is not None else response.score
    record_audit(
        db,
        actor_id=principal.id,
        action="response.override" if score is not None else "response.override_cleared",
        subject_type="response",
        subject_id=response.id,
        exam_id=exam.id,
        reason=reason,
        details={
            "session_id": str(session.id),
            "question_id": str(response.question_id),
            "from": before,
            "to": score if score is not None else response.score,
            "comment": comment,
        },
    )
    response.override_score = score
    response.override_comment = comment if score is not None else None
    response.override_by = principal.id if score is not None else None
    response.override_at = utcnow() if score is not None else None
    if response.max_score is None:
        response.max_score = points
    await db.flush()
    result = await recompute_result(db, session, exam)
    await db.commit()
    log.info(
        "response_overridden",
        response_id=str(response_id),
        session_id=str(session.id),
        score=score,
    )
    return OverrideOutcome(response=response, result=result)
