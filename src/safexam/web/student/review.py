"""The review of a finished exam: each question, the answer given, the correct
answer, feedback and score, once the exam's release policy allows.

The page asks the sessions domain exactly as ``GET /api/v1/sessions/{id}/review``
does. Before release the domain refuses (403 ``results_not_released``); the
page then says in words when and how results will come, from the session's
state and the exam's policy. Another student's session is a 404 page.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass
from typing import Any

from litestar import Controller, Request, get
from litestar.params import FromPath
from litestar.response import Template
from markupsafe import Markup

from safexam.auth.guards import CurrentUser, student_only
from safexam.coding.languages import LANGUAGES
from safexam.core.deps import DB
from safexam.core.errors import Forbidden, NotFound
from safexam.core.http import client_ip, user_agent_of
from safexam.sessions.lobby import StudentExamDetail, exam_detail
from safexam.sessions.review import get_session, review_session
from safexam.sessions.schemas import ReviewItem, ReviewSubmission, SessionOut
from safexam.web.layout import page
from safexam.web.markdown import highlight_code

__all__ = [
    "ShownAnswer",
    "StudentReviewController",
    "correct_shown",
    "pending_sentence",
    "review_page_url",
    "student_answer_shown",
]

#: How a coding submission's verdict reads.
VERDICTS = {
    "accepted": "Accepted: every test passed",
    "wrong_answer": "Wrong answer on at least one test",
    "compile_error": "Did not compile",
    "runtime_error": "Stopped with an error on at least one test",
    "time_limit": "Ran out of time on at least one test",
    "memory_limit": "Ran out of memory on at least one test",
    "output_limit": "Printed too much on at least one test",
    "internal_error": "Could not be judged (our error, not yours)",
}


def review_page_url(session_id: uuid.UUID) -> str:
    return f"/sessions/{session_id}/review"


@dataclass(frozen=True)
class ShownAnswer:
    """An answer in words: a line of text, a list of texts, or code in a language."""

    text: str | None = None
    items: tuple[str, ...] = ()
    code: Markup | None = None
    language: str | None = None


def _number(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return str(value)
    return f"{value:g}"


def _language_title(name: str) -> str:
    known = LANGUAGES.get(name)
    return known.title if known is not None else name


def _choice_texts(item: ReviewItem, ids: list[Any]) -> tuple[str, ...]:
    texts = {c.get("id"): c.get("text", "") for c in item.choices or []}
    # The paper's order, so the list reads as the question showed it.
    order = [c.get("id") for c in item.choices or []]
    chosen = [i for i in order if i in ids] + [i for i in ids if i not in texts]
    return tuple(texts.get(i, str(i)) for i in chosen)


def _code(source: str, language: str) -> ShownAnswer:
    return ShownAnswer(code=highlight_code(source, language), language=_language_title(language))


def student_answer_shown(
    item: ReviewItem, submission: ReviewSubmission | None = None
) -> ShownAnswer | None:
    """The student's answer to ``item`` in words, or None when there is none.

    For a coding question the code shown is the submission's that counts, when
    there is one (the score comes from it), else the last saved draft.
    """
    answer = item.answer or {}
    if item.kind == "coding":
        if submission is not None:
            return _code(submission.source, submission.language)
        source = answer.get("source")
        if isinstance(source, str) and source.strip():
            return _code(source, str(answer.get("language") or ""))
        return None
    if item.kind == "mcq_single":
        choice = answer.get("choice")
        return ShownAnswer(items=_choice_texts(item, [choice])) if choice else None
    if item.kind == "mcq_multi":
        choices = answer.get("choices")
        return ShownAnswer(items=_choice_texts(item, list(choices))) if choices else None
    if item.kind == "numeric":
        value = answer.get("value")
        return ShownAnswer(text=_number(value)) if value is not None else None
    if item.kind == "short_text":
        text = answer.get("text")
        return ShownAnswer(text=text) if isinstance(text, str) and text.strip() else None
    return ShownAnswer(text=str(answer)) if answer else None


def correct_shown(item: ReviewItem) -> ShownAnswer | None:
    """The correct answer as the review may show it (None: nothing to show).

    Coding questions have no single correct answer; their tests are shown
    apart (:func:`coding_tests`).
    """
    key = item.correct_answer or {}
    if item.kind in ("mcq_single", "mcq_multi"):
        ids = key.get("choices") or []
        return ShownAnswer(items=_choice_texts(item, list(ids))) if ids else None
    if item.kind == "numeric":
        if key.get("value") is None:
            return None
        tolerance = key.get("tolerance") or 0
        text = _number(key["value"])
        if tolerance:
            text += f" (answers within {_number(tolerance)} of it count)"
        return ShownAnswer(text=text)
    if item.kind == "short_text":
        answers = tuple(str(a) for a in key.get("answers") or [])
        return ShownAnswer(items=answers) if answers else None
    return None


def coding_tests(item: ReviewItem) -> tuple[list[dict[str, Any]], int]:
    """A coding question's visible tests (name, input, expected output) and the
    number of hidden ones, whose data stay secret even after release."""
    tests = (item.correct_answer or {}).get("tests") or []
    visible = [t for t in tests if not t.get("hidden")]
    return visible, len(tests) - len(visible)


def verdict_words(submission: ReviewSubmission) -> str:
    if submission.verdict is None:
        return "Still being judged"
    return VERDICTS.get(submission.verdict, submission.verdict.replace("_", " ").capitalize())


def pending_sentence(session: SessionOut, detail: StudentExamDetail | None) -> str:
    """When and how this attempt's results will be shown, in one or two sentences."""
    if session.status == "active":
        return (
            "This attempt is still running. Your results are shown here once you have "
            "submitted it and it has been graded."
        )
    if session.status in ("submitted", "expired"):
        head = "Your exam is submitted and being graded."
    else:
        head = "Your exam is graded, but its results are not released yet."
    if detail is None:
        return f"{head} They appear on this page as soon as they are released."
    policy = detail.release_policy
    if policy == "immediate":
        return f"{head} Your results appear on this page as soon as grading is done."
    if policy == "after_close":
        return f"{head} Your results appear on this page once the exam has closed for everyone."
    return (
        f"{head} Your results appear on this page when your educator releases them; "
        "My exams shows when they are."
    )


class StudentReviewController(Controller):
    path = "/"
    guards = [student_only]
    include_in_schema = False

    @get("/sessions/{session_id:uuid}/review")
    async def review(
        self,
        request: Request[Any, Any, Any],
        db: DB,
        principal: CurrentUser,
        session_id: FromPath[uuid.UUID],
    ) -> Template:
        try:
            review = await review_session(db, session_id, principal)
        except Forbidden as refused:
            if refused.code != "results_not_released":
                raise
            return await self._pending(request, db, principal, session_id)
        detail = await _detail(db, review.exam_id, principal)
        title = detail.exam.title if detail else "Exam"
        questions = [
            {
                "item": item,
                "answer": student_answer_shown(item, item.submission),
                "correct": correct_shown(item),
                "tests": coding_tests(item) if item.kind == "coding" else None,
                "verdict": verdict_words(item.submission) if item.submission else None,
            }
            for item in review.questions
        ]
        return page(
            request,
            "student/review.html",
            title=f"Results: {title}",
            exam_title=title,
            review=review,
            questions=questions,
            nav="exams",
        )

    async def _pending(
        self, request: Request[Any, Any, Any], db: DB, principal: CurrentUser, session_id: uuid.UUID
    ) -> Template:
        session = await get_session(
            db, session_id, principal, ip=client_ip(request), user_agent=user_agent_of(request)
        )
        detail = await _detail(db, session.exam_id, principal)
        title = detail.exam.title if detail else "Exam"
        return page(
            request,
            "student/review_pending.html",
            title=f"Results: {title}",
            exam_title=title,
            session=session,
            detail=detail,
            sentence=pending_sentence(session, detail),
            nav="exams",
        )


async def _detail(db: DB, exam_id: uuid.UUID, principal: CurrentUser) -> StudentExamDetail | None:
    try:
        return await exam_detail(db, exam_id, principal)
    except NotFound:  # the exam was archived since: the session is still the student's
        return None
