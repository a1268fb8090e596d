"""Every route of the app against every kind of caller, with real objects behind the ids.

The routes come from the app's own route table, and the expectations from the
one table below keyed by (method, path): a route added without a rule fails
here, and so does a rule whose route is gone. Owned objects belong to
"educator" and "student"; the "other" student and educator see them as
missing (404, the project's rule for objects that are not yours), a signed-out
caller gets 401 and a signed-in caller of the wrong role 403.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from litestar import Litestar

from safexam.web.assets import STATIC_PREFIX, assets
from tests.factories import exam, mcq
from tests.security.shape import error_shape_problem
from tests.security.world import ROLES, World, now_iso

ANON, STU, OSTU, EDU, OEDU, ADMIN = ROLES
NOT_ALLOWED = {ANON: 401, STU: 403, OSTU: 403, EDU: 403, OEDU: 403}


def everyone(status: int) -> dict[str, int]:
    return dict.fromkeys(ROLES, status)


def signed_in(status: int) -> dict[str, int]:
    return {ANON: 401, **dict.fromkeys(ROLES[1:], status)}


def staff_owned(owner: int) -> dict[str, int]:
    """Educator-or-admin routes on the educator's object."""
    return {ANON: 401, STU: 403, OSTU: 403, EDU: owner, OEDU: 404, ADMIN: owner}


def staff_any(status: int) -> dict[str, int]:
    """Educator-or-admin routes on no particular object."""
    return {ANON: 401, STU: 403, OSTU: 403, EDU: status, OEDU: status, ADMIN: status}


def educator_page(owner: int, other: int = 404) -> dict[str, int]:
    """The educator's pages: whoever is not signed in is sent to sign in (303)."""
    return {ANON: 303, STU: 403, OSTU: 403, EDU: owner, OEDU: other, ADMIN: owner}


def student_owned(owner: int) -> dict[str, int]:
    """Student-only routes on the student's session."""
    return {ANON: 401, STU: owner, OSTU: 404, EDU: 403, OEDU: 403, ADMIN: 403}


def student_page(owner: int) -> dict[str, int]:
    """The student's pages: whoever is not signed in is sent to sign in (303)."""
    return {ANON: 303, STU: owner, OSTU: 404, EDU: 403, OEDU: 403, ADMIN: 403}


def operator_page(admin: int) -> dict[str, int]:
    """The operator's pages: sign in first (303), admins only, everyone else 403."""
    return {ANON: 303, STU: 403, OSTU: 403, EDU: 403, OEDU: 403, ADMIN: admin}


def staff_page(status: int) -> dict[str, int]:
    """The educator's pages: whoever is not signed in is sent to sign in (303)."""
    return {ANON: 303, STU: 403, OSTU: 403, EDU: status, OEDU: status, ADMIN: status}


def staff_owned_page(owner: int) -> dict[str, int]:
    """The educator's pages of the educator's exam; another educator's is missing."""
    return {ANON: 303, STU: 403, OSTU: 403, EDU: owner, OEDU: 404, ADMIN: owner}


def review_owned(owner: int, anonymous: int = 401) -> dict[str, int]:
    """The integrity review: the owner's; to a student it does not exist (404, not 403)."""
    return {ANON: anonymous, STU: 404, OSTU: 404, EDU: owner, OEDU: 404, ADMIN: owner}


def _exam_form(title: str) -> dict[str, str]:
    return {
        "title": title,
        "opens_at": "2026-01-01T09:00",
        "closes_at": "2199-01-01T09:00",
        "tz": "Europe/Paris",
        "duration_minutes": "30",
        "attempts_allowed": "1",
        "release_policy": "manual",
    }


def _mcq_form() -> dict[str, str]:
    """The question form of a single choice question, as the page posts it."""
    return {
        "prompt": "Reworded",
        "points": "1",
        "status": "draft",
        "body.choices[0].id": "a",
        "body.choices[0].text": "One",
        "body.choices[1].id": "b",
        "body.choices[1].text": "Two",
        "body.answer[]": "a",
    }


def visible_to_all_parties(owner: int) -> dict[str, int]:
    """Objects the student, the exam's educator and admins may all read."""
    return {ANON: 401, STU: owner, OSTU: 404, EDU: owner, OEDU: 404, ADMIN: owner}


@dataclass(frozen=True)
class Rule:
    expect: dict[str, int]
    # Path parameter -> an id of the world, or "fresh:<kind>" for a new object per call.
    params: dict[str, str] = field(default_factory=dict)
    body: Callable[[World], Any] | None = None
    # A new signed-in browser per call (for sign-in and sign-out, which change the session).
    own_browser: bool = False
    # A new browser of a new user of the role (for what acts on all of a user's sign-ins).
    own_account: bool = False
    # A page of the browser: redirects are not followed, and errors are pages, not JSON.
    page: bool = False
    # A form body (pages' forms are URL-encoded), instead of ``body`` as JSON.
    form: Callable[[World], dict[str, str]] | None = None


# The default object behind each path parameter.
PARAMS = {
    "exam_id": "exam_id",
    "session_id": "session_id",
    "question_id": "question_id",
    "response_id": "response_id",
    "job_id": "job_id",
    "submission_id": "submission_id",
    "email": "student_email",
    "pair_id": "pair_id",
    "bank_id": "bank_id",
}

STYLESHEET = assets.url("css/app.css").removeprefix(STATIC_PREFIX + "/")

RUN = {"language": "python", "source": "def add(a, b):\n    return a + b\n"}


def _run(world: World) -> dict[str, Any]:
    return {"question_id": world.ids["coding_question_id"], **RUN}


def _answer(world: World) -> dict[str, Any]:
    return {"answer": {"choice": "a"}, "client_seq": world.next_seq()}


RULES: dict[tuple[str, str], Rule] = {
    ("GET", "/healthz"): Rule(everyone(200)),
    ("GET", "/readyz"): Rule(everyone(200)),
    ("GET", "/metrics"): Rule(everyone(200)),
    ("GET", "/api/v1/auth/csrf"): Rule(everyone(200)),
    ("POST", "/api/v1/auth/login"): Rule(
        everyone(401),
        body=lambda w: {"email": f"nobody-{w.next_seq()}@college.edu", "password": "wrong"},
        own_browser=True,
    ),
    ("POST", "/api/v1/auth/logout"): Rule(everyone(204), own_browser=True),
    ("POST", "/api/v1/auth/logout-all"): Rule(signed_in(204), own_account=True),
    ("GET", "/api/v1/auth/me"): Rule(signed_in(200)),
    # Google sign-in is off unless configured, for everyone alike.
    ("GET", "/api/v1/auth/oidc/login"): Rule(everyone(404)),
    ("GET", "/api/v1/auth/oidc/callback"): Rule(everyone(404)),
    # Question bank.
    ("GET", "/api/v1/questions"): Rule(staff_any(200)),
    ("POST", "/api/v1/questions"): Rule(staff_any(201), body=lambda w: mcq()),
    ("GET", "/api/v1/questions/{question_id:uuid}"): Rule(staff_owned(200)),
    ("PATCH", "/api/v1/questions/{question_id:uuid}"): Rule(
        staff_owned(200),
        params={"question_id": "spare_question_id"},
        body=lambda w: {"prompt": "Reworded"},
    ),
    ("DELETE", "/api/v1/questions/{question_id:uuid}"): Rule(
        staff_owned(204), params={"question_id": "fresh:question"}
    ),
    ("GET", "/api/v1/questions/{question_id:uuid}/student-view"): Rule(staff_owned(200)),
    ("GET", "/api/v1/questions/{question_id:uuid}/variants"): Rule(staff_owned(200)),
    ("POST", "/api/v1/questions/{question_id:uuid}/trials"): Rule(
        staff_owned(202),
        params={"question_id": "coding_question_id"},
        body=lambda w: {"language": "python", "source": "print(3)"},
    ),
    ("GET", "/api/v1/questions/{question_id:uuid}/trials/{trial_id:uuid}"): Rule(
        staff_owned(200), params={"question_id": "trial_question_id", "trial_id": "trial_id"}
    ),
    ("PUT", "/api/v1/questions/{question_id:uuid}/bank"): Rule(
        staff_owned(200),
        params={"question_id": "spare_question_id"},
        body=lambda w: {"bank_id": w.ids["bank_id"]},
    ),
    # Question banks (the world's is private).
    ("GET", "/api/v1/banks"): Rule(staff_any(200)),
    ("POST", "/api/v1/banks"): Rule(
        staff_any(201), body=lambda w: {"name": f"Bank {w.next_seq()}"}
    ),
    ("PATCH", "/api/v1/banks/{bank_id:uuid}"): Rule(
        staff_owned(200), body=lambda w: {"sharing": "private"}
    ),
    # Exams.
    ("GET", "/api/v1/exams"): Rule(signed_in(200)),
    ("POST", "/api/v1/exams"): Rule(staff_any(201), body=lambda w: exam([])),
    ("GET", "/api/v1/exams/{exam_id:uuid}"): Rule(staff_owned(200)),
    ("PATCH", "/api/v1/exams/{exam_id:uuid}"): Rule(
        staff_owned(200), body=lambda w: {"title": "Renamed"}
    ),
    ("DELETE", "/api/v1/exams/{exam_id:uuid}"): Rule(
        staff_owned(204), params={"exam_id": "fresh:draft_exam"}
    ),
    ("POST", "/api/v1/exams/{exam_id:uuid}/publish"): Rule(
        staff_owned(200), params={"exam_id": "fresh:draft_exam"}
    ),
    ("GET", "/api/v1/exams/{exam_id:uuid}/enrollments"): Rule(staff_owned(200)),
    ("PUT", "/api/v1/exams/{exam_id:uuid}/enrollments"): Rule(
        staff_owned(200),
        body=lambda w: {"students": [{"email": w.emails[STU], "extra_minutes": 5}]},
    ),
    ("POST", "/api/v1/exams/{exam_id:uuid}/enrollments/import"): Rule(
        staff_owned(200),
        body=lambda w: {"text": f"{w.emails[STU]},5\nnot-an-email\n"},
    ),
    ("DELETE", "/api/v1/exams/{exam_id:uuid}/enrollments/{email:str}"): Rule(
        staff_owned(204), params={"email": "fresh:enrollment"}
    ),
    ("GET", "/api/v1/exams/{exam_id:uuid}/sessions"): Rule(staff_owned(200)),
    # Start or resume: the student resumes the running session; a student who is
    # not enrolled sees no such exam.
    ("POST", "/api/v1/exams/{exam_id:uuid}/sessions"): Rule(student_owned(200)),
    ("GET", "/api/v1/exams/{exam_id:uuid}/results"): Rule(staff_owned(200)),
    ("GET", "/api/v1/exams/{exam_id:uuid}/results/{session_id:uuid}"): Rule(staff_owned(200)),
    ("GET", "/api/v1/exams/{exam_id:uuid}/release"): Rule(staff_owned(200)),
    ("POST", "/api/v1/exams/{exam_id:uuid}/release"): Rule(staff_owned(200)),
    ("POST", "/api/v1/exams/{exam_id:uuid}/regrade"): Rule(
        staff_owned(202), params={"exam_id": "fresh:published_exam"}, body=lambda w: {}
    ),
    # The live monitor and its actions.
    ("GET", "/api/v1/exams/{exam_id:uuid}/monitor"): Rule(staff_owned(200)),
    ("GET", "/api/v1/exams/{exam_id:uuid}/monitor/roster"): Rule(staff_owned(200)),
    ("GET", "/api/v1/exams/{exam_id:uuid}/monitor/sessions/{session_id:uuid}"): Rule(
        staff_owned(200)
    ),
    ("POST", "/api/v1/exams/{exam_id:uuid}/extensions"): Rule(
        staff_owned(200), body=lambda w: {"minutes": 1, "reason": "Checked"}
    ),
    # The graded session has ended: the owner gets as far as 409.
    ("POST", "/api/v1/exams/{exam_id:uuid}/sessions/{session_id:uuid}/force-submit"): Rule(
        staff_owned(409),
        params={"exam_id": "graded_exam_id", "session_id": "graded_session_id"},
        body=lambda w: {"reason": "Checked"},
    ),
    ("GET", "/api/v1/exams/{exam_id:uuid}/announcements"): Rule(staff_owned(200)),
    ("POST", "/api/v1/exams/{exam_id:uuid}/announcements"): Rule(
        staff_owned(201), body=lambda w: {"message": "Checked"}
    ),
    ("GET", "/api/v1/exams/{exam_id:uuid}/audit"): Rule(staff_owned(200)),
    # Taking the exam.
    ("GET", "/api/v1/sessions/{session_id:uuid}"): Rule(student_owned(200)),
    ("PUT", "/api/v1/sessions/{session_id:uuid}/responses/{question_id:uuid}"): Rule(
        student_owned(200), body=_answer
    ),
    ("POST", "/api/v1/sessions/{session_id:uuid}/events"): Rule(
        student_owned(202),
        body=lambda w: {"events": [{"kind": "focus_lost", "at": now_iso(), "details": {}}]},
    ),
    ("GET", "/api/v1/sessions/{session_id:uuid}/events"): Rule(visible_to_all_parties(200)),
    ("POST", "/api/v1/sessions/{session_id:uuid}/submit"): Rule(
        student_owned(202), params={"session_id": "fresh:session"}
    ),
    ("GET", "/api/v1/sessions/{session_id:uuid}/review"): Rule(
        student_owned(200), params={"session_id": "graded_session_id"}
    ),
    ("GET", "/api/v1/sessions/{session_id:uuid}/activity"): Rule(staff_owned(200)),
    # A fresh session each: one run in flight per question is the limit (429).
    ("POST", "/api/v1/sessions/{session_id:uuid}/runs"): Rule(
        student_owned(202), params={"session_id": "fresh:session"}, body=_run
    ),
    ("POST", "/api/v1/sessions/{session_id:uuid}/submissions"): Rule(
        student_owned(202), params={"session_id": "fresh:session"}, body=_run
    ),
    ("GET", "/api/v1/submissions/{submission_id:uuid}"): Rule(visible_to_all_parties(200)),
    ("GET", "/api/v1/submissions/{submission_id:uuid}/events"): Rule(visible_to_all_parties(200)),
    # Grading and jobs.
    ("PUT", "/api/v1/responses/{response_id:uuid}/override"): Rule(
        staff_owned(200),
        body=lambda w: {"score": 1.0, "comment": "Checked by hand", "reason": "Marked again"},
    ),
    ("GET", "/api/v1/jobs/{job_id:uuid}"): Rule(visible_to_all_parties(200)),
    ("GET", "/api/v1/jobs/{job_id:uuid}/events"): Rule(visible_to_all_parties(200)),
    # The queues and retries are the deployment operator's (tests/security/test_operators.py);
    # an organization's admin is refused like everyone here.
    ("POST", "/api/v1/jobs/{job_id:uuid}/retry"): Rule(
        {**NOT_ALLOWED, ADMIN: 403}, params={"job_id": "fresh:failed_job"}
    ),
    # The dry run has not finished (no worker here): the owner gets as far as 409.
    ("POST", "/api/v1/jobs/{job_id:uuid}/apply"): Rule(
        staff_owned(409), params={"job_id": "dry_run_job_id"}
    ),
    ("POST", "/api/v1/qie/jobs"): Rule(
        staff_any(202), body=lambda w: {"topic": "arithmetic", "count": 2}
    ),
    ("GET", "/api/v1/qie/jobs"): Rule(staff_any(200)),
    ("GET", "/api/v1/qie/jobs/{job_id:uuid}/drafts"): Rule(
        staff_owned(200), params={"job_id": "qie_job_id"}
    ),
    ("POST", "/api/v1/qie/drafts/{question_id:uuid}/approve"): Rule(
        staff_owned(200), params={"question_id": "fresh:qie_draft"}
    ),
    ("POST", "/api/v1/qie/drafts/{question_id:uuid}/reject"): Rule(
        staff_owned(200), params={"question_id": "fresh:qie_draft"}
    ),
    ("GET", "/api/v1/ops/queues"): Rule({**NOT_ALLOWED, ADMIN: 403}),
    ("GET", "/api/v1/ops/queues/events"): Rule({**NOT_ALLOWED, ADMIN: 403}),
    ("POST", "/api/v1/ops/jobs/retry"): Rule(
        {**NOT_ALLOWED, ADMIN: 403}, body=lambda w: {"kind": "judge0_collect"}
    ),
    # Accounts (admins only): each change acts on a fresh user, not the world's.
    ("GET", "/api/v1/users"): Rule({**NOT_ALLOWED, ADMIN: 200}),
    ("POST", "/api/v1/users"): Rule(
        {**NOT_ALLOWED, ADMIN: 201},
        body=lambda w: {
            "email": f"made-{w.next_seq()}@college.edu",
            "name": "Made Here",
            "role": "student",
        },
    ),
    ("POST", "/api/v1/users/import"): Rule(
        {**NOT_ALLOWED, ADMIN: 200},
        body=lambda w: {"text": f"imported-{w.next_seq()}@college.edu,Imported\nnot-an-email,X\n"},
    ),
    ("POST", "/api/v1/users/invitations"): Rule(
        {**NOT_ALLOWED, ADMIN: 201},
        body=lambda w: {"email": f"invited-{w.next_seq()}@college.edu"},
    ),
    ("PATCH", "/api/v1/users/{user_id:uuid}"): Rule(
        {**NOT_ALLOWED, ADMIN: 200},
        params={"user_id": "fresh:user"},
        body=lambda w: {"role": "educator"},
    ),
    # The admin's own organization (no id in the path: no other can be named).
    ("GET", "/api/v1/organization"): Rule({**NOT_ALLOWED, ADMIN: 200}),
    ("PATCH", "/api/v1/organization"): Rule(
        {**NOT_ALLOWED, ADMIN: 200}, body=lambda w: {"time_zone": "UTC"}
    ),
    # Judge0 is not a browser: nobody's session counts, only a signed token.
    ("PUT", "/api/v1/judge0/callbacks/{token:str}"): Rule(
        everyone(403), params={"token": "literal:forged-token"}, body=lambda w: {}
    ),
    # The integrity review (a similar pair of the graded exam, planted by the world).
    ("GET", "/api/v1/exams/{exam_id:uuid}/integrity"): Rule(review_owned(200)),
    ("PUT", "/api/v1/exams/{exam_id:uuid}/integrity/thresholds"): Rule(
        review_owned(200), body=lambda w: {"paste_min_chars": 10}
    ),
    ("POST", "/api/v1/exams/{exam_id:uuid}/integrity/similarity"): Rule(review_owned(202)),
    ("GET", "/api/v1/exams/{exam_id:uuid}/integrity/pairs/{pair_id:uuid}"): Rule(
        review_owned(200), params={"exam_id": "graded_exam_id"}
    ),
    ("POST", "/api/v1/exams/{exam_id:uuid}/integrity/pairs/{pair_id:uuid}/decision"): Rule(
        review_owned(200),
        params={"exam_id": "graded_exam_id"},
        body=lambda w: {"decision": "reviewed", "note": "Checked"},
    ),
    ("GET", "/api/v1/exams/{exam_id:uuid}/integrity/sessions/{session_id:uuid}"): Rule(
        review_owned(200)
    ),
    ("POST", "/api/v1/exams/{exam_id:uuid}/integrity/sessions/{session_id:uuid}/decision"): Rule(
        review_owned(200), body=lambda w: {"decision": "dismissed"}
    ),
    ("GET", "/educator/exams/{exam_id:uuid}/integrity"): Rule(review_owned(200, 303), page=True),
    ("POST", "/educator/exams/{exam_id:uuid}/integrity/compare"): Rule(
        review_owned(303, 303), form=lambda w: {}, page=True
    ),
    ("POST", "/educator/exams/{exam_id:uuid}/integrity/thresholds"): Rule(
        review_owned(303, 303),
        form=lambda w: {
            "similarity_threshold": "50",
            "focus_lost_min_seconds": "0",
            "paste_min_chars": "0",
        },
        page=True,
    ),
    ("GET", "/educator/exams/{exam_id:uuid}/integrity/pairs/{pair_id:uuid}"): Rule(
        review_owned(200, 303), params={"exam_id": "graded_exam_id"}, page=True
    ),
    ("POST", "/educator/exams/{exam_id:uuid}/integrity/pairs/{pair_id:uuid}"): Rule(
        review_owned(303, 303),
        params={"exam_id": "graded_exam_id"},
        form=lambda w: {"decision": "reviewed", "note": "Checked"},
        page=True,
    ),
    ("GET", "/educator/exams/{exam_id:uuid}/integrity/sessions/{session_id:uuid}"): Rule(
        review_owned(200, 303), page=True
    ),
    ("POST", "/educator/exams/{exam_id:uuid}/integrity/sessions/{session_id:uuid}"): Rule(
        review_owned(303, 303), form=lambda w: {"decision": "escalated"}, page=True
    ),
    # The API reference is public.
    ("GET", "/schema"): Rule(everyone(200)),
    ("GET", "/schema/openapi.json"): Rule(everyone(200)),
    ("GET", "/schema/openapi.yaml"): Rule(everyone(200)),
    ("GET", "/schema/openapi.yml"): Rule(everyone(200)),
    ("GET", "/schema/swagger"): Rule(everyone(200)),
    ("GET", "/schema/elements"): Rule(everyone(200)),
    ("GET", "/schema/redoc"): Rule(everyone(200)),
    ("GET", "/schema/rapidoc"): Rule(everyone(200)),
    ("GET", "/schema/oauth2-redirect.html"): Rule(everyone(200)),
    ("GET", "/schema/{path:str}"): Rule(everyone(404), params={"path": "literal:nowhere"}),
    # The browser's pages.
    # The landing page for visitors; signed-in users go on to their own pages.
    ("GET", "/"): Rule({**everyone(303), ANON: 200}, page=True),
    ("GET", "/talk-to-us"): Rule(everyone(200), page=True),
    # Anyone may ask; a well-formed request from anyone is stored.
    ("POST", "/talk-to-us"): Rule(
        everyone(303),
        form=lambda w: {
            "institution": "Matrix College",
            "contact_name": "Ada Matrix",
            "email": f"ada-{w.next_seq()}@college.edu",
            "size": "under_100",
        },
        page=True,
    ),
    # The installable app: the same for everyone.
    ("GET", "/manifest.webmanifest"): Rule(everyone(200)),
    ("GET", "/sw.js"): Rule(everyone(200)),
    ("GET", "/offline"): Rule(everyone(200), page=True),
    ("GET", "/sign-in"): Rule({**everyone(303), ANON: 200}, page=True),
    # The step back from Google sign-in: shows only the way on.
    ("GET", "/signed-in"): Rule(everyone(200), page=True),
    ("POST", "/sign-in"): Rule(
        everyone(401),
        form=lambda w: {"email": f"nobody-{w.next_seq()}@college.edu", "password": "wrong"},
        own_browser=True,
        page=True,
    ),
    ("POST", "/sign-out"): Rule(everyone(303), own_browser=True, page=True),
    # An invitation link is public; one that does not exist is refused in words (410).
    ("GET", "/join/{token:str}"): Rule(
        everyone(410), params={"token": "literal:no-such-invitation"}, page=True
    ),
    ("POST", "/join/{token:str}"): Rule(
        everyone(410),
        params={"token": "literal:no-such-invitation"},
        form=lambda w: {"name": "N", "password": "password123", "password_again": "password123"},
        page=True,
    ),
    ("POST", "/sign-out-everywhere"): Rule(everyone(303), own_account=True, page=True),
    ("GET", "/account"): Rule(
        {ANON: 303, STU: 200, OSTU: 200, EDU: 200, OEDU: 200, ADMIN: 200}, page=True
    ),
    ("GET", "/exams"): Rule({**student_page(200), OSTU: 200}, page=True),
    ("GET", "/exams/{exam_id:uuid}"): Rule(student_page(200), page=True),
    # Resumes the running session and goes to its page.
    ("POST", "/exams/{exam_id:uuid}/start"): Rule(student_page(303), page=True),
    ("GET", "/sessions/{session_id:uuid}"): Rule(student_page(200), page=True),
    ("GET", "/sessions/{session_id:uuid}/review"): Rule(
        student_page(200), params={"session_id": "graded_session_id"}, page=True
    ),
    # Question generation.
    ("GET", "/educator/generate"): Rule(educator_page(200, other=200), page=True),
    ("POST", "/educator/generate"): Rule(
        educator_page(303, other=303),
        form=lambda w: {"topic": "arithmetic", "kinds": "numeric", "count": "2"},
        page=True,
    ),
    ("GET", "/educator/generate/{job_id:uuid}"): Rule(
        educator_page(200), params={"job_id": "qie_job_id"}, page=True
    ),
    ("GET", "/educator/generate/{job_id:uuid}/drafts"): Rule(
        educator_page(200), params={"job_id": "qie_job_id"}, page=True
    ),
    ("POST", "/educator/generate/drafts/{question_id:uuid}/approve"): Rule(
        educator_page(303), params={"question_id": "fresh:qie_draft"}, page=True
    ),
    ("POST", "/educator/generate/drafts/{question_id:uuid}/reject"): Rule(
        educator_page(303), params={"question_id": "fresh:qie_draft"}, page=True
    ),
    # The queues' pages: the deployment's operators only (not an organization's admin).
    ("GET", "/operator/queues"): Rule(operator_page(403), page=True),
    ("GET", "/operator/queues/live"): Rule(operator_page(403), page=True),
    ("POST", "/operator/queues/jobs/{job_id:uuid}/retry"): Rule(
        operator_page(403), params={"job_id": "fresh:failed_job"}, page=True
    ),
    ("POST", "/operator/queues/retry-all"): Rule(
        operator_page(403), form=lambda w: {"kind": "judge0_collect"}, page=True
    ),
    # The deployment's operators only: an organization's admin is refused too.
    ("GET", "/operator/onboarding"): Rule(operator_page(403), page=True),
    ("GET", "/operator/users"): Rule(operator_page(200), page=True),
    ("GET", "/operator/audit"): Rule(operator_page(200), page=True),
    ("GET", "/operator/organization"): Rule(operator_page(200), page=True),
    ("POST", "/operator/organization"): Rule(
        operator_page(303),
        form=lambda w: {
            "name": "Matrix college",
            "time_zone": "UTC",
            "duration_minutes": "60",
            "attempts_allowed": "1",
            "release_policy": "manual",
        },
        page=True,
    ),
    # The deployment's organizations: operators only (not an organization's admin).
    ("GET", "/operator/organizations"): Rule(operator_page(403), page=True),
    ("POST", "/operator/users"): Rule(
        operator_page(303),
        form=lambda w: {
            "email": f"made-{w.next_seq()}@college.edu",
            "name": "Made Here",
            "role": "student",
        },
        page=True,
    ),
    ("POST", "/operator/users/invite"): Rule(
        operator_page(200),
        form=lambda w: {"invite_email": f"invited-{w.next_seq()}@college.edu"},
        page=True,
    ),
    ("POST", "/operator/users/import"): Rule(
        operator_page(200),
        form=lambda w: {"csv": f"imported-{w.next_seq()}@college.edu,Imported"},
        page=True,
    ),
    ("POST", "/operator/users/{user_id:uuid}/role"): Rule(
        operator_page(303),
        params={"user_id": "fresh:user"},
        form=lambda w: {"role": "educator"},
        page=True,
    ),
    ("POST", "/operator/users/{user_id:uuid}/active"): Rule(
        operator_page(303),
        params={"user_id": "fresh:user"},
        form=lambda w: {"active": "false"},
        page=True,
    ),
    # The educator's results, regrade and release pages.
    ("GET", "/educator/exams/{exam_id:uuid}/results"): Rule(educator_page(200), page=True),
    ("GET", "/educator/exams/{exam_id:uuid}/results/{session_id:uuid}"): Rule(
        educator_page(200), page=True
    ),
    ("POST", "/educator/exams/{exam_id:uuid}/results/{session_id:uuid}/override"): Rule(
        educator_page(303),
        params={"exam_id": "graded_exam_id", "session_id": "graded_session_id"},
        form=lambda w: {"response_id": w.ids["response_id"], "score": "1", "reason": "Checked"},
        page=True,
    ),
    ("GET", "/educator/exams/{exam_id:uuid}/regrade"): Rule(educator_page(200), page=True),
    ("POST", "/educator/exams/{exam_id:uuid}/regrade"): Rule(
        educator_page(303), params={"exam_id": "fresh:published_exam"}, form=lambda w: {}, page=True
    ),
    # The dry run has not finished (no worker here): the owner gets as far as 409.
    ("POST", "/educator/exams/{exam_id:uuid}/regrade/apply"): Rule(
        educator_page(409),
        params={"exam_id": "graded_exam_id"},
        form=lambda w: {"job_id": w.ids["dry_run_job_id"]},
        page=True,
    ),
    ("GET", "/educator/exams/{exam_id:uuid}/release"): Rule(educator_page(200), page=True),
    ("POST", "/educator/exams/{exam_id:uuid}/release"): Rule(
        educator_page(303), form=lambda w: {}, page=True
    ),
    ("POST", "/educator/exams/{exam_id:uuid}/release/policy"): Rule(
        educator_page(303), form=lambda w: {"release_policy": "manual"}, page=True
    ),
    # The exam builder.
    ("GET", "/educator/exams"): Rule(staff_page(200), page=True),
    ("GET", "/educator/exams/new"): Rule(staff_page(200), page=True),
    ("POST", "/educator/exams/new"): Rule(
        staff_page(303), page=True, form=lambda w: _exam_form("Made in the browser")
    ),
    ("GET", "/educator/exams/{exam_id:uuid}"): Rule(staff_owned_page(200), page=True),
    ("POST", "/educator/exams/{exam_id:uuid}"): Rule(
        staff_owned_page(303),
        params={"exam_id": "fresh:draft_exam"},
        page=True,
        form=lambda w: _exam_form("Renamed in the browser"),
    ),
    ("POST", "/educator/exams/{exam_id:uuid}/items"): Rule(
        staff_owned_page(303),
        params={"exam_id": "fresh:draft_exam"},
        page=True,
        form=lambda w: {"action": "points"},
    ),
    ("POST", "/educator/exams/{exam_id:uuid}/enrollments"): Rule(
        staff_owned_page(200),
        page=True,
        form=lambda w: {"roster": f"{w.emails[STU]}, 5"},
    ),
    ("POST", "/educator/exams/{exam_id:uuid}/enrollments/remove"): Rule(
        staff_owned_page(303),
        page=True,
        # Removing who is not enrolled is done already: back to the list.
        form=lambda w: {"email": "nobody-enrolled@college.edu"},
    ),
    ("POST", "/educator/exams/{exam_id:uuid}/publish"): Rule(
        staff_owned_page(303), params={"exam_id": "fresh:draft_exam"}, page=True
    ),
    # The question bank's pages.
    ("GET", "/educator/questions"): Rule(staff_page(200), page=True),
    ("GET", "/educator/questions/new"): Rule(staff_page(200), page=True),
    ("POST", "/educator/questions/new"): Rule(staff_page(303), page=True, form=lambda w: {}),
    ("POST", "/educator/questions/markdown"): Rule(
        staff_page(200), page=True, form=lambda w: {"prompt": "**Bold**"}
    ),
    ("GET", "/educator/questions/{question_id:uuid}"): Rule(staff_owned_page(200), page=True),
    ("POST", "/educator/questions/{question_id:uuid}/bank"): Rule(
        staff_owned_page(303),
        params={"question_id": "spare_question_id"},
        page=True,
        form=lambda w: {"bank_id": w.ids["bank_id"]},
    ),
    ("POST", "/educator/questions/banks"): Rule(
        staff_page(303), page=True, form=lambda w: {"bank_name": f"Bank {w.next_seq()}"}
    ),
    ("POST", "/educator/questions/banks/{bank_id:uuid}"): Rule(
        staff_owned_page(303), page=True, form=lambda w: {"sharing": "private"}
    ),
    ("POST", "/educator/questions/{question_id:uuid}"): Rule(
        staff_owned_page(303),
        params={"question_id": "spare_question_id"},
        page=True,
        form=lambda w: _mcq_form(),
    ),
    # A trial without a solution is told so on the question's page.
    ("POST", "/educator/questions/{question_id:uuid}/try"): Rule(
        staff_owned_page(422),
        params={"question_id": "coding_question_id"},
        page=True,
        form=lambda w: {"language": "python", "source": ""},
    ),
    ("GET", "/educator/questions/{question_id:uuid}/try/{trial_id:uuid}"): Rule(
        staff_owned_page(200),
        params={"question_id": "trial_question_id", "trial_id": "trial_id"},
        page=True,
    ),
    ("GET", "/educator/questions/{question_id:uuid}/preview"): Rule(
        staff_owned_page(200), page=True
    ),
    # The live monitor page and its forms.
    ("GET", "/educator/exams/{exam_id:uuid}/monitor"): Rule(educator_page(200), page=True),
    ("POST", "/educator/exams/{exam_id:uuid}/monitor/extend"): Rule(
        educator_page(303), form=lambda w: {"minutes": "1", "extend_reason": "Checked"}, page=True
    ),
    ("POST", "/educator/exams/{exam_id:uuid}/monitor/announce"): Rule(
        educator_page(303), form=lambda w: {"message": "Checked"}, page=True
    ),
    # The graded session has ended: the owner's form comes back with the 409 in words.
    ("POST", "/educator/exams/{exam_id:uuid}/monitor/force-submit"): Rule(
        educator_page(409),
        params={"exam_id": "graded_exam_id"},
        form=lambda w: {"force_session_id": w.ids["graded_session_id"], "force_reason": "x"},
        page=True,
    ),
    ("GET", "/static/{file_path:path}"): Rule(
        everyone(200), params={"file_path": "literal:" + STYLESHEET}, page=True
    ),
}

IGNORED_METHODS = {"OPTIONS", "HEAD"}
_PARAM = re.compile(r"\{(\w+):\w+\}")


def app_routes(app: Litestar) -> set[tuple[str, str]]:
    """(method, path) for every handler the app serves, from its own route table."""
    return {
        (method, route.path)
        for route in app.routes
        for method in getattr(route, "methods", ())
        if method not in IGNORED_METHODS
    }


def test_every_route_has_a_rule(app: Litestar) -> None:
    served = app_routes(app)
    missing = sorted(served - RULES.keys())
    stale = sorted(RULES.keys() - served)
    assert not missing, f"routes without a rule in the role matrix: {missing}"
    assert not stale, f"rules for routes the app no longer serves: {stale}"


async def _resolve(world: World, rule: Rule, path: str) -> str:
    async def value(name: str) -> str:
        source = rule.params.get(name, PARAMS.get(name, name))
        if source.startswith("fresh:"):
            return await world.fresh(source.removeprefix("fresh:"))
        if source.startswith("literal:"):
            return source.removeprefix("literal:")
        return world.ids[source]

    resolved = path
    for name in _PARAM.findall(path):
        resolved = re.sub(r"\{" + name + r":\w+\}", await value(name), resolved)
    return resolved


async def _call(
    client: httpx.AsyncClient, method: str, url: str, body: Any, *, page: bool = False
) -> tuple[int, str]:
    """The status, and what is wrong with the error body if anything."""
    kwargs: dict[str, Any] = {} if body is None else {"data" if page else "json": body}
    # Streamed, so that an SSE endpoint answers with its status without being read to the end.
    async with client.stream(method, url, follow_redirects=not page, **kwargs) as response:
        problem = ""
        if response.status_code >= 400:
            await response.aread()
            problem = _page_problem(response) if page else error_shape_problem(response)
        return response.status_code, problem


def _page_problem(response: httpx.Response) -> str:
    """Empty when an error of a page is a page: HTML, in words, no trace."""
    content_type = response.headers.get("content-type", "")
    if not content_type.startswith("text/html"):
        return f"content-type {content_type!r}, not a page"
    if "Traceback" in response.text or '{"error"' in response.text:
        return f"the page shows internals: {response.text[:200]!r}"
    return ""


async def test_role_matrix(world: World, app: Litestar) -> None:
    wrong: list[str] = []
    for method, path in sorted(app_routes(app)):
        rule = RULES[(method, path)]
        for role in ROLES:
            if rule.own_account:
                client = await world.browser_of_new_account(role)
            elif rule.own_browser:
                client = await world.browser(role)
            else:
                client = world.clients[role]
            url = await _resolve(world, rule, path)
            body = rule.form(world) if rule.form else rule.body(world) if rule.body else None
            status, problem = await _call(client, method, url, body, page=rule.page)
            if status != rule.expect[role] or problem:
                wrong.append(
                    f"{method} {path} as {role}: {status}, expected {rule.expect[role]} {problem}"
                )
    assert not wrong, "\n".join(wrong)
