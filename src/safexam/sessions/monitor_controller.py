"""HTTP routes of the live exam monitor: the exam's event stream and the educator's actions."""

from __future__ import annotations

import uuid

from litestar import Controller, get, post
from litestar.channels import ChannelsPlugin
from litestar.datastructures import State
from litestar.params import FromPath, JSONBody
from litestar.response import ServerSentEvent
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED

from safexam.auth.guards import CurrentUser, educator_or_admin
from safexam.core.deps import DB, RedisDep
from safexam.core.openapi import EVENT_STREAM
from safexam.sessions import monitor as service
from safexam.sessions.monitor import (
    AnnouncementIn,
    AnnouncementOut,
    AuditTrailOut,
    ExtendIn,
    ExtendOut,
    ForceSubmitIn,
    ForceSubmitOut,
    MonitorRoster,
    TimelineOut,
)

__all__ = ["MonitorController"]


class MonitorController(Controller):
    """The exam's owner (or an admin) watches the exam and acts on it; anyone else gets 404."""

    path = "/exams/{exam_id:uuid}"
    tags = ["monitor"]
    guards = [educator_or_admin]

    @get("/monitor", media_type=EVENT_STREAM)
    async def monitor(
        self,
        exam_id: FromPath[uuid.UUID],
        db: DB,
        redis: RedisDep,
        principal: CurrentUser,
        state: State,
        channels: ChannelsPlugin,
    ) -> ServerSentEvent:
        """SSE: ``roster`` (every student's state) first, then ``delta`` arrays as students act."""
        await service.exam_roster(db, exam_id, principal)
        await db.close()

        async def read_roster() -> MonitorRoster:
            async with state.sessionmaker() as fresh:
                return await service.exam_roster(fresh, exam_id, principal, redis)

        return ServerSentEvent(service.monitor_events(channels, exam_id, read_roster))

    @get("/monitor/roster")
    async def roster(
        self, exam_id: FromPath[uuid.UUID], db: DB, redis: RedisDep, principal: CurrentUser
    ) -> MonitorRoster:
        """The roster the monitor stream opens with, once."""
        return await service.exam_roster(db, exam_id, principal, redis)

    @get("/monitor/sessions/{session_id:uuid}")
    async def timeline(
        self,
        exam_id: FromPath[uuid.UUID],
        session_id: FromPath[uuid.UUID],
        db: DB,
        principal: CurrentUser,
    ) -> TimelineOut:
        """One student's timeline: start, saves, integrity events, actions, end."""
        return await service.student_timeline(db, exam_id, session_id, principal)

    @post("/extensions", status_code=HTTP_200_OK)
    async def extend(
        self,
        exam_id: FromPath[uuid.UUID],
        data: JSONBody[ExtendIn],
        db: DB,
        redis: RedisDep,
        principal: CurrentUser,
    ) -> ExtendOut:
        """Give one running session (``session_id``) or every running one more minutes."""
        return await service.extend_time(db, exam_id, principal, data, redis=redis)

    @post("/sessions/{session_id:uuid}/force-submit", status_code=HTTP_200_OK)
    async def force_submit(
        self,
        exam_id: FromPath[uuid.UUID],
        session_id: FromPath[uuid.UUID],
        data: JSONBody[ForceSubmitIn],
        db: DB,
        redis: RedisDep,
        principal: CurrentUser,
    ) -> ForceSubmitOut:
        """End a student's running attempt now; their saved answers are graded."""
        return await service.force_submit(db, exam_id, session_id, principal, data, redis=redis)

    @post("/announcements", status_code=HTTP_201_CREATED)
    async def announce(
        self,
        exam_id: FromPath[uuid.UUID],
        data: JSONBody[AnnouncementIn],
        db: DB,
        redis: RedisDep,
        principal: CurrentUser,
    ) -> AnnouncementOut:
        """Tell every student taking the exam something; it stays on their exam page."""
        return await service.announce(db, exam_id, principal, data, redis=redis)

    @get("/announcements")
    async def announcements(
        self, exam_id: FromPath[uuid.UUID], db: DB, principal: CurrentUser
    ) -> list[AnnouncementOut]:
        """The exam's announcements, oldest first."""
        await service.exam_audit_trail(db, exam_id, principal, limit=1)
        return await service.exam_announcements(db, exam_id)

    @get("/audit")
    async def audit(
        self, exam_id: FromPath[uuid.UUID], db: DB, principal: CurrentUser
    ) -> AuditTrailOut:
        """Who did what in this exam, when and why; newest first."""
        return await service.exam_audit_trail(db, exam_id, principal)
