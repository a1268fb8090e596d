"""The ``similarity`` job: compare a coding question's final programs across an exam's cohort.

One job per coding question of an exam, queued when the exam has closed and
its last session has ended (the maintenance sweep) or when its owner asks.
The job reads each finished session's final program (its last submission
for the question, else its last saved answer), compares them per language
with :mod:`safexam.integrity.similarity`, the question's starter code and
template removed, and stores the pairs at or above the exam's threshold and
the clusters they form. A rerun updates scores and keeps the educator's
decisions; nothing here touches a score.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict
from dataclasses import replace
from datetime import datetime
from typing import Any

import structlog
from sqlalchemy import delete, exists, select
from sqlalchemy.dialects.postgresql import distinct_on, insert
from sqlalchemy.ext.asyncio import AsyncSession

from safexam.auth.guards import Principal, ensure_owner
from safexam.coding.compare import SOURCE_PLACEHOLDER
from safexam.coding.models import CodingSubmission
from safexam.core.audit import record_audit
from safexam.core.errors import Conflict, NotFound
from safexam.exams.models import Exam, Question
from safexam.integrity.models import SimilarityCluster, SimilarityPair
from safexam.integrity.similarity import (
    DEFAULT_SETTINGS,
    SUPPORTED_LANGUAGES,
    SimilaritySettings,
    Submission,
    compare_cohort,
)
from safexam.jobs import enqueue
from safexam.jobs.kinds import SIMILARITY
from safexam.jobs.models import Job
from safexam.sessions.models import FINISHED_STATUSES, ExamSession, Response

__all__ = [
    "coding_questions_of",
    "enqueue_similarity",
    "run_similarity",
    "similarity_settings_of",
    "sweep_closed_exams",
]

log = structlog.get_logger(__name__)

SWEEP_BATCH = 50


def similarity_settings_of(integrity: dict[str, Any] | None) -> SimilaritySettings:
    """The engine's settings with the exam's own threshold (``integrity.review``)."""
    review = (integrity or {}).get("review")
    value = review.get("similarity_threshold") if isinstance(review, dict) else None
    if isinstance(value, int | float) and 0 < float(value) <= 1:
        return replace(DEFAULT_SETTINGS, threshold=float(value))
    return DEFAULT_SETTINGS


async def coding_questions_of(db: AsyncSession, exam_id: uuid.UUID) -> list[uuid.UUID]:
    """Coding questions answered in the exam's sessions (drawn questions included)."""
    rows = await db.execute(
        select(Question.id)
        .where(
            Question.kind == "coding",
            exists().where(
                Response.question_id == Question.id,
                Response.session_id == ExamSession.id,
                ExamSession.exam_id == exam_id,
            ),
        )
        .order_by(Question.id)
    )
    return list(rows.scalars())


async def enqueue_similarity(
    db: AsyncSession, exam_id: uuid.UUID, *, requested_by: uuid.UUID | None
) -> list[Job]:
    """Queue one ``similarity`` job per coding question of the exam (the caller commits)."""
    jobs = []
    for question_id in await coding_questions_of(db, exam_id):
        jobs.append(
            await enqueue(
                db,
                SIMILARITY,
                args={"exam_id": str(exam_id), "question_id": str(question_id)},
                exam_id=exam_id,
                requested_by=requested_by,
            )
        )
    return jobs


async def request_similarity(
    db: AsyncSession, exam_id: uuid.UUID, principal: Principal
) -> list[Job]:
    """The owner's "compare now": queue the jobs, audited; commit."""
    exam = await db.get(Exam, exam_id)
    if exam is None:
        raise NotFound("exam not found")
    ensure_owner(exam.owner_id, principal, "exam", organization_id=exam.organization_id)
    active = await db.scalar(
        select(Job.id)
        .where(
            Job.exam_id == exam_id,
            Job.kind == SIMILARITY.name,
            Job.status.in_(("pending", "queued", "running")),
        )
        .limit(1)
    )
    if active is not None:
        raise Conflict(
            "A similarity check of this exam is already running; wait for it to finish",
            code="similarity_in_progress",
        )
    jobs = await enqueue_similarity(db, exam_id, requested_by=principal.id)
    record_audit(
        db,
        actor_id=principal.id,
        action="exam.similarity",
        subject_type="exam",
        subject_id=exam_id,
        exam_id=exam_id,
        details={"jobs": len(jobs)},
    )
    await db.commit()
    return jobs


async def sweep_closed_exams(db: AsyncSession, now: datetime) -> int:
    """Queue the similarity jobs of exams closed with no session left running; commit; how many.

    An exam is picked once: any similarity job of it, finished or not, means
    it has been compared (an owner reruns it from the review page).
    """
    no_job = ~exists().where(Job.exam_id == Exam.id, Job.kind == SIMILARITY.name)
    no_active = ~exists().where(ExamSession.exam_id == Exam.id, ExamSession.status == "active")
    has_sessions = exists().where(ExamSession.exam_id == Exam.id)
    exams = list(
        (
            await db.execute(
                select(Exam.id)
                .where(
                    Exam.status != "draft",
                    Exam.closes_at <= now,
                    no_job,
                    no_active,
                    has_sessions,
                )
                .order_by(Exam.closes_at)
                .limit(SWEEP_BATCH)
                .with_for_update(skip_locked=True)
            )
        ).scalars()
    )
    queued = 0
    for exam_id in exams:
        queued += len(await enqueue_similarity(db, exam_id, requested_by=None))
    await db.commit()
    if queued:
        log.info("similarity_queued", exams=len(exams), jobs=queued)
    return queued


def _template_texts(body: dict[str, Any], language: str) -> list[str]:
    texts = []
    starter = (body.get("starter_code") or {}).get(language)
    if isinstance(starter, str):
        texts.append(starter)
    template = (body.get("template") or {}).get(language)
    if isinstance(template, str):
        texts.append(SOURCE_PLACEHOLDER.sub("\n", template))
    return texts


async def _final_programs(
    db: AsyncSession, exam_id: uuid.UUID, question_id: uuid.UUID
) -> dict[uuid.UUID, tuple[str, str]]:
    """Session -> (language, source): the last submission, else the last saved answer."""
    programs: dict[uuid.UUID, tuple[str, str]] = {}
    answers = await db.execute(
        select(Response.session_id, Response.answer)
        .join(ExamSession, ExamSession.id == Response.session_id)
        .where(
            ExamSession.exam_id == exam_id,
            ExamSession.status.in_(FINISHED_STATUSES),
            Response.question_id == question_id,
        )
    )
    for session_id, answer in answers:
        if isinstance(answer, dict):
            lang, source = answer.get("language"), answer.get("source")
            if isinstance(lang, str) and isinstance(source, str) and source.strip():
                programs[session_id] = (lang, source)
    submitted = await db.execute(
        select(CodingSubmission.session_id, CodingSubmission.language, CodingSubmission.source)
        .join(ExamSession, ExamSession.id == CodingSubmission.session_id)
        .where(
            ExamSession.exam_id == exam_id,
            ExamSession.status.in_(FINISHED_STATUSES),
            CodingSubmission.question_id == question_id,
            CodingSubmission.kind == "submit",
        )
        .order_by(CodingSubmission.session_id, CodingSubmission.created_at.desc())
        .ext(distinct_on(CodingSubmission.session_id))
    )
    for session_id, lang, source in submitted:
        programs[session_id] = (lang, source)
    return programs


async def run_similarity(
    db: AsyncSession, exam_id: uuid.UUID, question_id: uuid.UUID
) -> dict[str, Any]:
    """Compare the question's final programs and store pairs and clusters (the caller commits)."""
    exam = await db.get(Exam, exam_id)
    question = await db.get(Question, question_id)
    if exam is None or question is None:
        raise NotFound("exam or question not found")
    settings = similarity_settings_of(exam.integrity)
    programs = await _final_programs(db, exam_id, question_id)
    by_language: dict[str, list[Submission]] = defaultdict(list)
    for session_id, (lang, source) in programs.items():
        if lang in SUPPORTED_LANGUAGES:
            by_language[lang].append(Submission(str(session_id), source))

    kept: set[tuple[uuid.UUID, uuid.UUID]] = set()
    await db.execute(
        delete(SimilarityCluster).where(
            SimilarityCluster.exam_id == exam_id, SimilarityCluster.question_id == question_id
        )
    )
    summary: dict[str, Any] = {"question_id": str(question_id), "languages": {}}
    for lang, subs in sorted(by_language.items()):
        # The comparison is pure CPU; a thread keeps the worker's heartbeat beating.
        report = await asyncio.to_thread(
            compare_cohort,
            subs,
            lang,
            templates=_template_texts(question.body, lang),
            settings=settings,
        )
        for pair in report.pairs:
            a, b = uuid.UUID(pair.a), uuid.UUID(pair.b)
            if b < a:
                a, b = b, a
                regions = [
                    {
                        "a_first": r.b_first,
                        "a_last": r.b_last,
                        "b_first": r.a_first,
                        "b_last": r.a_last,
                        "tokens": r.tokens,
                    }
                    for r in pair.regions
                ]
                cov_a, cov_b = pair.b_coverage, pair.a_coverage
            else:
                regions = [
                    {
                        "a_first": r.a_first,
                        "a_last": r.a_last,
                        "b_first": r.b_first,
                        "b_last": r.b_last,
                        "tokens": r.tokens,
                    }
                    for r in pair.regions
                ]
                cov_a, cov_b = pair.a_coverage, pair.b_coverage
            kept.add((a, b))
            values = {
                "score": pair.score,
                "a_coverage": cov_a,
                "b_coverage": cov_b,
                "regions": regions,
                "a_source": programs[a][1],
                "b_source": programs[b][1],
                "language": lang,
            }
            stmt = insert(SimilarityPair).values(
                id=uuid.uuid4(),
                exam_id=exam_id,
                question_id=question_id,
                session_a_id=a,
                session_b_id=b,
                **values,
            )
            await db.execute(
                stmt.on_conflict_do_update(
                    constraint="uq_similarity_pair",
                    set_={**values, "computed_at": stmt.excluded.computed_at},
                )
            )
        for cluster in report.clusters:
            members = [uuid.UUID(key) for key in cluster]
            member_set = set(cluster)
            top = max(
                (p.score for p in report.pairs if p.a in member_set and p.b in member_set),
                default=0.0,
            )
            db.add(
                SimilarityCluster(
                    exam_id=exam_id,
                    question_id=question_id,
                    language=lang,
                    session_ids=sorted(members),
                    top_score=top,
                )
            )
        summary["languages"][lang] = {
            "programs": len(subs),
            "pairs": len(report.pairs),
            "clusters": len(report.clusters),
            "skipped": len(report.skipped),
        }
    # Pairs no longer similar go, unless an educator has already judged them.
    stale = await db.execute(
        select(SimilarityPair.id, SimilarityPair.session_a_id, SimilarityPair.session_b_id).where(
            SimilarityPair.exam_id == exam_id,
            SimilarityPair.question_id == question_id,
            SimilarityPair.decision == "open",
        )
    )
    gone = [pid for pid, a, b in stale if (a, b) not in kept]
    if gone:
        await db.execute(delete(SimilarityPair).where(SimilarityPair.id.in_(gone)))
    log.info("similarity_compared", exam_id=str(exam_id), **summary)
    return summary
