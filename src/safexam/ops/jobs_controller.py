"""Job status for requesters, educators and operators; the SSE stream of a job."""

from __future__ import annotations

import uuid

from litestar import Controller, get, post
from litestar.channels import ChannelsPlugin
from litestar.datastructures import State
from litestar.response import ServerSentEvent

from safexam.auth.guards import CurrentUser, authenticated, operator_only
from safexam.core.deps import DB
from safexam.core.events import job_channel, sse_stream
from safexam.core.openapi import EVENT_STREAM
from safexam.jobs.schemas import JobOut
from safexam.ops.jobs import job_out, visible_job
from safexam.ops.queues import retry_one_job

__all__ = ["JobController"]


class JobController(Controller):
    path = "/jobs"
    tags = ["jobs"]

    @get("/{job_id:uuid}", guards=[authenticated])
    async def get_job(self, job_id: uuid.UUID, db: DB, principal: CurrentUser) -> JobOut:
        """A job's status, progress, error and result (404 for anyone who may not see it)."""
        job, staff = await visible_job(db, job_id, principal)
        return job_out(job, staff=staff)

    @get("/{job_id:uuid}/events", guards=[authenticated], media_type=EVENT_STREAM)
    async def job_events(
        self,
        job_id: uuid.UUID,
        db: DB,
        principal: CurrentUser,
        state: State,
        channels: ChannelsPlugin,
    ) -> ServerSentEvent:
        """SSE: the job now, then again after every change (status, progress); heartbeats."""
        await visible_job(db, job_id, principal)
        await db.close()

        async def read_state() -> JobOut:
            async with state.sessionmaker() as fresh:
                job, staff = await visible_job(fresh, job_id, principal)
                return job_out(job, staff=staff)

        return ServerSentEvent(sse_stream(channels, job_channel(job_id), read_state, event="job"))

    @post("/{job_id:uuid}/retry", guards=[operator_only], status_code=202)
    async def retry_job(self, job_id: uuid.UUID, db: DB, principal: CurrentUser) -> JobOut:
        """Operators: run a failed or dead job again (attempts start over); audited."""
        job = await retry_one_job(db, job_id, principal.id)
        return job_out(job, staff=True)
