"""Overrides, regrades, and the live SSE view of a session."""

from __future__ import annotations

import uuid
from collections.abc import AsyncGenerator

from litestar import Controller, get, post, put
from litestar.channels import ChannelsPlugin
from litestar.datastructures import State
from litestar.params import JSONBody
from litestar.response import ServerSentEvent, ServerSentEventMessage
from sqlalchemy import select

from safexam.auth.guards import CurrentUser, authenticated, educator_or_admin
from safexam.core.deps import DB, RedisDep
from safexam.core.events import exam_channel, session_channel, sse_stream
from safexam.core.openapi import EVENT_STREAM
from safexam.grading.live import session_state
from safexam.grading.notify import SessionState, publish_override
from safexam.grading.regrade import apply_dry_run, request_regrade
from safexam.grading.schemas import OverrideIn, OverrideOut, RegradeIn, SessionResultOut
from safexam.grading.service import override_response
from safexam.jobs.schemas import JobAccepted
from safexam.sessions.models import ExamSession
from safexam.sessions.monitor import page_connected

__all__ = ["GradingController", "session_events"]


class GradingController(Controller):
    tags = ["grading"]
    guards = [educator_or_admin]

    @put("/responses/{response_id:uuid}/override")
    async def override(
        self,
        response_id: uuid.UUID,
        data: JSONBody[OverrideIn],
        db: DB,
        redis: RedisDep,
        principal: CurrentUser,
    ) -> OverrideOut:
        """The educator's score for one response, and why; wins over grading and regrades."""
        outcome = await override_response(
            db,
            response_id,
            principal,
            score=data.score,
            comment=data.comment,
            reason=data.reason,
        )
        r = outcome.response
        await publish_override(redis, r)
        return OverrideOut(
            id=r.id,
            session_id=r.session_id,
            question_id=r.question_id,
            score=r.score,
            max_score=r.max_score,
            override_score=r.override_score,
            override_comment=r.override_comment,
            override_by=r.override_by,
            override_at=r.override_at,
            result=SessionResultOut(
                score=outcome.result.score,
                max_score=outcome.result.max_score,
                pending_count=outcome.result.pending_count,
            ),
        )

    @post("/exams/{exam_id:uuid}/regrade", status_code=202)
    async def regrade(
        self,
        exam_id: uuid.UUID,
        db: DB,
        principal: CurrentUser,
        data: JSONBody[RegradeIn | None] = None,
    ) -> JobAccepted:
        """Regrade the exam's graded sessions (or compute the diff with ``dry_run``)."""
        body = data or RegradeIn()
        job = await request_regrade(
            db, exam_id, principal, question_ids=body.question_ids, dry_run=body.dry_run
        )
        return JobAccepted(job_id=job.id, status=job.status)

    @post("/jobs/{job_id:uuid}/apply", status_code=202)
    async def apply(self, job_id: uuid.UUID, db: DB, principal: CurrentUser) -> JobAccepted:
        """Apply a dry-run regrade as a unit; 409 ``regrade_stale`` if anything changed since."""
        job = await apply_dry_run(db, job_id, principal)
        return JobAccepted(job_id=job.id, status=job.status)


# A plain handler, not a Controller: the integrity controller owns POST on this
# path, and Litestar only merges one path's methods across registrations when
# the later one is a bare handler (register it after that controller).
@get(
    "/sessions/{session_id:uuid}/events",
    guards=[authenticated],
    tags=["grading"],
    media_type=EVENT_STREAM,
)
async def session_events(
    session_id: uuid.UUID,
    db: DB,
    principal: CurrentUser,
    state: State,
    channels: ChannelsPlugin,
    redis: RedisDep,
) -> ServerSentEvent:
    """SSE for the student or the exam's educator: status, deadline, announcements and
    result as they change.

    The student's own exam page holding this stream is also its heartbeat: the
    exam's live monitor hears when it connects and when it goes away.
    """
    first = await session_state(db, session_id, principal)
    owner = await db.scalar(select(ExamSession.user_id).where(ExamSession.id == session_id))
    await db.close()
    exam_id = first.exam_id
    assert exam_id is not None

    async def read_state() -> SessionState:
        async with state.sessionmaker() as fresh:
            return await session_state(fresh, session_id, principal)

    channels_heard = [session_channel(session_id), exam_channel(exam_id)]
    stream = sse_stream(channels, channels_heard, read_state, event="session")
    if owner != principal.id:
        return ServerSentEvent(stream)

    async def heartbeat() -> AsyncGenerator[ServerSentEventMessage, None]:
        async with page_connected(redis, exam_id, session_id):
            async for message in stream:
                yield message

    return ServerSentEvent(heartbeat())
