"""My exams, an exam's lobby, Start or Resume, and the exam page.

Each page calls the sessions domain exactly as the JSON routes do (the exam
list of ``GET /api/v1/exams``, the start of ``POST /api/v1/exams/{id}/sessions``,
the session of ``GET /api/v1/sessions/{id}``), so a student sees in the browser
what the API would tell them, and anything not theirs is a 404.
"""

from __future__ import annotations

import uuid
from typing import Any

from litestar import Controller, Request, get, post
from litestar.params import FromPath
from litestar.response import Redirect, Template

from safexam.auth.guards import CurrentUser, student_only
from safexam.core.deps import DB, RedisDep, SettingsDep
from safexam.core.errors import NotFound
from safexam.core.http import client_ip, user_agent_of
from safexam.sessions.lobby import StudentExamDetail, exam_detail, my_exam_details
from safexam.sessions.monitor import exam_announcements
from safexam.sessions.review import get_session
from safexam.sessions.start import start_session
from safexam.web.layout import done_reading, page
from safexam.web.wording import INTEGRITY_EVENTS, STATE_LABELS

__all__ = ["StudentExamsController", "exam_page_url"]

# The order of the sections of My exams: what needs the student now comes first.
SECTION_ORDER = ("in_progress", "open", "upcoming", "submitted", "results_released", "closed")


def exam_page_url(session_id: uuid.UUID) -> str:
    return f"/sessions/{session_id}"


def _sections(
    details: list[StudentExamDetail],
) -> list[tuple[str, str, list[StudentExamDetail]]]:
    sections = []
    for state in SECTION_ORDER:
        items = [d for d in details if d.exam.state == state]
        if items:
            sections.append((state, STATE_LABELS[state], items))
    return sections


class StudentExamsController(Controller):
    path = "/"
    guards = [student_only]
    include_in_schema = False

    @get("/exams")
    async def my_exams(
        self, request: Request[Any, Any, Any], db: DB, principal: CurrentUser
    ) -> Template:
        details = await my_exam_details(db, principal)
        await done_reading(db)
        return page(
            request,
            "student/my_exams.html",
            title="My exams",
            sections=_sections(details),
            nav="exams",
        )

    @get("/exams/{exam_id:uuid}")
    async def lobby(
        self,
        request: Request[Any, Any, Any],
        db: DB,
        principal: CurrentUser,
        exam_id: FromPath[uuid.UUID],
    ) -> Template:
        detail = await exam_detail(db, exam_id, principal)
        await done_reading(db)
        return page(
            request,
            "student/lobby.html",
            title=detail.exam.title,
            detail=detail,
            exam=detail.exam,
            recorded=list(INTEGRITY_EVENTS.items()),
            nav="exams",
        )

    @post("/exams/{exam_id:uuid}/start", status_code=303)
    async def start(
        self,
        request: Request[Any, Any, Any],
        db: DB,
        settings: SettingsDep,
        principal: CurrentUser,
        redis: RedisDep,
        exam_id: FromPath[uuid.UUID],
    ) -> Redirect:
        """Start the next attempt or resume the running one, then open the exam page."""
        view, _created = await start_session(
            db,
            exam_id,
            principal,
            ip=client_ip(request),
            user_agent=user_agent_of(request),
            grace_seconds=settings.autosubmit_grace_seconds,
            redis=redis,
        )
        return Redirect(exam_page_url(view.id), status_code=303)

    @get("/sessions/{session_id:uuid}")
    async def exam_page(
        self,
        request: Request[Any, Any, Any],
        db: DB,
        principal: CurrentUser,
        session_id: FromPath[uuid.UUID],
    ) -> Template:
        """The exam: every question with its saved answer, the timer and the outbox.

        The page is the session of ``GET /api/v1/sessions/{id}`` rendered; its
        scripts then keep the answers with the autosave route and the deadline
        with the server's clock. An attempt that has ended shows what happened.
        """
        view = await get_session(
            db,
            session_id,
            principal,
            ip=client_ip(request),
            user_agent=user_agent_of(request),
        )
        try:
            detail: StudentExamDetail | None = await exam_detail(db, view.exam_id, principal)
        except NotFound:  # the exam was archived since: the session is still the student's
            detail = None
        await done_reading(db)
        return page(
            request,
            "student/exam.html",
            title=detail.exam.title if detail else "Exam",
            session=view,
            detail=detail,
            saved={qid: response.answer for qid, response in view.responses.items()},
            seqs={qid: response.client_seq for qid, response in view.responses.items()},
            announcements=await exam_announcements(db, view.exam_id),
            nav="exams",
        )
