"""Question generation over HTTP: ask for drafts, list a job's drafts, approve or reject each.

- ``POST /api/v1/qie/jobs`` -> 202 ``{job_id}``; a worker makes the drafts.
- ``GET /api/v1/qie/jobs``: my recent generation jobs.
- ``GET /api/v1/qie/jobs/{job_id}/drafts``: the job and the questions it made.
- ``POST /api/v1/qie/drafts/{question_id}/approve`` / ``reject``: the draft
  becomes an active question of the bank, or is archived.

Educators only; someone else's job or draft is a 404.
"""

from __future__ import annotations

import uuid

from litestar import Controller, get, post
from litestar.params import FromPath, JSONBody
from litestar.status_codes import HTTP_200_OK, HTTP_202_ACCEPTED

from safexam.auth.guards import CurrentUser, educator_or_admin
from safexam.core.deps import DB, SettingsDep
from safexam.exams.questions_service import question_out
from safexam.exams.schemas import QuestionOut
from safexam.qie.review import (
    generation_job_view,
    job_drafts,
    owned_generation_job,
    recent_generation_jobs,
    review_draft,
)
from safexam.qie.schemas import (
    GenerationDrafts,
    GenerationJobCreate,
    GenerationJobList,
    GenerationJobOut,
)
from safexam.qie.service import request_generation

__all__ = ["QieController"]


class QieController(Controller):
    path = "/qie"
    tags = ["qie"]
    guards = [educator_or_admin]

    @post("/jobs", status_code=HTTP_202_ACCEPTED)
    async def create_job(
        self,
        data: JSONBody[GenerationJobCreate],
        db: DB,
        settings: SettingsDep,
        principal: CurrentUser,
    ) -> GenerationJobOut:
        """Queue a generation job; follow it at ``GET /api/v1/jobs/{job_id}``.

        The questions arrive as drafts (``status=draft``, ``source=qie``) in
        the educator's bank; nothing reaches a student before the educator
        activates it.
        """
        job = await request_generation(db, data, principal.id, settings)
        return GenerationJobOut(job_id=job.id, status=job.status)

    @get("/jobs")
    async def list_jobs(self, db: DB, principal: CurrentUser) -> GenerationJobList:
        """My most recent generation jobs, newest first."""
        jobs = await recent_generation_jobs(db, principal)
        return GenerationJobList(items=[generation_job_view(job) for job in jobs])

    @get("/jobs/{job_id:uuid}/drafts")
    async def list_drafts(
        self, db: DB, principal: CurrentUser, job_id: FromPath[uuid.UUID]
    ) -> GenerationDrafts:
        """The job and every question it made, with each one's status now.

        Empty until the job succeeds: the drafts are committed with its status.
        """
        job = await owned_generation_job(db, job_id, principal)
        drafts = await job_drafts(db, job)
        return GenerationDrafts(
            job=generation_job_view(job), items=[question_out(q) for q in drafts]
        )

    @post("/drafts/{question_id:uuid}/approve", status_code=HTTP_200_OK)
    async def approve(
        self, db: DB, principal: CurrentUser, question_id: FromPath[uuid.UUID]
    ) -> QuestionOut:
        """The draft joins the bank as an active question, its provenance kept; 409 if decided."""
        return question_out(await review_draft(db, question_id, principal, "approve"))

    @post("/drafts/{question_id:uuid}/reject", status_code=HTTP_200_OK)
    async def reject(
        self, db: DB, principal: CurrentUser, question_id: FromPath[uuid.UUID]
    ) -> QuestionOut:
        """The draft is archived (kept, never drawn into an exam); 409 if decided."""
        return question_out(await review_draft(db, question_id, principal, "reject"))
