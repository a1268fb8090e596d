"""``POST /api/v1/qie/jobs``: educators ask for generated questions; a worker makes drafts."""

from __future__ import annotations

from litestar import Controller, post
from litestar.params import JSONBody
from litestar.status_codes import HTTP_202_ACCEPTED

from safexam.auth.guards import CurrentUser, educator_or_admin
from safexam.core.deps import DB, SettingsDep
from safexam.qie.schemas import GenerationJobCreate, GenerationJobOut
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
