"""Question generation in the browser: ask for drafts, watch them arrive, approve or reject.

- ``/educator/generate``: the request form (a passage or a topic, the kinds,
  how many) and the educator's recent jobs; it posts to the same service as
  ``POST /api/v1/qie/jobs`` and opens the job's page.
- ``/educator/generate/{job_id}``: the job's status, kept live by
  ``js/generate.js`` over the job's event stream (``/api/v1/jobs/{id}/events``);
  when the job ends the script fetches the drafts list (``.../drafts``, the
  fragment this page includes) in place, without a reload.
- Each draft's Approve and Reject are ordinary forms (they work without the
  script) calling the service of ``POST /api/v1/qie/drafts/{id}/approve|reject``.
"""

from __future__ import annotations

import uuid
from typing import Any

from litestar import Controller, Request, get, post
from litestar.params import FromPath
from litestar.response import Redirect, Template

from safexam.auth.guards import CurrentUser
from safexam.core.deps import DB, SettingsDep
from safexam.core.errors import ApiError, Unprocessable
from safexam.exams.models import Question
from safexam.qie.review import (
    Decision,
    draft_job_id,
    generation_job_view,
    job_drafts,
    owned_generation_job,
    recent_generation_jobs,
    review_draft,
)
from safexam.qie.schemas import GENERATABLE_KINDS, MAX_COUNT, GenerationJobCreate
from safexam.qie.service import request_generation
from safexam.web.forms import convert_form, field_errors, form_problem
from safexam.web.layout import page

__all__ = ["GenerateController", "job_page_url"]

KIND_LABELS: dict[str, str] = {
    "mcq_single": "Multiple choice, one answer",
    "mcq_multi": "Multiple choice, several answers",
    "short_text": "Short answer",
    "numeric": "Numeric",
}
STATUS_LABELS: dict[str, str] = {
    "pending": "Waiting for a worker",
    "queued": "Waiting for a worker",
    "running": "Generating",
    "succeeded": "Finished",
    "failed": "Failed",
    "dead": "Failed",
}
DEFAULT_FORM: dict[str, Any] = {
    "source_text": "",
    "topic": "",
    "count": 5,
    "kinds": ["mcq_single", "short_text"],
    "tags": "",
}


# The service's messages name the API's fields; the form's labels say them otherwise.
PAGE_SENTENCES: dict[str, str] = {
    "give a source_text or a topic": "Paste a passage or give a topic.",
    f"count must be between 1 and {MAX_COUNT}": f"Ask for between 1 and {MAX_COUNT} questions.",
    "ask for at least one kind": "Choose at least one kind of question.",
}


def _in_page_words(errors: dict[str, str]) -> dict[str, str]:
    worded: dict[str, str] = {}
    for field, message in errors.items():
        sentence = PAGE_SENTENCES.get(message)
        if sentence is None:
            text = message.replace("a source_text", "a passage").replace("source_text", "passage")
            sentence = text[:1].upper() + text[1:].rstrip(".") + "."
        worded[field] = sentence
    return worded


def job_page_url(job_id: uuid.UUID) -> str:
    return f"/educator/generate/{job_id}"


def _request_data(form: Any) -> dict[str, Any]:
    """The form as the JSON route's body; an empty count is left for the field's own error."""
    tags = [t.strip() for t in str(form.get("tags") or "").split(",") if t.strip()]
    data: dict[str, Any] = {
        "source_text": form.get("source_text") or None,
        "topic": form.get("topic") or None,
        "kinds": form.getall("kinds") if "kinds" in form else [],
        "tags": tags,
    }
    count = str(form.get("count") or "").strip()
    data["count"] = count if count else None
    return data


class GenerateController(Controller):
    path = "/generate"
    include_in_schema = False

    def _form_page(
        self,
        request: Request[Any, Any, Any],
        jobs: list[Any],
        *,
        values: dict[str, Any],
        error: ApiError | None = None,
    ) -> Template:
        return page(
            request,
            "educator/generate/new.html",
            status_code=error.status_code if error else 200,
            title="Generate questions",
            nav="generate",
            values=values,
            errors=_in_page_words(field_errors(error)) if error else {},
            problem=form_problem(error) if error else "",
            kinds=[(kind, KIND_LABELS[kind]) for kind in GENERATABLE_KINDS],
            max_count=MAX_COUNT,
            jobs=jobs,
            status_labels=STATUS_LABELS,
        )

    @get("/")
    async def new(
        self, request: Request[Any, Any, Any], db: DB, principal: CurrentUser
    ) -> Template:
        jobs = [generation_job_view(job) for job in await recent_generation_jobs(db, principal)]
        return self._form_page(request, jobs, values=DEFAULT_FORM)

    @post("/", status_code=303)
    async def start(
        self,
        request: Request[Any, Any, Any],
        db: DB,
        settings: SettingsDep,
        principal: CurrentUser,
    ) -> Redirect | Template:
        """Queue the job as ``POST /api/v1/qie/jobs`` does, then open its page."""
        form = await request.form()
        data = _request_data(form)
        values = {**data, "tags": str(form.get("tags") or ""), "count": data["count"] or ""}
        try:
            if data["count"] is None:
                raise Unprocessable("say how many questions to make", field="count")
            job = await request_generation(
                db, convert_form(data, GenerationJobCreate), principal.id, settings
            )
        except Unprocessable as exc:
            await db.rollback()
            jobs = [generation_job_view(j) for j in await recent_generation_jobs(db, principal)]
            return self._form_page(request, jobs, values=values, error=exc)
        return Redirect(job_page_url(job.id), status_code=303)

    async def _job_context(
        self, db: DB, principal: CurrentUser, job_id: uuid.UUID
    ) -> dict[str, Any]:
        job = await owned_generation_job(db, job_id, principal)
        drafts: list[Question] = list(await job_drafts(db, job))
        return {
            "job": generation_job_view(job),
            "drafts": drafts,
            "waiting": sum(1 for d in drafts if d.status == "draft"),
            "kind_labels": KIND_LABELS,
            "status_labels": STATUS_LABELS,
        }

    @get("/{job_id:uuid}")
    async def job_page(
        self,
        request: Request[Any, Any, Any],
        db: DB,
        principal: CurrentUser,
        job_id: FromPath[uuid.UUID],
    ) -> Template:
        context = await self._job_context(db, principal, job_id)
        return page(
            request,
            "educator/generate/job.html",
            title="Generated drafts",
            nav="generate",
            **context,
        )

    @get("/{job_id:uuid}/drafts")
    async def drafts_fragment(
        self,
        request: Request[Any, Any, Any],
        db: DB,
        principal: CurrentUser,
        job_id: FromPath[uuid.UUID],
    ) -> Template:
        """The drafts list alone, for the job page's script to put in place."""
        context = await self._job_context(db, principal, job_id)
        return page(request, "educator/generate/drafts.html", **context)

    async def _review(
        self,
        db: DB,
        principal: CurrentUser,
        question_id: uuid.UUID,
        decision: Decision,
    ) -> Redirect:
        question = await review_draft(db, question_id, principal, decision)
        job_id = draft_job_id(question)
        target = job_page_url(job_id) if job_id else "/educator/questions"
        return Redirect(f"{target}#draft-{question.id}", status_code=303)

    @post("/drafts/{question_id:uuid}/approve", status_code=303)
    async def approve(
        self, db: DB, principal: CurrentUser, question_id: FromPath[uuid.UUID]
    ) -> Redirect:
        return await self._review(db, principal, question_id, "approve")

    @post("/drafts/{question_id:uuid}/reject", status_code=303)
    async def reject(
        self, db: DB, principal: CurrentUser, question_id: FromPath[uuid.UUID]
    ) -> Redirect:
        return await self._review(db, principal, question_id, "reject")
