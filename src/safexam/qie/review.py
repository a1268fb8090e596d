"""The educator's side of a generation job: its drafts, and approving or rejecting each.

A job belongs to the educator who asked for it (``args.owner_id``) and a draft
to its job's owner (the question's ``owner_id``, which the worker set to the
same person); anyone else gets a 404, admins see everything.

Approving makes the draft an ``active`` question of the bank; rejecting
archives it rather than deleting it: an archived question is hidden from the
bank's lists and never drawn into an exam, yet the record of what the generator
offered and the educator refused stays. Later runs treat it as a duplicate, so
the same question is not offered again; an acceptance rate can be measured from
it; and a mistaken rejection can be undone from the bank (``status=archived``).
Both decisions are written into the provenance (who, when) beside what the
generator recorded, which is kept as it was.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any, Literal

import structlog
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from safexam.auth.guards import Principal, ensure_owner
from safexam.auth.models import User
from safexam.core.db import utcnow
from safexam.core.errors import Conflict, NotFound
from safexam.exams.models import Question
from safexam.jobs.kinds import GENERATE_QUESTIONS
from safexam.jobs.models import Job
from safexam.qie.schemas import GenerationJobView, JobRequestSummary

__all__ = [
    "RECENT_JOBS",
    "Decision",
    "draft_job_id",
    "generation_job_view",
    "job_drafts",
    "owned_generation_job",
    "recent_generation_jobs",
    "review_draft",
]

log = structlog.get_logger(__name__)

Decision = Literal["approve", "reject"]
RECENT_JOBS = 20
_NEW_STATUS: dict[Decision, Literal["active", "archived"]] = {
    "approve": "active",
    "reject": "archived",
}


def _owner_of(job: Job) -> uuid.UUID | None:
    raw = job.args.get("owner_id")
    try:
        return uuid.UUID(str(raw)) if raw is not None else job.requested_by
    except ValueError:
        return None


async def owned_generation_job(db: AsyncSession, job_id: uuid.UUID, principal: Principal) -> Job:
    """The generation job if the principal asked for it (or is an admin); else 404."""
    job = await db.get(Job, job_id, populate_existing=True)
    if job is None or job.kind != GENERATE_QUESTIONS.name:
        raise NotFound("generation job not found")
    owner = _owner_of(job)
    organization_id = (
        await db.scalar(select(User.organization_id).where(User.id == owner))
        if owner is not None
        else None
    )
    ensure_owner(owner, principal, "generation job", organization_id=organization_id)
    return job


def generation_job_view(job: Job) -> GenerationJobView:
    request: dict[str, Any] = job.args.get("request") or {}
    result = job.result or {}
    return GenerationJobView(
        id=job.id,
        status=job.status,
        progress_done=job.progress_done,
        progress_total=job.progress_total,
        error=job.error,
        created=int(result.get("created", 0)),
        request=JobRequestSummary(
            topic=request.get("topic"),
            has_source_text=bool(request.get("source_text")),
            count=int(request.get("count", 0)),
            kinds=[str(k) for k in request.get("kinds", [])],
            tags=[str(t) for t in request.get("tags", [])],
        ),
        created_at=job.created_at,
        finished_at=job.finished_at,
    )


async def recent_generation_jobs(db: AsyncSession, principal: Principal) -> Sequence[Job]:
    """The principal's own most recent generation jobs, newest first."""
    rows = await db.scalars(
        select(Job)
        .where(Job.kind == GENERATE_QUESTIONS.name, Job.requested_by == principal.id)
        .order_by(Job.created_at.desc(), Job.id)
        .limit(RECENT_JOBS)
    )
    return rows.all()


async def job_drafts(db: AsyncSession, job: Job) -> Sequence[Question]:
    """Every question the job made, whatever became of it since, in the order made.

    They are found by the provenance the worker wrote (``job_id``), within the
    job owner's bank; nothing exists before the job succeeds, because the
    worker commits the drafts with the job's status.
    """
    owner = _owner_of(job)
    rows = await db.scalars(
        select(Question)
        .where(
            Question.owner_id == owner,
            Question.source == "qie",
            Question.provenance["job_id"].astext == str(job.id),
        )
        .order_by(Question.created_at, Question.id)
    )
    drafts = rows.all()
    # One transaction made them all (one created_at): the job's result keeps their order.
    made = {qid: n for n, qid in enumerate((job.result or {}).get("question_ids", []))}
    return sorted(drafts, key=lambda q: made.get(str(q.id), len(made)))


async def review_draft(
    db: AsyncSession, question_id: uuid.UUID, principal: Principal, decision: Decision
) -> Question:
    """Approve (-> ``active``) or reject (-> ``archived``) a generated draft; commits.

    404 unless it is a generated question of the principal's (or an admin);
    409 if it was already decided (it is no longer a draft).
    """
    question = (
        await db.execute(select(Question).where(Question.id == question_id).with_for_update())
    ).scalar_one_or_none()
    if question is None or question.source != "qie":
        raise NotFound("draft not found")
    ensure_owner(question.owner_id, principal, "draft", organization_id=question.organization_id)
    if question.status != "draft":
        decided = "approved" if question.status == "active" else "rejected"
        raise Conflict(
            f"this draft was already {decided}",
            code="draft_already_reviewed",
            details={"status": question.status},
        )
    now = utcnow()
    question.status = _NEW_STATUS[decision]
    # A new dict: the JSONB column is not tracked for in-place changes.
    question.provenance = {
        **(question.provenance or {}),
        "review": {
            "decision": "approved" if decision == "approve" else "rejected",
            "by": str(principal.id),
            "at": now.isoformat(),
        },
    }
    question.updated_at = now
    await db.commit()
    await db.refresh(question)
    log.info("qie_draft_reviewed", question_id=str(question.id), decision=decision)
    return question


def draft_job_id(question: Question) -> uuid.UUID | None:
    """The job that made a generated question, from its provenance."""
    raw = (question.provenance or {}).get("job_id")
    try:
        return uuid.UUID(str(raw)) if raw else None
    except ValueError:
        return None
