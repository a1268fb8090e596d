"""An exam's results for its educator: the table, its pictures, one student's
attempt with a score override, and the release of results.

Every figure comes from the sessions domain exactly as the JSON API serves it
(``GET /api/v1/exams/{id}/results``, ``.../results/{session_id}``,
``.../release``); filtering, sorting and the pictures' geometry are worked out
here from those structs, so the page needs no script. Someone else's exam, or a
session of another exam, is a 404 page.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import urlencode

from litestar import Controller, Request, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath
from litestar.response import Redirect, Template

from safexam.auth.guards import CurrentUser
from safexam.core.audit import audit_events
from safexam.core.deps import DB, RedisDep
from safexam.core.errors import ApiError, NotFound, Unprocessable
from safexam.grading.notify import publish_override
from safexam.grading.service import override_response
from safexam.integrity.service import activity_of_session
from safexam.sessions.closing import release_results, release_status, set_release_policy
from safexam.sessions.results import exam_results, student_result
from safexam.sessions.schemas import (
    ResultColumn,
    ResultRow,
    ResultsOut,
    ReviewItem,
    StudentResultItem,
    StudentResultOut,
)
from safexam.web.forms import field_errors, form_problem
from safexam.web.layout import page
from safexam.web.markdown import highlight_code
from safexam.web.student.review import VERDICTS, correct_shown, student_answer_shown

__all__ = [
    "Bar",
    "ResultsController",
    "Shown",
    "difficulty",
    "histogram",
    "shown_rows",
]

FormData = Body(media_type=RequestEncodingType.URL_ENCODED)

STATUS_FILTERS = (
    ("", "Every state"),
    ("graded", "Graded"),
    ("submitted", "Submitted, being graded"),
    ("expired", "Ended at the deadline, being graded"),
    ("active", "Still taking it"),
    ("not_started", "Not started"),
)
STATUS_WORDS = dict(STATUS_FILTERS[1:])
SORTS = ("name", "email", "status", "score", "submitted")
POLICIES = (
    ("immediate", "As soon as each exam is graded"),
    ("after_close", "When the exam closes for everyone"),
    ("manual", "When I release them"),
)
POLICY_NOW = {
    "immediate": "Students see their results as soon as their exam is graded.",
    "after_close": "Students see their results once the exam has closed for everyone.",
    "manual": "Students see their results when you release them.",
}
BINS = 10
CHART_W = 560
CHART_H = 200
MARGIN_L = 40
MARGIN_B = 36
EPSILON = 1e-9


def results_url(exam_id: uuid.UUID) -> str:
    return f"/educator/exams/{exam_id}/results"


def student_url(exam_id: uuid.UUID, session_id: uuid.UUID) -> str:
    return f"{results_url(exam_id)}/{session_id}"


@dataclass(frozen=True)
class Query:
    """The table's filters and order, as the toolbar's form sends them."""

    status: str = ""
    search: str = ""
    low: float | None = None
    high: float | None = None
    sort: str = "name"
    descending: bool = False


def _number(raw: str | None) -> float | None:
    try:
        value = float(raw) if raw not in (None, "") else None
    except ValueError:
        return None
    return value if value is not None and math.isfinite(value) else None


def read_query(params: Any, columns: Sequence[ResultColumn]) -> Query:
    status = str(params.get("status") or "")
    sort = str(params.get("sort") or "name")
    if sort not in SORTS and sort not in {c.label for c in columns}:
        sort = "name"
    return Query(
        status=status if status in STATUS_WORDS else "",
        search=str(params.get("q") or "").strip()[:200],
        low=_number(params.get("min")),
        high=_number(params.get("max")),
        sort=sort,
        descending=params.get("dir") == "desc",
    )


def _sort_key(query: Query, columns: Sequence[ResultColumn]) -> Any:
    by_label = {c.label: str(c.question_id) for c in columns}

    def key(row: ResultRow) -> tuple[int, Any, str]:
        # Rows without the value (not started, not graded) go last either way.
        value: Any
        if query.sort == "email":
            value = row.email.lower()
        elif query.sort == "status":
            value = row.status
        elif query.sort == "score":
            value = row.percent
        elif query.sort == "submitted":
            value = row.submitted_at
        elif query.sort in by_label:
            value = row.questions.get(by_label[query.sort])
        else:
            value = (row.name or row.email).lower()
        return (value is None, value, row.email)

    return key


def shown_rows(results: ResultsOut, query: Query) -> list[ResultRow]:
    """The rows the filters keep, in the order asked for."""
    needle = query.search.lower()
    kept = [
        row
        for row in results.rows
        if (not query.status or row.status == query.status)
        and (not needle or needle in row.name.lower() or needle in row.email.lower())
        and (query.low is None or (row.percent is not None and row.percent >= query.low))
        and (query.high is None or (row.percent is not None and row.percent <= query.high))
    ]
    key = _sort_key(query, results.columns)
    present = [r for r in kept if key(r)[0] is False]
    missing = [r for r in kept if key(r)[0] is True]
    present.sort(key=key, reverse=query.descending)
    missing.sort(key=lambda r: r.email)
    return present + missing


@dataclass(frozen=True)
class Bar:
    """One bar of a chart: its label, its value in words and its rectangle."""

    label: str
    value: float
    text: str
    x: float
    y: float
    width: float
    height: float


def histogram(results: ResultsOut) -> tuple[list[Bar], int, int]:
    """Students per 10% band of the score; the bars, the tallest count and how many scored."""
    counts = [0] * BINS
    for row in results.rows:
        if row.percent is None or row.status != "graded":
            continue
        counts[min(BINS - 1, max(0, int(row.percent // (100 / BINS))))] += 1
    top = max(counts) or 1
    plot_w = CHART_W - MARGIN_L
    plot_h = CHART_H - MARGIN_B
    slot = plot_w / BINS
    bars = []
    for i, n in enumerate(counts):
        low = i * 100 // BINS
        high = low + 100 // BINS if i == BINS - 1 else low + 9
        label = f"{low}\N{EN DASH}{high}%"
        height = plot_h * n / top
        bars.append(
            Bar(
                label=label,
                value=n,
                text=f"{n} student" if n == 1 else f"{n} students",
                x=MARGIN_L + i * slot + 2,
                y=plot_h - height,
                width=slot - 4,
                height=height,
            )
        )
    return bars, top, sum(counts)


@dataclass(frozen=True)
class Difficulty:
    column: ResultColumn
    answered: int
    correct: int
    share: float | None
    mean: float | None
    bar: Bar


def difficulty(results: ResultsOut) -> list[Difficulty]:
    """Per question, the share of graded students with full marks (and the mean score)."""
    found: list[Difficulty] = []
    row_h = 28
    plot_w = CHART_W - 120
    for i, column in enumerate(results.columns):
        qid = str(column.question_id)
        scores = [
            s
            for r in results.rows
            if r.status == "graded" and (s := r.questions.get(qid)) is not None
        ]
        correct = sum(1 for s in scores if column.points > 0 and s >= column.points - EPSILON)
        share = correct / len(scores) if scores else None
        mean = sum(scores) / len(scores) if scores else None
        percent = 0 if share is None else round(100 * share)
        found.append(
            Difficulty(
                column=column,
                answered=len(scores),
                correct=correct,
                share=share,
                mean=mean,
                bar=Bar(
                    label=column.label,
                    value=percent,
                    text="no graded answers" if share is None else f"{percent}% correct",
                    x=60,
                    y=i * row_h + 4,
                    width=plot_w * (share or 0.0),
                    height=row_h - 8,
                ),
            )
        )
    return found


def sort_href(exam_id: uuid.UUID, params: Any, query: Query, name: str) -> str:
    keep = {k: str(params.get(k)) for k in ("status", "q", "min", "max") if params.get(k)}
    again = query.sort == name and not query.descending
    keep.update({"sort": name, "dir": "desc" if again else "asc"})
    return f"{results_url(exam_id)}?{urlencode(keep)}"


def aria_sort(query: Query, name: str) -> str | None:
    if query.sort != name:
        return None
    return "descending" if query.descending else "ascending"


@dataclass(frozen=True)
class Shown:
    """A question of the student's attempt as the page shows it."""

    item: StudentResultItem
    answer: Any
    correct: Any
    code: Any
    verdict: str | None


def _as_review(item: StudentResultItem) -> ReviewItem:
    return ReviewItem(
        id=item.question_id,
        kind=item.kind,
        prompt=item.prompt,
        points=item.points,
        answer=item.answer,
        correct_answer=item.correct_answer,
        score=item.score,
        feedback=item.feedback,
        choices=item.choices,
    )


def shown_items(result: StudentResultOut) -> list[Shown]:
    shown = []
    for item in result.items:
        review = _as_review(item)
        sub = item.submission
        verdict = None
        if sub is not None:
            verdict = (
                "Still being judged"
                if sub.verdict is None
                else VERDICTS.get(sub.verdict, sub.verdict.replace("_", " ").capitalize())
            )
        shown.append(
            Shown(
                item=item,
                answer=None if sub is not None else student_answer_shown(review),
                correct=correct_shown(review),
                code=highlight_code(sub.source, sub.language) if sub is not None else None,
                verdict=verdict,
            )
        )
    return shown


def _score_field(raw: Any) -> float | None:
    text = str(raw or "").strip()
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        raise Unprocessable("Enter the score as a number, like 1.5", field="score") from None
    if not math.isfinite(value):
        raise Unprocessable("Enter the score as a number, like 1.5", field="score")
    return value


class ResultsController(Controller):
    path = "/exams/{exam_id:uuid}"
    include_in_schema = False

    @get("/results")
    async def results(
        self,
        request: Request[Any, Any, Any],
        db: DB,
        principal: CurrentUser,
        exam_id: FromPath[uuid.UUID],
    ) -> Template:
        table = await exam_results(db, exam_id, principal)
        status = await release_status(db, exam_id, principal)
        params = request.query_params
        query = read_query(params, table.columns)
        rows = shown_rows(table, query)
        bars, top, scored = histogram(table)
        return page(
            request,
            "educator/results/results.html",
            title=f"Results: {status.title}",
            exam=status,
            table=table,
            rows=rows,
            query=query,
            params=params,
            statuses=STATUS_FILTERS,
            status_words=STATUS_WORDS,
            bars=bars,
            top=top,
            scored=scored,
            hardness=difficulty(table),
            chart={"w": CHART_W, "h": CHART_H, "left": MARGIN_L, "bottom": MARGIN_B},
            sort_href=lambda name: sort_href(exam_id, params, query, name),
            aria_sort=lambda name: aria_sort(query, name),
            csv_url=f"/api/v1/exams/{exam_id}/results?format=csv",
            nav="educator-exams",
        )

    @get("/results/{session_id:uuid}")
    async def student(
        self,
        request: Request[Any, Any, Any],
        db: DB,
        principal: CurrentUser,
        exam_id: FromPath[uuid.UUID],
        session_id: FromPath[uuid.UUID],
    ) -> Template:
        return await self._student_page(request, db, principal, exam_id, session_id)

    async def _student_page(
        self,
        request: Request[Any, Any, Any],
        db: DB,
        principal: CurrentUser,
        exam_id: uuid.UUID,
        session_id: uuid.UUID,
        *,
        failed: uuid.UUID | None = None,
        errors: dict[str, str] | None = None,
        problem: str = "",
        sent: dict[str, str] | None = None,
        status_code: int = 200,
    ) -> Template:
        result = await student_result(db, exam_id, session_id, principal)
        activity = await activity_of_session(db, session_id, principal)
        # Per response (a handful per attempt), so a busy exam's trail hides none of them.
        trail = [
            e
            for item in result.items
            if item.response_id is not None
            for e in await audit_events(db, subject_id=item.response_id, limit=100)
            if e.action.startswith("response.override")
        ]
        trail.sort(key=lambda e: e.at, reverse=True)
        labels = {str(i.question_id): i.label for i in result.items}
        saved = request.query_params.get("saved")
        return page(
            request,
            "educator/results/student.html",
            status_code=status_code,
            title=f"{result.name or result.email}: {result.exam_title}",
            result=result,
            items=shown_items(result),
            activity=activity,
            trail=trail,
            labels=labels,
            failed=failed,
            errors=errors or {},
            problem=problem,
            sent=sent or {},
            saved=saved if saved in labels.values() else None,
            status_words=STATUS_WORDS,
            nav="educator-exams",
        )

    @post("/results/{session_id:uuid}/override")
    async def override(
        self,
        request: Request[Any, Any, Any],
        db: DB,
        redis: RedisDep,
        principal: CurrentUser,
        exam_id: FromPath[uuid.UUID],
        session_id: FromPath[uuid.UUID],
        data: Annotated[dict[str, str], FormData],
    ) -> Template | Redirect:
        result = await student_result(db, exam_id, session_id, principal)
        try:
            response_id = uuid.UUID(str(data.get("response_id") or ""))
        except ValueError:
            raise NotFound("response not found") from None
        item = next((i for i in result.items if i.response_id == response_id), None)
        if item is None:
            raise NotFound("response not found")
        comment = str(data.get("comment") or "").strip() or None
        try:
            outcome = await override_response(
                db,
                response_id,
                principal,
                score=_score_field(data.get("score")),
                comment=comment,
                reason=str(data.get("reason") or ""),
            )
        except ApiError as error:
            if error.status_code not in (409, 422):
                raise
            await db.rollback()
            return await self._student_page(
                request,
                db,
                principal,
                exam_id,
                session_id,
                failed=response_id,
                errors=field_errors(error),
                problem=form_problem(error),
                sent=dict(data),
                status_code=error.status_code,
            )
        await publish_override(redis, outcome.response)
        return Redirect(
            f"{student_url(exam_id, session_id)}?{urlencode({'saved': item.label})}#{item.label}",
            status_code=303,
        )

    @get("/release")
    async def release_page(
        self,
        request: Request[Any, Any, Any],
        db: DB,
        principal: CurrentUser,
        exam_id: FromPath[uuid.UUID],
    ) -> Template:
        return await self._release_page(request, db, principal, exam_id)

    async def _release_page(
        self,
        request: Request[Any, Any, Any],
        db: DB,
        principal: CurrentUser,
        exam_id: uuid.UUID,
        *,
        problem: str = "",
        status_code: int = 200,
    ) -> Template:
        status = await release_status(db, exam_id, principal)
        done = request.query_params.get("done")
        return page(
            request,
            "educator/results/release.html",
            status_code=status_code,
            title=f"Release results: {status.title}",
            exam=status,
            policies=POLICIES,
            policy_now=POLICY_NOW,
            problem=problem,
            done=done if done in ("released", "policy") else None,
            nav="educator-exams",
        )

    @post("/release")
    async def release(
        self,
        request: Request[Any, Any, Any],
        db: DB,
        principal: CurrentUser,
        exam_id: FromPath[uuid.UUID],
        data: Annotated[dict[str, str], FormData],
    ) -> Template | Redirect:
        try:
            await release_results(db, exam_id, principal)
        except ApiError as error:
            if error.status_code != 409:
                raise
            await db.rollback()
            return await self._release_page(
                request, db, principal, exam_id, problem=form_problem(error), status_code=409
            )
        return Redirect(f"/educator/exams/{exam_id}/release?done=released", status_code=303)

    @post("/release/policy")
    async def policy(
        self,
        request: Request[Any, Any, Any],
        db: DB,
        principal: CurrentUser,
        exam_id: FromPath[uuid.UUID],
        data: Annotated[dict[str, str], FormData],
    ) -> Template | Redirect:
        chosen = str(data.get("release_policy") or "")
        if chosen not in dict(POLICIES):
            return await self._release_page(
                request,
                db,
                principal,
                exam_id,
                problem="Choose when students see their results.",
                status_code=422,
            )
        await set_release_policy(db, exam_id, principal, chosen)
        return Redirect(f"/educator/exams/{exam_id}/release?done=policy", status_code=303)
