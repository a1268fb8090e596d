"""The pages without a browser: headers, caching, static files, sign-in's sentences,
errors in words, and what each page shows of the services behind it."""

from __future__ import annotations

import html
import json
import re
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from unittest.mock import patch

import msgspec
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from safexam.app import create_app
from safexam.auth.models import User
from safexam.core.errors import unavailable
from safexam.core.settings import Settings
from safexam.demo import DEMO_PASSWORD, load_demo
from safexam.exams.kinds.registry import KINDS
from safexam.web.assets import STATIC_DIR, Assets, assets
from safexam.web.educator.questions import kind_template
from safexam.web.headers import CONTENT_SECURITY_POLICY, DOCS_CONTENT_SECURITY_POLICY
from safexam.web.layout import TEMPLATES_DIR
from tests.factories import PASSWORD, enroll, make_exam, make_question, make_user
from tests.helpers import login, rows

PAGE = {"Accept": "text/html,application/xhtml+xml"}


def assert_secured(response: Any) -> None:
    assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "same-origin"


async def form_token(client: Any, path: str = "/sign-in") -> str:
    """The CSRF token a page's forms carry (its cookie is set by the same response)."""
    page = await client.get(path, headers=PAGE)
    found = re.search(r'name="_csrf_token" value="([^"]+)"', page.text)
    assert found, page.text
    return found.group(1)


async def post_sign_in(client: Any, email: str, password: str, **extra: str) -> Any:
    token = await form_token(client)
    return await client.post(
        "/sign-in",
        data={"_csrf_token": token, "email": email, "password": password, **extra},
        headers=PAGE,
        follow_redirects=False,
    )


# ---------------------------------------------------------------- headers and files


async def test_the_api_reference_pages_may_run_their_viewer_and_nothing_else_may(
    client: Any,
) -> None:
    """Litestar's reference pages start a CDN viewer from an inline script: the
    strict policy would leave them blank, so they get their own; the documents
    and every other response keep the strict one."""
    for path, host in (
        ("/schema", "https://cdn.redoc.ly"),
        ("/schema/redoc", "https://cdn.redoc.ly"),
        ("/schema/swagger", "https://cdn.jsdelivr.net"),
    ):
        response = await client.get(path)
        assert response.status_code == 200, path
        policy = response.headers["content-security-policy"]
        assert policy == DOCS_CONTENT_SECURITY_POLICY, path
        script_src = next(d for d in policy.split("; ") if d.startswith("script-src"))
        assert host in script_src and "'unsafe-inline'" in script_src, path
        assert host in response.text, path
        assert "frame-ancestors 'none'" in policy
    for path in ("/schema/openapi.json", "/schemas-are-not-docs", "/sign-in"):
        response = await client.get(path, headers=PAGE)
        assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY, path


async def test_every_kind_of_response_carries_the_security_headers(
    client: Any, db: AsyncSession
) -> None:
    student_user = await make_user(db)
    for path, headers in (
        ("/sign-in", PAGE),
        ("/api/v1/auth/csrf", {}),
        ("/api/v1/no-such-route", {}),
        ("/no-such-page", PAGE),
        ("/healthz", {}),
        (assets.url("css/app.css"), {}),
        ("/schema/openapi.json", {}),
    ):
        response = await client.get(path, headers=headers)
        assert_secured(response)
    await login(client, student_user.email)
    assert_secured(await client.get("/exams", headers=PAGE))
    # Authenticated JSON is never kept by a cache.
    for path in ("/api/v1/auth/me", "/api/v1/exams"):
        me = await client.get(path)
        assert me.status_code == 200 and me.headers["cache-control"] == "no-store", path
    # A refused request of the API, and a method no route allows.
    assert_secured(await client.post("/api/v1/exams", json={}))
    assert_secured(await client.delete("/sign-in"))


async def test_accepted_autosaves_carry_them_too(
    app: Litestar, make_client: Any, db: AsyncSession
) -> None:
    """Answered by the fast path, past the layer that adds them to other responses."""
    demo = await load_demo(db)
    client = await make_client()
    await login(client, demo.student_emails[0], DEMO_PASSWORD)
    started = await client.post(f"/api/v1/exams/{demo.exam_id}/sessions")
    session = started.json()
    fast = app.asgi_handler.app  # type: ignore[attr-defined]
    before = fast.served
    saved = await client.put(
        f"/api/v1/sessions/{session['id']}/responses/{session['questions'][0]['id']}",
        json={"answer": {"choice": "b"}, "client_seq": 1},
    )
    assert saved.status_code == 200, saved.text
    assert fast.served == before + 1
    assert_secured(saved)
    assert saved.headers["cache-control"] == "no-store"


async def test_static_files_have_hashed_names_and_are_immutable(client: Any) -> None:
    url = assets.url("css/app.css")
    assert re.fullmatch(r"/static/css/app\.[0-9a-f]{10}\.css", url), url
    response = await client.get(url, headers={"Accept-Encoding": "identity"})
    assert response.status_code == 200
    assert response.content == (STATIC_DIR / "css/app.css").read_bytes()
    assert response.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert response.headers["content-type"].startswith("text/css")
    zipped = await client.get(url, headers={"Accept-Encoding": "gzip"})
    assert zipped.headers["content-encoding"] == "gzip"
    assert zipped.content == response.content  # httpx decodes it
    # Only the hashed name exists: an old name can never serve new content.
    for wrong in ("/static/css/app.css", "/static/css/app.0000000000.css", "/static/../app.py"):
        assert (await client.get(wrong)).status_code == 404, wrong


def test_modules_import_each_other_by_hashed_names(tmp_path: Path) -> None:
    (tmp_path / "js/lib").mkdir(parents=True)
    (tmp_path / "js/lib/clock.js").write_text("export const now = () => 1;\n")
    (tmp_path / "js/timer.js").write_text(
        'import { now } from "./lib/clock.js";\nexport { now };\n'
        'const later = () => import("./lib/clock.js");\n'
    )
    (tmp_path / "js/exam.js").write_text("import './timer.js';\n")
    first = Assets(tmp_path)
    clock = first.url("js/lib/clock.js")
    timer = first.files[first.url("js/timer.js").removeprefix("/static/")].body.decode()
    assert f'from "{clock}"' in timer and f'import("{clock}")' in timer
    exam = first.files[first.url("js/exam.js").removeprefix("/static/")].body.decode()
    assert f"import '{first.url('js/timer.js')}'" in exam
    # A change deep down renames every module above it.
    (tmp_path / "js/lib/clock.js").write_text("export const now = () => 2;\n")
    second = Assets(tmp_path)
    for name in ("js/lib/clock.js", "js/timer.js", "js/exam.js"):
        assert second.url(name) != first.url(name), name
    (tmp_path / "js/broken.js").write_text('import "./missing.js";\n')
    with pytest.raises(ValueError, match=r"missing\.js"):
        Assets(tmp_path)


def test_vendored_bundles_are_served_as_built() -> None:
    url = assets.url("vendor/htmx.min.js").removeprefix("/static/")
    assert assets.files[url].body == (STATIC_DIR / "vendor/htmx.min.js").read_bytes()


def test_vendored_files_are_the_versions_package_json_pins() -> None:
    """`make assets` copies them from npm; a hand edit or a forgotten copy shows here."""
    root = TEMPLATES_DIR.parents[3]
    pinned = json.loads((root / "package.json").read_text())["devDependencies"]
    locked = json.loads((root / "package-lock.json").read_text())["packages"]
    for name, version in pinned.items():
        assert locked[f"node_modules/{name}"]["version"] == version, name
    assert pinned["htmx.org"].startswith("2.0.")
    htmx = (STATIC_DIR / "vendor/htmx.min.js").read_text()
    assert f'version:"{pinned["htmx.org"]}"' in htmx
    axe = (root / "tests/web/vendor/axe.min.js").read_text()[:100]
    assert axe.startswith(f"/*! axe v{pinned['axe-core']}\n")


def test_htmx_is_loaded_by_no_page_yet() -> None:
    url = assets.url("vendor/htmx.min.js")
    assert re.fullmatch(r"/static/vendor/htmx\.min\.[0-9a-f]{10}\.js", url)
    for template in TEMPLATES_DIR.rglob("*.html"):
        assert "htmx" not in template.read_text(), template


def test_templates_hold_no_inline_script_or_style() -> None:
    """The Content-Security-Policy would block them: behaviour and looks live in static/."""
    for template in TEMPLATES_DIR.rglob("*.html"):
        text = template.read_text()
        for tag in re.findall(r"<script\b[^>]*>", text):
            assert "src=" in tag, (template, tag)
        assert "<style" not in text, template
        assert not re.search(r"\sstyle=", text), template
        assert not re.search(r"\son[a-z]+=", text), template


async def test_pages_are_private_and_never_stored(client: Any, db: AsyncSession) -> None:
    demo = await load_demo(db)
    assert (await client.get("/sign-in", headers=PAGE)).headers["cache-control"] == (
        "private, no-store"
    )
    await login(client, demo.student_emails[0], DEMO_PASSWORD)
    for path in ("/exams", f"/exams/{demo.exam_id}"):
        response = await client.get(path, headers=PAGE)
        assert response.status_code == 200
        assert response.headers["cache-control"] == "private, no-store"
        assert response.headers["content-type"] == "text/html; charset=utf-8"


# ---------------------------------------------------------------- sign-in


async def test_the_front_door_leads_to_sign_in_or_my_exams(client: Any, db: AsyncSession) -> None:
    first = await client.get("/", headers=PAGE, follow_redirects=False)
    # A visitor gets the landing page, whose way in is the sign-in page.
    assert first.status_code == 200
    assert 'href="/sign-in"' in first.text
    away = await client.get("/exams?x=1", headers=PAGE, follow_redirects=False)
    assert (away.status_code, away.headers["location"]) == (303, "/sign-in?next=%2Fexams%3Fx%3D1")
    user = await make_user(db)
    signed = await post_sign_in(client, user.email, PASSWORD, next="/exams?x=1")
    assert (signed.status_code, signed.headers["location"]) == (303, "/exams?x=1")
    home = await client.get("/", headers=PAGE, follow_redirects=False)
    assert (home.status_code, home.headers["location"]) == (303, "/exams")


FROM_ANOTHER_SITE = {**PAGE, "Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate"}


async def test_arriving_from_another_site_takes_a_same_site_step(client: Any) -> None:
    """Such a navigation comes without the Strict cookie, signed in or not: the page
    moves on by a same-site navigation, which carries it, instead of asking to sign in."""
    # ("/" is the landing page for anyone without the cookie: tests/web/test_front_door.py.)
    for path in ("/exams?x=1", "/sign-in?next=%2Fexams"):
        step = await client.get(path, headers=FROM_ANOTHER_SITE, follow_redirects=False)
        assert step.status_code == 200, path
        assert f'href="{html.escape(path)}" data-continue' in step.text, step.text
        assert re.search(r'<script type="module" src="/static/js/continue\.\w+\.js">', step.text)
        assert step.headers["cache-control"] == "private, no-store"
    # That navigation is same-origin: no second step, the sign-in page as ever.
    same = {**PAGE, "Sec-Fetch-Site": "same-origin", "Sec-Fetch-Mode": "navigate"}
    again = await client.get("/exams?x=1", headers=same, follow_redirects=False)
    assert (again.status_code, again.headers["location"]) == (303, "/sign-in?next=%2Fexams%3Fx%3D1")
    # Forms and fetches from elsewhere get no step.
    fetch = {**PAGE, "Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "cors"}
    assert (await client.get("/exams", headers=fetch, follow_redirects=False)).status_code == 303


async def test_a_landing_elsewhere_is_refused(client: Any, db: AsyncSession) -> None:
    user = await make_user(db)
    signed = await post_sign_in(client, user.email, PASSWORD, next="//evil.example/x")
    assert signed.headers["location"] == "/"


async def test_sign_in_without_the_forms_token_is_refused_in_words(
    client: Any, db: AsyncSession
) -> None:
    user = await make_user(db)
    await client.get("/sign-in", headers=PAGE)
    response = await client.post(
        "/sign-in", data={"email": user.email, "password": PASSWORD}, headers=PAGE
    )
    assert response.status_code == 403
    assert "This form has expired" in response.text
    assert "safexam_session" not in client.cookies


async def test_too_many_attempts_say_how_long_to_wait(
    client: Any, db: AsyncSession, settings: Settings
) -> None:
    user = await make_user(db)
    for _ in range(settings.login_max_failures_per_email):
        wrong = await post_sign_in(client, user.email, "not the password")
        assert wrong.status_code == 401
        assert "Wrong email or password." in wrong.text
    limited = await post_sign_in(client, user.email, PASSWORD)
    assert limited.status_code == 429
    assert int(limited.headers["retry-after"]) > 0
    minutes = settings.login_failure_window_seconds // 60
    assert re.search(rf"Wait {minutes - 1}|Wait {minutes} minutes", limited.text), limited.text
    assert "then try again." in limited.text


async def test_a_disabled_account_is_told_so(client: Any, db: AsyncSession) -> None:
    user = await make_user(db)
    await db.execute(update(User).where(User.id == user.id).values(is_active=False))
    await db.commit()
    response = await post_sign_in(client, user.email, PASSWORD)
    assert response.status_code == 403
    assert "This account is disabled." in response.text
    empty = await post_sign_in(client, "", "")
    assert empty.status_code == 400
    assert "Enter your email and your password." in empty.text


async def test_google_sign_in_is_offered_only_when_configured(
    client: Any, settings: Settings
) -> None:
    assert "Sign in with Google" not in (await client.get("/sign-in", headers=PAGE)).text
    configured = create_app(msgspec.structs.replace(settings, oidc_client_id="client-id"))
    async with AsyncTestClient(configured, base_url="https://testserver.local") as other:
        page = await other.get("/sign-in?next=/exams", headers=PAGE)
    assert 'href="/api/v1/auth/oidc/login?next=%2Fexams"' in page.text
    assert "Sign in with Google" in page.text


async def test_sign_out_needs_the_forms_token(client: Any, db: AsyncSession) -> None:
    user = await make_user(db)
    await post_sign_in(client, user.email, PASSWORD)
    forged = await client.post("/sign-out", data={"_csrf_token": "forged"}, headers=PAGE)
    assert forged.status_code == 403
    assert (await client.get("/exams", headers=PAGE, follow_redirects=False)).status_code == 200
    token = await form_token(client, "/exams")
    out = await client.post(
        "/sign-out", data={"_csrf_token": token}, headers=PAGE, follow_redirects=False
    )
    assert (out.status_code, out.headers["location"]) == (303, "/sign-in?signed_out=1")
    assert (await client.get("/exams", headers=PAGE, follow_redirects=False)).status_code == 303


# ---------------------------------------------------------------- my exams and the lobby


async def test_my_exams_show_each_state_with_the_students_own_time(
    client: Any, db: AsyncSession
) -> None:
    educator = await make_user(db, "educator")
    me = await make_user(db)
    question = await make_question(db, educator)
    now = datetime.now(UTC)
    soon = await make_exam(
        db,
        educator,
        [question],
        title="Later",
        opens_at=now + timedelta(days=1),
        closes_at=now + timedelta(days=2),
    )
    open_now = await make_exam(
        db,
        educator,
        [question, {"tag": "none", "count": 2}],
        title="Now",
        duration_minutes=60,
        integrity={"require_fullscreen": True},
    )
    draft = await make_exam(db, educator, [question], title="Draft", status="draft")
    mine_not = await make_exam(db, educator, [question], title="Not mine")
    for exam in (soon, draft):
        await enroll(db, exam, me)
    await enroll(db, open_now, me, extra_minutes=15, time_multiplier=1.5)
    await enroll(db, mine_not, "someone-else@college.edu")
    await login(client, me.email)

    page = (await client.get("/exams", headers=PAGE)).text
    assert page.index("Open now") < page.index("Upcoming")
    assert "Later" in page and "Now" in page
    assert "Draft" not in page and "Not mine" not in page
    # 60 minutes x 1.5 + 15.
    assert "1 hour 45 minutes" in page
    assert "includes your extra time: 50% more time and 15 minutes more" in page
    opens = f"{soon.opens_at.astimezone(UTC):%Y-%m-%dT%H:%M:%S}Z"
    assert f'<time datetime="{opens}" data-local>' in page

    lobby = (await client.get(f"/exams/{open_now.id}", headers=PAGE)).text
    assert "<dt>Questions</dt><dd>3</dd>" in lobby
    assert "This exam is taken in full screen." in lobby
    assert "When you paste text, with its length (never the text itself)." in lobby
    assert "Start exam" in lobby
    upcoming = (await client.get(f"/exams/{soon.id}", headers=PAGE)).text
    assert "Come back then to start it." in upcoming
    assert "Start exam</button>" not in upcoming
    for hidden in (draft, mine_not):
        response = await client.get(f"/exams/{hidden.id}", headers=PAGE)
        assert response.status_code == 404
        assert "belongs to another account" in response.text


async def test_starting_a_closed_exam_says_so(client: Any, db: AsyncSession) -> None:
    educator = await make_user(db, "educator")
    me = await make_user(db)
    exam = await make_exam(db, educator, [await make_question(db, educator)])
    await enroll(db, exam, me)
    await login(client, me.email)
    token = await form_token(client, f"/exams/{exam.id}")
    await db.execute(
        update(type(exam))
        .where(type(exam).id == exam.id)
        .values(
            opens_at=datetime.now(UTC) - timedelta(hours=2),
            closes_at=datetime.now(UTC) - timedelta(hours=1),
        )
    )
    await db.commit()
    response = await client.post(
        f"/exams/{exam.id}/start", data={"_csrf_token": token}, headers=PAGE
    )
    assert response.status_code == 409
    assert "This exam has closed." in response.text
    assert await rows(db, "SELECT 1 FROM exam_sessions") == []


async def test_educators_are_told_the_student_pages_are_not_theirs(
    client: Any, db: AsyncSession
) -> None:
    educator = await make_user(db, "educator")
    await login(client, educator.email)
    home = await client.get("/", headers=PAGE, follow_redirects=False)
    assert (home.status_code, home.headers["location"]) == (303, "/educator/exams")
    response = await client.get("/exams", headers=PAGE)
    assert response.status_code == 403
    assert "This page is for students." in response.text


# ---------------------------------------------------------------- failures in words


@pytest.mark.parametrize(
    ("failure", "status", "sentence"),
    [
        (unavailable("database_unavailable"), 503, "Try again in 3 seconds."),
        (RuntimeError("secret internals"), 500, "Answers already saved are kept."),
    ],
)
async def test_failures_are_sentences_without_internals(
    client: Any, db: AsyncSession, failure: Exception, status: int, sentence: str
) -> None:
    me = await make_user(db)
    await login(client, me.email)
    with patch("safexam.web.student.exams.my_exam_details", side_effect=failure):
        response = await client.get("/exams", headers=PAGE)
    assert response.status_code == status
    assert response.headers["content-type"].startswith("text/html")
    assert sentence in response.text
    assert "secret internals" not in response.text and "Traceback" not in response.text


async def test_the_api_keeps_its_json_errors_even_for_a_browser(client: Any) -> None:
    response = await client.get("/api/v1/no-such-route", headers=PAGE)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    page = await client.get(f"/no-such-page/{uuid.uuid4()}", headers=PAGE)
    assert page.status_code == 404 and "Page not found" in page.text


def test_every_template_is_used() -> None:
    """A template nobody renders is dead weight (or a page someone forgot to route)."""
    web = TEMPLATES_DIR.parent
    sources = "".join(path.read_text() for path in web.rglob("*.py")) + "".join(
        path.read_text() for path in TEMPLATES_DIR.rglob("*.html")
    )
    # The exam page includes an answer template by the question's kind, and the
    # question form the fields of its kind.
    by_kind = {f"student/answer/{kind}.html" for kind in KINDS} | {
        kind_template(kind) for kind in KINDS
    }
    for template in TEMPLATES_DIR.rglob("*.html"):
        name = template.relative_to(TEMPLATES_DIR).as_posix()
        assert f'"{name}"' in sources or name in by_kind, name


def test_every_kind_has_an_answer_template() -> None:
    """A kind added to the registry without its inputs would break the exam page."""
    for kind in KINDS:
        assert (TEMPLATES_DIR / "student" / "answer" / f"{kind}.html").is_file(), kind


async def test_a_page_for_another_role_says_whose_it_is(client: Any, db: AsyncSession) -> None:
    student = await make_user(db, "student")
    await login(client, student.email)
    response = await client.get("/educator/generate", headers=PAGE)
    assert response.status_code == 403
    assert "This page is for educators." in response.text
    await client.post("/api/v1/auth/logout")
    educator = await make_user(db, "educator")
    await login(client, educator.email)
    response = await client.get("/operator/queues", headers=PAGE)
    assert response.status_code == 403
    assert "This page is for administrators." in response.text
