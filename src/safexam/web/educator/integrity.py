"""The integrity review in the browser: similar pairs, clusters and flagged sessions of an
exam; one pair side by side with its matching regions marked; one session's timeline,
each integrity event with the answers saved around it, in words.

Mounted under ``/educator`` behind a guard that answers a student 404 (not 403):
a student must not learn the review exists. The pages call the same services
as ``/api/v1/exams/{id}/integrity``, which check the exam is the caller's.
Decisions are plain forms that redirect back (303) with what was recorded.
"""

from __future__ import annotations

import difflib
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
from safexam.integrity.schemas import (
    DecisionIn,
    PairOut,
    ReviewThresholds,
    SaveAround,
    SessionTimelineOut,
    TimelineQuestion,
)
from safexam.sessions.schemas import ReviewItem
from safexam.web.forms import convert_form, field_errors, form_problem
from safexam.web.layout import page
from safexam.web.student.review import student_answer_shown

__all__ = [
    "CodeLine",
    "IntegrityPageController",
    "SaveShown",
    "answer_words",
    "code_lines",
    "saves_shown",
]

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


#: Lines of a code save shown under it: those it added, else its first ones.
CODE_EXCERPT_LINES = 10


@dataclass(frozen=True)
class SaveShown:
    """One save near an event, as the timeline reads it."""

    save: SaveAround
    #: ``Q2: What is 2 + 2?``
    question: str
    #: ``12 s before``, ``3 s after``.
    offset: str
    #: The answer in words; for code, its size and how it changed.
    answer: str
    #: What it replaced, in words ("" for a first answer).
    replaced: str
    #: Code only: lines to show under it, and whether they are what it added.
    excerpt: str = ""
    added: bool = False


def _letter(index: int) -> str:
    return chr(ord("A") + index) if index < 26 else str(index + 1)


def answer_words(question: TimelineQuestion | None, answer: dict[str, Any] | None) -> str:
    """A saved answer in words: choices by the letter and text the student saw, values as typed."""
    if question is None or not answer:
        return "No answer"
    if question.kind in ("mcq_single", "mcq_multi"):
        order = [str(c.get("id")) for c in question.choices or []]
        texts = {str(c.get("id")): str(c.get("text", "")) for c in question.choices or []}
        picked = answer.get("choices") if question.kind == "mcq_multi" else [answer.get("choice")]
        ids = [str(i) for i in picked or [] if i is not None]
        if not ids:
            return "No choice"
        ids.sort(key=lambda i: order.index(i) if i in order else len(order))
        return "; ".join(
            f"{_letter(order.index(i))}. {texts[i]}" if i in texts else f"{i} (no longer a choice)"
            for i in ids
        )
    if question.kind == "coding":
        source = str(answer.get("source") or "")
        count = len(source.splitlines())
        return f"{count} {'line' if count == 1 else 'lines'} of code"
    review = ReviewItem(
        id=question.question_id,
        kind=question.kind,
        prompt=question.prompt,
        points=0.0,
        answer=answer,
        correct_answer=None,
        score=None,
        feedback=None,
    )
    shown = student_answer_shown(review)
    if shown is None:
        return "No answer"
    return shown.text if shown.text is not None else "; ".join(shown.items)


def _duration_words(seconds: float) -> str:
    whole = round(abs(seconds))
    if whole < 60:
        return f"{whole} s"
    minutes, rest = divmod(whole, 60)
    return f"{minutes} min {rest} s" if rest else f"{minutes} min"


def _offset(seconds: float) -> str:
    if round(abs(seconds)) == 0:
        return "at the same second"
    return f"{_duration_words(seconds)} {'before' if seconds < 0 else 'after'}"


def _code_change(save: SaveAround) -> tuple[str, str, bool]:
    """How a code save changed the draft before it, and the lines to show."""
    lines = str(save.answer.get("source") or "").splitlines()
    if save.replaced is None:
        return "", "\n".join(lines[:CODE_EXCERPT_LINES]), False
    old = str(save.replaced.get("source") or "").splitlines()
    added: list[str] = []
    removed = 0
    for line in difflib.ndiff(old, lines):
        if line.startswith("+ "):
            added.append(line[2:])
        elif line.startswith("- "):
            removed += 1
    change = f"{len(added)} added, {removed} removed since the save before"
    return change, "\n".join(added[:CODE_EXCERPT_LINES]), bool(added)


def saves_shown(
    saves: list[SaveAround], questions: dict[uuid.UUID, TimelineQuestion]
) -> list[SaveShown]:
    out: list[SaveShown] = []
    for save in saves:
        question = questions.get(save.question_id)
        title = f"{save.label}: {question.prompt}" if question and question.prompt else save.label
        words = answer_words(question, save.answer)
        replaced = "" if save.replaced is None else answer_words(question, save.replaced)
        excerpt, added = "", False
        if question is not None and question.kind == "coding":
            change, excerpt, added = _code_change(save)
            if change:
                words = f"{words} ({change})"
            replaced = ""
        out.append(
            SaveShown(
                save=save,
                question=title,
                offset=_offset(save.seconds),
                answer=words,
                replaced=replaced,
                excerpt=excerpt,
                added=added,
            )
        )
    return out


@dataclass(frozen=True)
class EventSaves:
    before: list[SaveShown]
    after: list[SaveShown]
    more_before: int
    more_after: int


def _event_saves(timeline: SessionTimelineOut) -> list[EventSaves | None]:
    """Per timeline item, the saves around it (None: not an event the saves were looked up for)."""
    questions = {q.question_id: q for q in timeline.questions}
    return [
        None
        if not item.saves_listed
        else EventSaves(
            before=saves_shown(item.saves_before, questions),
            after=saves_shown(item.saves_after, questions),
            more_before=item.more_before,
            more_after=item.more_after,
        )
        for item in timeline.items
    ]


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
            rows=list(zip(data.items, _event_saves(data), strict=True)),
            window=_duration_words(data.save_window_seconds),
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
