"""Bulk regrade of an exam after an answer key change, with a dry run and a safe apply.

A regrade rescans the responses of the exam's graded sessions in chunks of
sessions, scores them with the same rules as ``grade_session`` (one
implementation, so a regrade can never disagree with grading), writes only
the responses whose score changed with one set-based ``UPDATE ... FROM
unnest(...)`` per chunk, and recomputes the affected totals in one statement.
Coding questions are left alone: their scores come from submissions.

Everything is written in the job's single transaction, so the regrade is
applied as a unit or not at all; progress is committed on a separate
connection so it is visible while the work runs.

A dry run computes the same diff without writing and records a checksum of
everything the diff depends on (the responses' scores and overrides, the
question bodies, the exam's grading version). ``apply`` starts a real regrade
carrying that checksum; it refuses (409 before starting, or a failed job if a
change slips in between) when anything changed, because then the applied
scores would no longer be the ones the educator reviewed.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import structlog
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from safexam.auth.guards import Principal
from safexam.core.audit import record_audit
from safexam.core.errors import Conflict, NotFound, Unprocessable
from safexam.exams.models import Exam
from safexam.exams.service import get_owned_exam
from safexam.grading.scoring import score_fraction
from safexam.grading.service import concrete_body, load_questions
from safexam.jobs.kinds import REGRADE
from safexam.jobs.models import Job
from safexam.jobs.service import Claim, enqueue, set_progress

__all__ = [
    "RegradeStale",
    "apply_dry_run",
    "regrade_checksum",
    "request_regrade",
    "run_regrade",
]

log = structlog.get_logger(__name__)

#: Responses per chunk (rounded to whole sessions).
CHUNK_RESPONSES = 10_000

Progress = Callable[[int, int], Awaitable[None]]


class RegradeStale(Exception):
    """Scores or keys changed since the dry run this regrade was meant to apply."""


async def _scope_question_ids(
    db: AsyncSession, exam_id: uuid.UUID, wanted: Sequence[uuid.UUID] | None
) -> list[uuid.UUID]:
    """Non-coding questions on the graded papers of the exam (optionally a subset)."""
    rows = (
        await db.execute(
            text(
                """
                SELECT DISTINCT q.id FROM exam_sessions s
                  CROSS JOIN LATERAL jsonb_array_elements(s.paper) AS e
                  JOIN questions q ON q.id = CAST(e->>'question_id' AS uuid)
                 WHERE s.exam_id = :eid AND s.status = 'graded' AND q.kind <> 'coding'
                """
            ),
            {"eid": exam_id},
        )
    ).scalars()
    ids = sorted(rows, key=str)
    if wanted is not None:
        allowed = set(wanted)
        ids = [q for q in ids if q in allowed]
    return ids


async def regrade_checksum(
    db: AsyncSession, exam_id: uuid.UUID, question_ids: Sequence[uuid.UUID]
) -> str:
    """A fingerprint of everything a regrade's outcome depends on."""
    row = (
        await db.execute(
            text(
                """
                SELECT
                  (SELECT md5(coalesce(string_agg(
                        r.id::text || ':' || coalesce(r.score::text, '-') || ':'
                        || coalesce(r.override_score::text, '-'), ',' ORDER BY r.id), ''))
                     FROM responses r JOIN exam_sessions s ON s.id = r.session_id
                    WHERE s.exam_id = :eid AND s.status = 'graded'
                      AND r.question_id = ANY(:qids)) AS responses,
                  (SELECT md5(coalesce(string_agg(q.id::text || ':' || q.body::text, ','
                                                  ORDER BY q.id), ''))
                     FROM questions q WHERE q.id = ANY(:qids)) AS questions,
                  (SELECT grading_version FROM exams WHERE id = :eid) AS version
                """
            ),
            {"eid": exam_id, "qids": list(question_ids)},
        )
    ).one()
    return f"{row.version}:{row.questions}:{row.responses}"


def _parse_ids(raw: Any) -> list[uuid.UUID] | None:
    if raw is None:
        return None
    return [uuid.UUID(str(v)) for v in raw]


async def run_regrade(
    db: AsyncSession,
    claim: Claim,
    maker: async_sessionmaker[AsyncSession],
    *,
    on_progress: Progress | None = None,
) -> dict[str, Any]:
    """Do the regrade described by the job ``claim``; the caller commits with the job status."""
    args = claim.args
    exam_id = uuid.UUID(str(args["exam_id"]))
    dry_run = bool(args.get("dry_run"))
    # The exam row lock serializes this regrade against any other regrade or
    # apply of the same exam (the unique index already refuses a second job).
    exam = (
        await db.execute(select(Exam).where(Exam.id == exam_id).with_for_update())
    ).scalar_one_or_none()
    if exam is None:
        raise RegradeStale(f"exam {exam_id} no longer exists")
    question_ids = await _scope_question_ids(db, exam_id, _parse_ids(args.get("question_ids")))
    checksum = await regrade_checksum(db, exam_id, question_ids)
    expected = args.get("expected_checksum")
    if expected is not None and expected != checksum:
        raise RegradeStale("scores or answer keys changed since the dry run; run a new dry run")
    new_version = exam.grading_version + 1
    questions = await load_questions(db, question_ids)
    sessions = (
        await db.execute(
            text(
                """
                SELECT s.id, s.seed, s.paper, s.user_id, u.email, u.name,
                       coalesce(res.score, 0) AS total
                  FROM exam_sessions s
                  JOIN users u ON u.id = s.user_id
                  LEFT JOIN results res ON res.session_id = s.id
                 WHERE s.exam_id = :eid AND s.status = 'graded'
                 ORDER BY s.id
                """
            ),
            {"eid": exam_id},
        )
    ).all()
    total = (
        await db.execute(
            text(
                "SELECT count(*) FROM responses r JOIN exam_sessions s ON s.id = r.session_id"
                " WHERE s.exam_id = :eid AND s.status = 'graded' AND r.question_id = ANY(:qids)"
            ),
            {"eid": exam_id, "qids": question_ids},
        )
    ).scalar_one()
    per_session = max(1, len(question_ids))
    chunk_sessions = max(1, CHUNK_RESPONSES // per_session)
    done = 0
    failed = 0
    changed_responses = 0
    students: list[dict[str, Any]] = []
    old_sum = 0.0
    new_sum = 0.0
    touched_sessions: list[uuid.UUID] = []
    async with maker() as progress_db:
        await set_progress(progress_db, claim, done=0, total=total)
    for start in range(0, len(sessions), chunk_sessions):
        chunk = sessions[start : start + chunk_sessions]
        entries = {s.id: {str(e["question_id"]): e for e in (s.paper or [])} for s in chunk}
        seeds = {s.id: s.seed for s in chunk}
        rows = (
            await db.execute(
                text(
                    """
                    SELECT id, session_id, question_id, answer, score, override_score
                      FROM responses
                     WHERE session_id = ANY(:sids) AND question_id = ANY(:qids)
                    """
                ),
                {"sids": [s.id for s in chunk], "qids": question_ids},
            )
        ).all()
        # The total a regrade starts from is recomputed from the responses
        # (what an apply will sum up), not trusted from the results row.
        effective: dict[uuid.UUID, float] = dict(
            (
                await db.execute(
                    text(
                        "SELECT session_id, coalesce(sum(coalesce(override_score, score)), 0)"
                        " FROM responses WHERE session_id = ANY(:sids) GROUP BY session_id"
                    ),
                    {"sids": [s.id for s in chunk]},
                )
            ).all()
        )
        ids: list[uuid.UUID] = []
        scores: list[float] = []
        maxes: list[float] = []
        deltas: dict[uuid.UUID, float] = {}
        counts: dict[uuid.UUID, int] = {}
        # Per session, each changed question: the automatic score before and after.
        changes: dict[uuid.UUID, list[dict[str, Any]]] = {}
        for r in rows:
            entry = entries[r.session_id].get(str(r.question_id))
            question = questions.get(r.question_id)
            if entry is None or question is None:
                continue
            points = float(entry.get("points") or 0.0)
            try:
                body = concrete_body(question, entry, seeds[r.session_id])
                new = round(score_fraction(question.kind, body, r.answer) * points, 6)
            except Exception as exc:
                # One response that cannot be scored (a variant whose expression
                # fails) is counted and left as it was, not a reason to drop the rest.
                failed += 1
                log.warning("regrade_response_failed", response_id=str(r.id), error=str(exc))
                continue
            if r.score is not None and abs(new - r.score) < 1e-9:
                continue
            ids.append(r.id)
            scores.append(new)
            maxes.append(points)
            counts[r.session_id] = counts.get(r.session_id, 0) + 1
            changes.setdefault(r.session_id, []).append(
                {
                    "question_id": str(r.question_id),
                    "old": r.score,
                    "new": new,
                    # An override keeps counting: this change shows, the total stays.
                    "overridden": r.override_score is not None,
                }
            )
            if r.override_score is None:
                deltas[r.session_id] = deltas.get(r.session_id, 0.0) + new - (r.score or 0.0)
        changed_responses += len(ids)
        for s in chunk:
            if s.id not in counts:
                continue
            delta = round(deltas.get(s.id, 0.0), 6)
            old_total = round(float(s.total), 6)
            new_total = round(float(effective.get(s.id, 0.0)) + delta, 6)
            delta = round(new_total - old_total, 6)
            old_sum += old_total
            new_sum += new_total
            touched_sessions.append(s.id)
            students.append(
                {
                    "session_id": str(s.id),
                    "user_id": str(s.user_id),
                    "email": s.email,
                    "name": s.name,
                    "old": old_total,
                    "new": new_total,
                    "delta": delta,
                    "changed_responses": counts[s.id],
                    "questions": changes.get(s.id, []),
                }
            )
        if ids and not dry_run:
            await db.execute(
                text(
                    """
                    UPDATE responses r
                       SET score = v.score, max_score = v.max_score, graded_version = :version
                      FROM unnest(CAST(:ids AS uuid[]), CAST(:scores AS float8[]),
                                  CAST(:maxes AS float8[])) AS v(id, score, max_score)
                     WHERE r.id = v.id
                    """
                ),
                {"ids": ids, "scores": scores, "maxes": maxes, "version": new_version},
            )
        done += len(rows)
        async with maker() as progress_db:
            await set_progress(progress_db, claim, done=done, total=total, failed=failed)
        if on_progress is not None:
            await on_progress(done, total)
    if not dry_run:
        if touched_sessions:
            await db.execute(
                text(
                    """
                    UPDATE results res
                       SET score = round(CAST(agg.score AS numeric), 6),
                           pending_count = agg.pending, grading_version = :version,
                           graded_at = now()
                      FROM (SELECT session_id,
                                   coalesce(sum(coalesce(override_score, score)), 0) AS score,
                                   count(*) FILTER (WHERE override_score IS NULL
                                                    AND score IS NULL) AS pending
                              FROM responses WHERE session_id = ANY(:sids)
                             GROUP BY session_id) AS agg
                     WHERE res.session_id = agg.session_id
                    """
                ),
                {"sids": touched_sessions, "version": new_version},
            )
        exam.grading_version = new_version
    log.info(
        "regrade_done",
        dry_run=dry_run,
        responses=total,
        changed=changed_responses,
        students=len(students),
    )
    return {
        "dry_run": dry_run,
        "exam_id": str(exam_id),
        "question_ids": [str(q) for q in question_ids],
        "checksum": checksum,
        "grading_version": new_version if not dry_run else exam.grading_version,
        "students": students,
        "totals": {
            "sessions": len(sessions),
            "responses": total,
            "responses_changed": changed_responses,
            "responses_failed": failed,
            "students_changed": len(students),
            "old": round(old_sum, 6),
            "new": round(new_sum, 6),
            "delta": round(new_sum - old_sum, 6),
        },
        "applies": args.get("apply_of"),
    }


async def request_regrade(
    db: AsyncSession,
    exam_id: uuid.UUID,
    principal: Principal,
    *,
    question_ids: Sequence[uuid.UUID] | None,
    dry_run: bool,
) -> Job:
    """Queue a regrade (or a dry run) of the exam; commits. 409 while another is active."""
    await get_owned_exam(db, exam_id, principal)
    if question_ids is not None:
        on_exam = set(await _scope_question_ids(db, exam_id, None))
        unknown = [str(q) for q in question_ids if q not in on_exam]
        if unknown:
            raise Unprocessable(
                f"not gradable questions of this exam: {', '.join(unknown)}",
                field="question_ids",
            )
    job = await enqueue(
        db,
        REGRADE,
        args={
            "exam_id": str(exam_id),
            "question_ids": [str(q) for q in question_ids] if question_ids is not None else None,
            "dry_run": dry_run,
        },
        exam_id=exam_id,
        requested_by=principal.id,
    )
    await db.commit()
    return job


async def apply_dry_run(db: AsyncSession, job_id: uuid.UUID, principal: Principal) -> Job:
    """Apply a finished dry run as a unit if nothing changed since; commits; the new job."""
    dry = await db.get(Job, job_id, with_for_update=True)
    if dry is None or dry.kind != REGRADE.name or dry.exam_id is None:
        raise NotFound("regrade job not found")
    await get_owned_exam(db, dry.exam_id, principal)
    result = dict(dry.result or {})
    if not dry.args.get("dry_run"):
        raise Conflict("Only a dry run can be applied", code="not_a_dry_run")
    if dry.status != "succeeded":
        raise Conflict(f"The dry run is {dry.status}, not finished", code="dry_run_not_finished")
    if result.get("applied_by"):
        raise Conflict("This dry run was already applied", code="already_applied")
    question_ids = [uuid.UUID(q) for q in result.get("question_ids", [])]
    if await regrade_checksum(db, dry.exam_id, question_ids) != result.get("checksum"):
        raise Conflict(
            "Scores or answer keys changed since this dry run; run a new dry run",
            code="regrade_stale",
        )
    job = await enqueue(
        db,
        REGRADE,
        args={
            "exam_id": str(dry.exam_id),
            "question_ids": [str(q) for q in question_ids],
            "dry_run": False,
            "expected_checksum": result["checksum"],
            "apply_of": str(dry.id),
        },
        exam_id=dry.exam_id,
        requested_by=principal.id,
    )
    result["applied_by"] = str(job.id)
    dry.result = result
    totals = result.get("totals") or {}
    record_audit(
        db,
        actor_id=principal.id,
        action="exam.regrade_apply",
        subject_type="job",
        subject_id=job.id,
        exam_id=dry.exam_id,
        details={
            "dry_run_job_id": str(dry.id),
            "question_ids": [str(q) for q in question_ids],
            "students_changed": totals.get("students_changed"),
            "responses_changed": totals.get("responses_changed"),
            "old": totals.get("old"),
            "new": totals.get("new"),
        },
    )
    await db.commit()
    return job
