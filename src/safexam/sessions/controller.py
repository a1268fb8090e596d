"""HTTP routes of exam sessions: students take the exam, owners watch and release results."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

import msgspec
from litestar import Controller, MediaType, Request, Response, get, post, put
from litestar.exceptions import ValidationException
from litestar.openapi import ResponseSpec
from litestar.params import FromPath, JSONBody, QueryParameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED, HTTP_202_ACCEPTED

from safexam.auth.guards import CurrentUser, educator_or_admin, principal_of, student_only
from safexam.core.deps import DB, RedisDep, SettingsDep
from safexam.core.http import client_ip, user_agent_of
from safexam.core.openapi import text_alternative
from safexam.sessions import results as results_service
from safexam.sessions.autosave import autosave
from safexam.sessions.closing import release_results, release_status, submit_session
from safexam.sessions.review import get_session, review_session
from safexam.sessions.schemas import (
    AutosaveOut,
    AutosaveRequest,
    ExamSessionsOut,
    ReleaseOut,
    ReleaseStatusOut,
    ResultsOut,
    ReviewOut,
    SessionOut,
    StudentResultOut,
    SubmitOut,
)
from safexam.sessions.start import start_session

__all__ = ["SessionController"]

CSV = "text/csv"


class SessionController(Controller):
    """Students: start or resume, read, autosave, submit and review their own session.
    Exam owners: the sessions and results of their exam, and the manual release.

    One controller for both because Litestar cannot split one path's methods
    (``GET`` and ``POST /exams/{id}/sessions``) across controllers.
    """

    path = "/"
    tags = ["sessions"]

    @post(
        "/exams/{exam_id:uuid}/sessions",
        status_code=HTTP_201_CREATED,
        guards=[student_only],
        responses={
            HTTP_200_OK: ResponseSpec(
                SessionOut, description="The running session, resumed", generate_examples=False
            )
        },
    )
    async def start(
        self,
        request: Request[Any, Any, Any],
        exam_id: FromPath[uuid.UUID],
        db: DB,
        settings: SettingsDep,
        principal: CurrentUser,
        redis: RedisDep,
    ) -> Response[SessionOut]:
        """Start my next attempt (201), or resume the one running (200)."""
        view, created = await start_session(
            db,
            exam_id,
            principal,
            ip=client_ip(request),
            user_agent=user_agent_of(request),
            grace_seconds=settings.autosubmit_grace_seconds,
            redis=redis,
        )
        return Response(view, status_code=HTTP_201_CREATED if created else HTTP_200_OK)

    @get("/sessions/{session_id:uuid}", guards=[student_only])
    async def read(
        self,
        request: Request[Any, Any, Any],
        session_id: FromPath[uuid.UUID],
        db: DB,
        principal: CurrentUser,
    ) -> SessionOut:
        """Status, server time, remaining seconds and every saved answer."""
        return await get_session(
            db, session_id, principal, ip=client_ip(request), user_agent=user_agent_of(request)
        )

    @put(
        "/sessions/{session_id:uuid}/responses/{question_id:uuid}",
        status_code=HTTP_200_OK,
        guards=[student_only],
    )
    async def save_response(
        self,
        request: Request[Any, Any, Any],
        session_id: FromPath[uuid.UUID],
        question_id: FromPath[uuid.UUID],
        data: JSONBody[AutosaveRequest],
    ) -> AutosaveOut:
        """Autosave one answer; an older ``client_seq`` never overwrites a newer one."""
        # Litestar converts bodies leniently ("7" becomes 7); the fast path
        # decodes strictly. Both must answer alike, so the body is checked
        # strictly here too (the fast path sends only its refusals this way).
        try:
            msgspec.convert(await request.json(), AutosaveRequest, strict=True)
        except msgspec.ValidationError as exc:
            raise ValidationException(
                detail="Validation failed",
                extra=[{"message": str(exc), "key": "data", "source": "body"}],
            ) from exc
        # The hottest route takes no injected dependencies: Litestar resolves two or
        # more in a task group (a task per dependency per request), and the ORM
        # session is not used here. The guard has already checked the principal.
        return await autosave(
            request.app.state.engine,
            session_id,
            question_id,
            principal_of(request),
            answer=data.answer,
            client_seq=data.client_seq,
            ip=client_ip(request),
            user_agent=user_agent_of(request),
            redis=getattr(request.app.state, "redis", None),
        )

    @post(
        "/sessions/{session_id:uuid}/submit", status_code=HTTP_202_ACCEPTED, guards=[student_only]
    )
    async def submit(
        self,
        session_id: FromPath[uuid.UUID],
        db: DB,
        settings: SettingsDep,
        principal: CurrentUser,
        redis: RedisDep,
    ) -> SubmitOut:
        """End my session and queue its grading. Repeating it returns the same job."""
        return await submit_session(
            db,
            session_id,
            principal,
            grace_seconds=settings.autosubmit_grace_seconds,
            redis=redis,
        )

    @get("/sessions/{session_id:uuid}/review", guards=[student_only])
    async def review(
        self, session_id: FromPath[uuid.UUID], db: DB, principal: CurrentUser
    ) -> ReviewOut:
        """Answers, correct answers, scores and feedback; 403 until results are released."""
        return await review_session(db, session_id, principal)

    @get("/exams/{exam_id:uuid}/sessions", guards=[educator_or_admin])
    async def sessions(
        self, exam_id: FromPath[uuid.UUID], db: DB, principal: CurrentUser
    ) -> ExamSessionsOut:
        """Who started, status, submitted, time left, answers saved and integrity counts."""
        return await results_service.exam_sessions_overview(db, exam_id, principal)

    @get(
        "/exams/{exam_id:uuid}/results",
        guards=[educator_or_admin],
        responses={
            HTTP_200_OK: ResponseSpec(
                ResultsOut,
                description="The results table; with format=csv, the same as CSV",
                generate_examples=False,
            )
        },
        operation_class=text_alternative(CSV),
    )
    async def results(
        self,
        exam_id: FromPath[uuid.UUID],
        db: DB,
        principal: CurrentUser,
        output_format: Annotated[Literal["json", "csv"], QueryParameter(name="format")] = "json",
    ) -> Response[Any]:
        """One row per student, one column per question; ``?format=csv`` for a spreadsheet."""
        table: ResultsOut = await results_service.exam_results(db, exam_id, principal)
        if output_format == "csv":
            return Response(
                results_service.results_csv(table),
                # Litestar appends "; charset=utf-8" to text types itself.
                media_type=CSV,
                headers={"Content-Disposition": f'attachment; filename="results-{exam_id}.csv"'},
            )
        return Response(table, media_type=MediaType.JSON)

    @get("/exams/{exam_id:uuid}/results/{session_id:uuid}", guards=[educator_or_admin])
    async def student_result(
        self,
        exam_id: FromPath[uuid.UUID],
        session_id: FromPath[uuid.UUID],
        db: DB,
        principal: CurrentUser,
    ) -> StudentResultOut:
        """One student's attempt: answers, keys, automatic and overridden scores, every test."""
        return await results_service.student_result(db, exam_id, session_id, principal)

    @get("/exams/{exam_id:uuid}/release", guards=[educator_or_admin])
    async def release_state(
        self, exam_id: FromPath[uuid.UUID], db: DB, principal: CurrentUser
    ) -> ReleaseStatusOut:
        """How many students see their results now, how many wait, and the exam's policy."""
        return await release_status(db, exam_id, principal)

    @post("/exams/{exam_id:uuid}/release", status_code=HTTP_200_OK, guards=[educator_or_admin])
    async def release(
        self, exam_id: FromPath[uuid.UUID], db: DB, principal: CurrentUser
    ) -> ReleaseOut:
        """Release the exam's results to its students now."""
        return await release_results(db, exam_id, principal)
