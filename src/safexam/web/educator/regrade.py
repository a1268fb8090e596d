"""Regrading an exam in the browser: the dry run, its diff, the apply, the progress.

The educator changes a key or a test on the question's page
(``/educator/questions/{id}``), then starts a dry run here (the same service as
``POST /api/v1/exams/{id}/regrade`` with ``dry_run``). While a job runs the page
follows it over the job's SSE stream (``static/js/job-progress.js``) and
reloads itself when it ends; without scripts, a link reloads it. A finished
dry run shows who changes and how, per question, and applies as a unit
(``POST /api/v1/jobs/{id}/apply``); an apply refused because something changed
since the dry run (409) is said in words beside the diff.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Annotated, Any

from litestar import Controller, Request, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath
from litestar.response import Redirect, Template

from safexam.auth.guards import CurrentUser
from safexam.core.deps import DB
from safexam.core.errors import ApiError, NotFound
from safexam.grading.regrade import apply_dry_run, request_regrade
from safexam.jobs.kinds import REGRADE
from safexam.jobs.schemas import JobOut
from safexam.ops.jobs import exam_job
from safexam.sessions.results import exam_results
from safexam.sessions.schemas import ResultsOut
from safexam.web.forms import form_problem
from safexam.web.layout import page

__all__ = ["RegradeController", "StudentChange", "diff_of"]

FormData = Body(media_type=RequestEncodingType.URL_ENCODED)

#: What each refusal of an apply means, said to the educator.
CONFLICTS = {
    "regrade_stale": (
        "Scores or answer keys changed after this dry run (an override, another key "
        "change), so its diff is out of date. Run a new dry run and check it before applying."
    ),
    "already_applied": "This dry run has already been applied.",
    "dry_run_not_finished": "The dry run has not finished yet: wait for it, then apply.",
    "regrade_in_progress": (
        "A regrade of this exam is already running. Wait for it to finish, then try again."
    ),
}


def regrade_url(exam_id: uuid.UUID, job_id: uuid.UUID | None = None) -> str:
    url = f"/educator/exams/{exam_id}/regrade"
    return f"{url}?job={job_id}" if job_id else url


@dataclass(frozen=True)
class QuestionChange:
    label: str
    old: float | None
    new: float
    overridden: bool


@dataclass(frozen=True)
class StudentChange:
    name: str
    email: str
    session_id: str
    old: float
    new: float
    delta: float
    questions: list[QuestionChange]


def diff_of(result: dict[str, Any], table: ResultsOut) -> list[StudentChange]:
    """The dry run's students, biggest change first, their questions named as on the table."""
    labels = {str(c.question_id): c.label for c in table.columns}
    changes = [
        StudentChange(
            name=str(s.get("name") or ""),
            email=str(s.get("email") or ""),
            session_id=str(s.get("session_id")),
            old=float(s.get("old") or 0.0),
            new=float(s.get("new") or 0.0),
            delta=float(s.get("delta") or 0.0),
            questions=sorted(
                (
                    QuestionChange(
                        label=labels.get(str(q.get("question_id")), "?"),
                        old=q.get("old"),
                        new=float(q.get("new") or 0.0),
                        overridden=bool(q.get("overridden")),
                    )
                    for q in s.get("questions") or []
                ),
                key=lambda q: (len(q.label), q.label),
            ),
        )
        for s in result.get("students") or []
    ]
    changes.sort(key=lambda c: (-abs(c.delta), c.email))
    return changes


def _job_id(raw: Any) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(raw)) if raw else None
    except ValueError:
        return None


class RegradeController(Controller):
    path = "/exams/{exam_id:uuid}/regrade"
    include_in_schema = False

    @get("/")
    async def show(
        self,
        request: Request[Any, Any, Any],
        db: DB,
        principal: CurrentUser,
        exam_id: FromPath[uuid.UUID],
    ) -> Template:
        job_id = _job_id(request.query_params.get("job"))
        if request.query_params.get("job") and job_id is None:
            raise NotFound("job not found")
        return await self._page(request, db, principal, exam_id, job_id)

    async def _page(
        self,
        request: Request[Any, Any, Any],
        db: DB,
        principal: CurrentUser,
        exam_id: uuid.UUID,
        job_id: uuid.UUID | None,
        *,
        problem: str = "",
        status_code: int = 200,
    ) -> Template:
        table = await exam_results(db, exam_id, principal)
        job: JobOut | None = None
        dry_run: JobOut | None = None
        if job_id is not None:
            job = await exam_job(db, job_id, exam_id, REGRADE.name, principal)
            result = job.result or {}
            applies = _job_id(result.get("applies"))
            if applies is not None:
                # An apply shows the diff it applied, from its dry run.
                dry_run = await exam_job(db, applies, exam_id, REGRADE.name, principal)
        diff_source = dry_run or job
        diff = (
            diff_of(diff_source.result, table)
            if diff_source is not None
            and diff_source.result is not None
            and diff_source.status == "succeeded"
            else None
        )
        running = job is not None and job.status in ("pending", "queued", "running")
        is_dry = job is not None and bool((job.result or {}).get("dry_run"))
        return page(
            request,
            "educator/regrade/regrade.html",
            status_code=status_code,
            title="Regrade",
            exam_id=exam_id,
            table=table,
            job=job,
            running=running,
            is_dry=is_dry,
            applied_by=(job.result or {}).get("applied_by") if job is not None else None,
            diff=diff,
            totals=((diff_source.result or {}).get("totals") if diff_source else None) or {},
            problem=problem,
            events_url=f"/api/v1/jobs/{job.id}/events" if job is not None and running else None,
            nav="educator-exams",
        )

    @post("/")
    async def dry_run(
        self,
        request: Request[Any, Any, Any],
        db: DB,
        principal: CurrentUser,
        exam_id: FromPath[uuid.UUID],
        data: Annotated[dict[str, str], FormData],
    ) -> Template | Redirect:
        try:
            job = await request_regrade(db, exam_id, principal, question_ids=None, dry_run=True)
        except ApiError as error:
            if error.status_code != 409:
                raise
            await db.rollback()
            return await self._page(
                request,
                db,
                principal,
                exam_id,
                None,
                problem=CONFLICTS.get(error.code, form_problem(error)),
                status_code=409,
            )
        return Redirect(regrade_url(exam_id, job.id), status_code=303)

    @post("/apply")
    async def apply(
        self,
        request: Request[Any, Any, Any],
        db: DB,
        principal: CurrentUser,
        exam_id: FromPath[uuid.UUID],
        data: Annotated[dict[str, str], FormData],
    ) -> Template | Redirect:
        job_id = _job_id(data.get("job_id"))
        if job_id is None:
            raise NotFound("job not found")
        # The dry run must be of this exam (and the caller's) before anything is applied.
        await exam_job(db, job_id, exam_id, REGRADE.name, principal)
        try:
            job = await apply_dry_run(db, job_id, principal)
        except ApiError as error:
            if error.status_code != 409:
                raise
            await db.rollback()
            return await self._page(
                request,
                db,
                principal,
                exam_id,
                job_id,
                problem=CONFLICTS.get(error.code, form_problem(error)),
                status_code=409,
            )
        return Redirect(regrade_url(exam_id, job.id), status_code=303)
