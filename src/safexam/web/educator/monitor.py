"""The live exam monitor page: every student's state as it changes, a student's
timeline, the actions (extend time, force-submit, announce) and the exam's audit trail.

The page is the roster of ``GET /api/v1/exams/{id}/monitor`` rendered; js/monitor.js
then keeps it live over that stream. The action forms post here and call the
same services as the JSON routes; their errors come back beside their fields.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from litestar import Controller, Request, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath, QueryParameter
from litestar.response import Redirect, Template

from safexam.auth.guards import CurrentUser
from safexam.core.deps import DB, RedisDep
from safexam.core.errors import ApiError, Unprocessable
from safexam.sessions.monitor import (
    AnnouncementIn,
    ExtendIn,
    ForceSubmitIn,
    announce,
    exam_announcements,
    exam_audit_trail,
    exam_roster,
    extend_time,
    force_submit,
)
from safexam.web.forms import convert_form, field_errors, form_problem
from safexam.web.layout import page

__all__ = ["MonitorPageController", "monitor_url"]

FormData = Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)]

#: The monitor's states, in the order the filter lists them.
STATES: dict[str, str] = {
    "not_started": "Not started",
    "active": "Active",
    "idle": "Idle",
    "offline": "Offline",
    "submitted": "Submitted",
    "auto_submitted": "Auto-submitted",
}

#: What an action's audit row is called on the page.
ACTIONS: dict[str, str] = {
    "session.extend": "Extended one student's time",
    "exam.extend": "Extended everyone's time",
    "session.force_submit": "Force-submitted",
    "exam.announce": "Announcement",
}

DONE: dict[str, str] = {
    "extended": "The time was extended. The student's timer shows it now.",
    "extended-all": "Every running attempt got the extra time. Their timers show it now.",
    "submitted": "The attempt was submitted. The student's page has closed it.",
    "announced": "The announcement is on every student's exam page.",
}


def monitor_url(exam_id: uuid.UUID) -> str:
    return f"/educator/exams/{exam_id}/monitor"


def _form_value(data: dict[str, str], name: str) -> str:
    value = data.get(name, "")
    return value if isinstance(value, str) else ""


class MonitorPageController(Controller):
    path = "/exams/{exam_id:uuid}/monitor"
    include_in_schema = False

    async def _page(
        self,
        request: Request[Any, Any, Any],
        db: DB,
        redis: RedisDep,
        principal: CurrentUser,
        exam_id: uuid.UUID,
        *,
        done: str | None = None,
        form: str | None = None,
        values: dict[str, str] | None = None,
        error: ApiError | None = None,
    ) -> Template:
        roster = await exam_roster(db, exam_id, principal, redis)
        trail = await exam_audit_trail(db, exam_id, principal, limit=100)
        said = await exam_announcements(db, exam_id)
        names = {str(s.session_id): s.name or s.email for s in roster.students if s.session_id}
        errors = field_errors(error) if error is not None else {}
        return page(
            request,
            "educator/monitor.html",
            status_code=error.status_code if error is not None else 200,
            title=f"Live monitor: {roster.title}",
            roster=roster,
            states=STATES,
            actions=ACTIONS,
            trail=trail.items,
            announcements=list(reversed(said)),
            names=names,
            running=[
                (str(s.session_id), s.name or s.email)
                for s in roster.students
                if s.status == "active" and s.session_id
            ],
            done=DONE.get(done or ""),
            form=form,
            values=values or {},
            errors=errors,
            problem=form_problem(error) if error is not None else None,
            nav="educator-exams",
        )

    @get("/")
    async def monitor(
        self,
        request: Request[Any, Any, Any],
        db: DB,
        redis: RedisDep,
        principal: CurrentUser,
        exam_id: FromPath[uuid.UUID],
        done: Annotated[str | None, QueryParameter()] = None,
    ) -> Template:
        return await self._page(request, db, redis, principal, exam_id, done=done)

    async def _act(
        self,
        request: Request[Any, Any, Any],
        db: DB,
        redis: RedisDep,
        principal: CurrentUser,
        exam_id: uuid.UUID,
        action: Callable[[], Awaitable[object]],
        *,
        form: str,
        values: dict[str, str],
        renames: dict[str, str],
        done: str,
    ) -> Redirect | Template:
        """Runs one action; its problems come back on the page beside the form's fields."""
        try:
            await action()
        except ApiError as exc:
            # An exam or attempt the educator may not see stays a plain 404.
            if exc.status_code == 404 and not isinstance(exc, Unprocessable):
                raise
            await db.rollback()
            return await self._page(
                request,
                db,
                redis,
                principal,
                exam_id,
                form=form,
                values=values,
                error=_renamed(exc, renames),
            )
        return Redirect(f"{monitor_url(exam_id)}?done={done}", status_code=303)

    @post("/extend", status_code=303)
    async def extend(
        self,
        request: Request[Any, Any, Any],
        db: DB,
        redis: RedisDep,
        principal: CurrentUser,
        exam_id: FromPath[uuid.UUID],
        data: FormData,
    ) -> Redirect | Template:
        who = _form_value(data, "extend_session_id")
        values = {
            "extend_session_id": who,
            "minutes": _form_value(data, "minutes"),
            "extend_reason": _form_value(data, "extend_reason"),
        }

        async def act() -> None:
            fields = {
                "minutes": values["minutes"] or None,
                "reason": values["extend_reason"],
                "session_id": who or None,
            }
            await extend_time(db, exam_id, principal, convert_form(fields, ExtendIn), redis=redis)

        return await self._act(
            request,
            db,
            redis,
            principal,
            exam_id,
            act,
            form="extend",
            values=values,
            renames={"reason": "extend_reason", "session_id": "extend_session_id"},
            done="extended" if who else "extended-all",
        )

    @post("/force-submit", status_code=303)
    async def force(
        self,
        request: Request[Any, Any, Any],
        db: DB,
        redis: RedisDep,
        principal: CurrentUser,
        exam_id: FromPath[uuid.UUID],
        data: FormData,
    ) -> Redirect | Template:
        values = {
            "force_session_id": _form_value(data, "force_session_id"),
            "force_reason": _form_value(data, "force_reason"),
        }

        async def act() -> None:
            try:
                session_id = uuid.UUID(values["force_session_id"])
            except ValueError:
                raise Unprocessable(
                    "Choose the student whose attempt to submit.", field="session_id"
                ) from None
            body = convert_form({"reason": values["force_reason"]}, ForceSubmitIn)
            await force_submit(db, exam_id, session_id, principal, body, redis=redis)

        return await self._act(
            request,
            db,
            redis,
            principal,
            exam_id,
            act,
            form="force",
            values=values,
            renames={"reason": "force_reason", "session_id": "force_session_id"},
            done="submitted",
        )

    @post("/announce", status_code=303)
    async def announce(
        self,
        request: Request[Any, Any, Any],
        db: DB,
        redis: RedisDep,
        principal: CurrentUser,
        exam_id: FromPath[uuid.UUID],
        data: FormData,
    ) -> Redirect | Template:
        values = {"message": _form_value(data, "message")}

        async def act() -> None:
            body = convert_form(values, AnnouncementIn)
            await announce(db, exam_id, principal, body, redis=redis)

        return await self._act(
            request,
            db,
            redis,
            principal,
            exam_id,
            act,
            form="announce",
            values=values,
            renames={},
            done="announced",
        )


_SENTENCES = {
    "minutes": "Give a whole number of minutes from 1 to 1440.",
    "reason": "Say why, in a few words: it goes into the exam's audit trail.",
    "message": "Write the announcement: it cannot be empty.",
}


def _renamed(error: ApiError, names: dict[str, str]) -> ApiError:
    """The error with its fields named as the page's form names them, in sentences."""
    fields = field_errors(error)
    if not fields:
        return error
    details = [
        {"field": names.get(field, field), "message": _SENTENCES.get(field, message)}
        for field, message in fields.items()
    ]
    return Unprocessable(error.message, details=details)
