"""HTTP routes of the integrity log: students report events, exam owners read the log."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from litestar import Controller, Request, get, post
from litestar.params import FromPath, JSONBody, QueryParameter
from litestar.status_codes import HTTP_202_ACCEPTED

from safexam.auth.guards import CurrentUser, educator_or_admin, student_only
from safexam.core.deps import DB, RedisDep, SettingsDep
from safexam.core.http import client_ip, user_agent_of
from safexam.integrity import service
from safexam.integrity.schemas import ActivityOut, EventBatch, EventsAccepted

__all__ = ["IntegrityController"]


class IntegrityController(Controller):
    """``POST /sessions/{id}/events`` and ``GET /sessions/{id}/activity``.

    The live stream, ``GET /sessions/{id}/events``, is grading's bare handler,
    registered after this controller (Litestar merges one path's methods only
    that way round).
    """

    path = "/"
    tags = ["integrity"]

    @post(
        "/sessions/{session_id:uuid}/events",
        status_code=HTTP_202_ACCEPTED,
        guards=[student_only],
    )
    async def report_events(
        self,
        request: Request[Any, Any, Any],
        session_id: FromPath[uuid.UUID],
        data: JSONBody[EventBatch],
        db: DB,
        settings: SettingsDep,
        principal: CurrentUser,
        redis: RedisDep,
    ) -> EventsAccepted:
        """Append up to 100 browser events to my session's integrity log."""
        accepted = await service.record_events(
            db,
            session_id,
            principal,
            data.events,
            ip=client_ip(request),
            user_agent=user_agent_of(request),
            grace_seconds=settings.autosubmit_grace_seconds,
            redis=redis,
            namespace=settings.redis_namespace,
        )
        return EventsAccepted(accepted=accepted)

    @get("/sessions/{session_id:uuid}/activity", guards=[educator_or_admin])
    async def activity(
        self,
        session_id: FromPath[uuid.UUID],
        db: DB,
        principal: CurrentUser,
        # A bigint: anything larger would fail inside PostgreSQL.
        after_id: Annotated[int, QueryParameter(ge=0, le=2**63 - 1)] = 0,
        limit: Annotated[int, QueryParameter(ge=1, le=service.MAX_PAGE)] = 1_000,
    ) -> ActivityOut:
        """The session's events in order, per-kind counts, flagged kinds marked (exam owner)."""
        return await service.activity_of_session(
            db, session_id, principal, after_id=after_id, limit=limit
        )
