"""The integrity review in the browser: similar pairs, clusters and flagged sessions of an
exam; one pair side by side with its matching regions marked; one session's timeline.

Mounted under ``/educator`` behind a guard that answers a student 404 (not 403):
a student must not learn the review exists. The pages call the same services
as ``/api/v1/exams/{id}/integrity``, which check the exam is the caller's.
Decisions are plain forms that redirect back (303) with what was recorded.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import urlencode

from litestar import Controller, Request, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath
from litestar.response import Redirect, Template

from safexam.auth.guards import CurrentUser
from safexam.core.deps import DB
from safexam.core.errors import ApiError, Unprocessable
from safexam.integrity import review
from safexam.integrity.cohort import request_similarity
from safexam.integrity.schemas import DecisionIn, PairOut, ReviewThresholds
from safexam.web.forms import convert_form, field_errors, form_problem
from safexam.web.layout import page

__all__ = ["CodeLine", "IntegrityPageController", "code_lines"]

FormData = Body(media_type=RequestEncodingType.URL_ENCODED)

DECISION_LABELS = {
    "open": "Not reviewed yet",
    "reviewed": "Reviewed",
    "dismissed": "Dismissed",
    "escalated": "Escalated",
}
SAVED = {
    "pair": "Your decision on this pair is recorded.",
    "session": "Your decision on this session is recorded.",
    "compare": "The comparison is queued; reload this page in a minute to see its results.",
    "nothing": "There is nothing to compare yet: no finished session has a coding answer.",
    "thresholds": "The flag thresholds are saved.",
}


@dataclass(frozen=True)
class CodeLine:
    number: int
    text: str
    # The 1-based number of the matching region this line is in, if any.
    region: int | None
    # The regions whose first line this is, where their labels are shown.
    starts: tuple[int, ...]


def code_lines(source: str, spans: list[tuple[int, int]]) -> list[CodeLine]:
    """The program's lines, each with the region (numbered as listed) it belongs to."""
    lines = source.splitlines() or [""]
    out: list[CodeLine] = []
    for n, text in enumerate(lines, start=1):
        region = next((i for i, (a, b) in enumerate(spans, start=1) if a <= n <= b), None)
        starts = tuple(i for i, (a, _) in enumerate(spans, start=1) if a == n)
        out.append(CodeLine(number=n, text=text, region=region, starts=starts))
    return out


def _pct(value: float) -> str:
    return f"{round(value * 100)}%"


class IntegrityPageController(Controller):
    path = "/exams/{exam_id:uuid}/integrity"
    include_in_schema = False

    @get("/")
    async def overview(
        self,
        request: Request[Any, Any, Any],
        db: DB,
        principal: CurrentUser,
        exam_id: FromPath[uuid.UUID],
    ) -> Template:
        return await self._overview(request, db, principal, exam_id)

    async def _overview(
        self,
        request: Request[Any, Any, Any],
        db: DB,
        principal: CurrentUser,
        exam_id: uuid.UUID,
        *,
        problem: str = "",
        errors: dict[str, str] | None = None,
        status_code: int = 200,
    ) -> Template:
        data = await review.integrity_review(db, exam_id, principal)
        return page(
            request,
            "educator/integrity/overview.html",
            status_code=status_code,
            title=f"Integrity review: {data.title}",
            review=data,
            labels=DECISION_LABELS,
            pct=_pct,
            saved=SAVED.get(request.query_params.get("saved") or "", ""),
            problem=problem,
            errors=errors or {},
            nav="educator-exams",
        )

    @post("/compare")
    async def compare(
        self,
        request: Request[Any, Any, Any],
        db: DB,
        principal: CurrentUser,
        exam_id: FromPath[uuid.UUID],
        data: Annotated[dict[str, str], FormData],
    ) -> Template | Redirect:
        try:
            jobs = await request_similarity(db, exam_id, principal)
        except ApiError as error:
            if error.status_code != 409:
                raise
            await db.rollback()
            return await self._overview(
                request, db, principal, exam_id, problem=form_problem(error), status_code=409
            )
        saved = "compare" if jobs else "nothing"
        return Redirect(f"/educator/exams/{exam_id}/integrity?saved={saved}", status_code=303)

    @post("/thresholds")
    async def thresholds(
        self,
        request: Request[Any, Any, Any],
        db: DB,
        principal: CurrentUser,
        exam_id: FromPath[uuid.UUID],
        data: Annotated[dict[str, str], FormData],
    ) -> Template | Redirect:
        try:
            values = convert_form(
                {
                    "similarity_threshold": _number(data.get("similarity_threshold"), 100),
                    "focus_lost_min_seconds": _number(data.get("focus_lost_min_seconds")),
                    "paste_min_chars": _number(data.get("paste_min_chars")),
                },
                ReviewThresholds,
            )
            await review.set_thresholds(db, exam_id, values, principal)
        except ApiError as error:
            if error.status_code != 422:
                raise
            await db.rollback()
            return await self._overview(
                request,
                db,
                principal,
                exam_id,
                problem=form_problem(error),
                errors=field_errors(error),
                status_code=422,
            )
        return Redirect(f"/educator/exams/{exam_id}/integrity?saved=thresholds", status_code=303)

    @get("/pairs/{pair_id:uuid}")
    async def pair(
        self,
        request: Request[Any, Any, Any],
        db: DB,
        principal: CurrentUser,
        exam_id: FromPath[uuid.UUID],
        pair_id: FromPath[uuid.UUID],
    ) -> Template:
        data = await review.pair_detail(db, exam_id, pair_id, principal)
        return self._pair_page(request, exam_id, data)

    def _pair_page(
        self,
        request: Request[Any, Any, Any],
        exam_id: uuid.UUID,
        data: PairOut,
        *,
        problem: str = "",
        status_code: int = 200,
    ) -> Template:
        a_spans = [(r.a_first, r.a_last) for r in data.regions]
        b_spans = [(r.b_first, r.b_last) for r in data.regions]
        return page(
            request,
            "educator/integrity/pair.html",
            status_code=status_code,
            title="Similar programs",
            exam_id=exam_id,
            pair=data,
            a_lines=code_lines(data.a_source, a_spans),
            b_lines=code_lines(data.b_source, b_spans),
            labels=DECISION_LABELS,
            pct=_pct,
            saved=SAVED.get(request.query_params.get("saved") or "", ""),
            problem=problem,
            nav="educator-exams",
        )

    @post("/pairs/{pair_id:uuid}")
    async def decide_pair(
        self,
        request: Request[Any, Any, Any],
        db: DB,
        principal: CurrentUser,
        exam_id: FromPath[uuid.UUID],
        pair_id: FromPath[uuid.UUID],
        data: Annotated[dict[str, str], FormData],
    ) -> Template | Redirect:
        decision = _decision(data)
        if decision is None:
            detail = await review.pair_detail(db, exam_id, pair_id, principal)
            return self._pair_page(
                request, exam_id, detail, problem=CHOOSE_DECISION, status_code=422
            )
        await review.decide_pair(db, exam_id, pair_id, decision, principal)
        query = urlencode({"saved": "pair"})
        return Redirect(
            f"/educator/exams/{exam_id}/integrity/pairs/{pair_id}?{query}", status_code=303
        )

    @get("/sessions/{session_id:uuid}")
    async def session(
        self,
        request: Request[Any, Any, Any],
        db: DB,
        principal: CurrentUser,
        exam_id: FromPath[uuid.UUID],
        session_id: FromPath[uuid.UUID],
    ) -> Template:
        return await self._session_page(request, db, principal, exam_id, session_id)

    async def _session_page(
        self,
        request: Request[Any, Any, Any],
        db: DB,
        principal: CurrentUser,
        exam_id: uuid.UUID,
        session_id: uuid.UUID,
        *,
        problem: str = "",
        status_code: int = 200,
    ) -> Template:
        data = await review.session_timeline(db, exam_id, session_id, principal)
        return page(
            request,
            "educator/integrity/session.html",
            status_code=status_code,
            title=f"Integrity timeline: {data.student.name or data.student.email}",
            timeline=data,
            labels=DECISION_LABELS,
            saved=SAVED.get(request.query_params.get("saved") or "", ""),
            problem=problem,
            nav="educator-exams",
        )

    @post("/sessions/{session_id:uuid}")
    async def decide_session(
        self,
        request: Request[Any, Any, Any],
        db: DB,
        principal: CurrentUser,
        exam_id: FromPath[uuid.UUID],
        session_id: FromPath[uuid.UUID],
        data: Annotated[dict[str, str], FormData],
    ) -> Template | Redirect:
        decision = _decision(data)
        if decision is None:
            return await self._session_page(
                request,
                db,
                principal,
                exam_id,
                session_id,
                problem=CHOOSE_DECISION,
                status_code=422,
            )
        await review.decide_session(db, exam_id, session_id, decision, principal)
        return Redirect(
            f"/educator/exams/{exam_id}/integrity/sessions/{session_id}?saved=session",
            status_code=303,
        )


CHOOSE_DECISION = "Choose a decision: reviewed, dismissed or escalated."


def _decision(data: dict[str, str]) -> DecisionIn | None:
    """The decision form as the JSON route takes it; None when no valid decision was chosen."""
    fields = {"decision": str(data.get("decision") or ""), "note": str(data.get("note") or "")}
    try:
        return convert_form(fields, DecisionIn)
    except Unprocessable:
        return None


def _number(raw: str | None, divide: int = 1) -> Any:
    """A form's number as the JSON route takes it; anything else is passed on to be refused."""
    text = (raw or "").strip()
    try:
        value = float(text)
    except ValueError:
        return text
    if divide != 1:
        return value / divide
    return int(value) if value.is_integer() else value
