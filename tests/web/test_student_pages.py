"""A student in a real browser: sign in, My exams, the lobby, Start, sign out.

Each scenario checks what the database (or the sign-in store) holds afterwards,
and audits every page it sees with axe-core (see conftest.py).
"""

from __future__ import annotations

import re
import uuid

from playwright.async_api import Browser, BrowserContext, Page, expect
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession

from safexam.auth.signins import SIGNIN_COOKIE
from safexam.core.settings import Settings
from safexam.demo import DEMO_PASSWORD, EXAM_TITLE, DemoSummary, load_demo
from tests.factories import make_exam, make_question, make_user
from tests.helpers import rows
from tests.web.conftest import audit, check_context, new_context, path_of


async def sign_in(page: Page, email: str, password: str = DEMO_PASSWORD) -> None:
    await page.goto("/sign-in")
    await audit(page)
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Password").fill(password)
    await page.get_by_role("button", name="Sign in").click()


async def test_a_wrong_password_is_told_in_words(page: Page, db: AsyncSession) -> None:
    demo = await load_demo(db)
    await page.goto("/")
    await audit(page)
    await page.get_by_role("link", name="Sign in").first.click()
    assert path_of(page) == "/sign-in"
    await expect(page.get_by_role("heading", name="Sign in", level=1)).to_be_visible()
    await audit(page, "sign-in")

    await sign_in(page, demo.student_emails[0], "not the password")
    await expect(page.get_by_role("alert")).to_have_text(
        "Wrong email or password. Check both and try again."
    )
    # The email is kept, the password is not, and the focus waits in the password field.
    await expect(page.get_by_label("Email")).to_have_value(demo.student_emails[0])
    await expect(page.get_by_label("Password")).to_have_value("")
    await expect(page.get_by_label("Password")).to_be_focused()
    await audit(page, "sign-in-error")
    assert await rows(db, "SELECT 1 FROM exam_sessions") == []


async def test_sign_in_open_the_lobby_and_start(page: Page, db: AsyncSession) -> None:
    demo = await load_demo(db)
    await sign_in(page, demo.student_emails[0])
    await expect(page.get_by_role("heading", name="My exams", level=1)).to_be_visible()
    assert path_of(page) == "/exams"
    await expect(page.get_by_role("heading", name="Open now")).to_be_visible()
    card = page.get_by_role("listitem").filter(has_text=EXAM_TITLE)
    await expect(card).to_contain_text("30 minutes")
    await expect(card).to_contain_text("0 of 1 used")
    await audit(page, "my-exams")

    await page.get_by_role("link", name=EXAM_TITLE).click()
    assert path_of(page) == f"/exams/{demo.exam_id}"
    await expect(page.get_by_role("heading", name="What is recorded for integrity")).to_be_visible()
    await expect(page.get_by_text("When you paste text, with its length")).to_be_visible()
    await audit(page, "lobby")

    await page.get_by_role("button", name="Start exam").click()
    await expect(page.get_by_role("heading", name="Question 1")).to_be_visible()
    sessions = await rows(
        db,
        "SELECT s.id, s.status, u.email FROM exam_sessions s JOIN users u ON u.id = s.user_id",
    )
    assert [(row.status, row.email) for row in sessions] == [("active", demo.student_emails[0])]
    assert path_of(page) == f"/sessions/{sessions[0].id}"
    await expect(page.get_by_role("heading", name=EXAM_TITLE, level=1)).to_be_visible()
    await expect(page.get_by_text("2 + 2 = ?")).to_be_visible()
    await audit(page, "exam")

    # Back in the lobby the running attempt is resumed, never a second one started.
    await page.goto(f"/exams/{demo.exam_id}")
    await expect(page.get_by_text("In progress", exact=True)).to_be_visible()
    await audit(page, "lobby-in-progress")
    await page.get_by_role("button", name="Resume exam").click()
    assert path_of(page) == f"/sessions/{sessions[0].id}"
    await audit(page)
    assert len(await rows(db, "SELECT 1 FROM exam_sessions")) == 1


async def _tab_to(page: Page, name: str, limit: int = 25) -> None:
    """Press Tab until the focused element's text is ``name``."""
    for _ in range(limit):
        await page.keyboard.press("Tab")
        text = await page.evaluate("document.activeElement.textContent.trim()")
        if text == name:
            return
    raise AssertionError(f"{name!r} is not reachable with Tab")


async def test_keyboard_alone_from_sign_in_to_the_exam(page: Page, db: AsyncSession) -> None:
    demo = await load_demo(db)
    await page.goto("/sign-in")
    await audit(page)
    # The email field has the focus on arrival.
    await page.keyboard.type(demo.student_emails[1])
    await page.keyboard.press("Tab")
    await expect(page.get_by_label("Password")).to_be_focused()
    await page.keyboard.type(DEMO_PASSWORD)
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("heading", name="My exams", level=1)).to_be_visible()
    await audit(page)

    # The skip link comes first and moves the focus to the main content.
    await page.keyboard.press("Tab")
    await expect(page.get_by_role("link", name="Skip to main content")).to_be_focused()
    await expect(page.get_by_role("link", name="Skip to main content")).to_be_in_viewport()
    await page.keyboard.press("Enter")
    await expect(page.locator("main")).to_be_focused()
    await _tab_to(page, EXAM_TITLE)
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("heading", name=EXAM_TITLE, level=1)).to_be_visible()
    await audit(page)
    await _tab_to(page, "Start exam")
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("heading", name="Question 1")).to_be_visible()
    await audit(page)
    started = await rows(db, "SELECT u.email FROM exam_sessions s JOIN users u ON u.id = s.user_id")
    assert [row.email for row in started] == [demo.student_emails[1]]


async def test_another_students_pages_are_not_found(
    browser: Browser, server: str, context: BrowserContext, db: AsyncSession
) -> None:
    demo = await load_demo(db)
    first = await context.new_page()
    await sign_in(first, demo.student_emails[0])
    await audit(first)
    await first.goto(f"/exams/{demo.exam_id}")
    await audit(first)
    await first.get_by_role("button", name="Start exam").click()
    await expect(first.get_by_role("heading", name="Question 1")).to_be_visible()
    exam_page = path_of(first)
    await audit(first)
    # An exam the second student is not enrolled in.
    educator = await make_user(db, "educator")
    other_exam = await make_exam(db, educator, [await make_question(db, educator)])

    second_context = await new_context(browser, server)
    try:
        second = await second_context.new_page()
        await sign_in(second, demo.student_emails[1])
        await expect(second.get_by_role("heading", name="My exams", level=1)).to_be_visible()
        await audit(second)
        for path in (exam_page, f"/exams/{other_exam.id}", f"/exams/{uuid.uuid4()}"):
            response = await second.goto(path)
            assert response is not None and response.status == 404, path
            await expect(second.get_by_role("heading", name="Page not found")).to_be_visible()
            await expect(second.get_by_text("belongs to another account")).to_be_visible()
            await audit(second, "not-found")
        # Nothing was started for the second student on the way.
        started = await rows(
            db, "SELECT u.email FROM exam_sessions s JOIN users u ON u.id = s.user_id"
        )
        assert [row.email for row in started] == [demo.student_emails[0]]
    finally:
        await second_context.close()
    check_context(second_context)


async def test_sign_out(
    page: Page, db: AsyncSession, redis: Redis, settings: Settings, context: BrowserContext
) -> None:
    demo = await load_demo(db)
    await sign_in(page, demo.student_emails[0])
    await expect(page.get_by_role("heading", name="My exams", level=1)).to_be_visible()
    await audit(page)
    cookie = next(c for c in await context.cookies() if c["name"] == SIGNIN_COOKIE)
    key = f"{settings.redis_namespace}:sessions:{cookie['value']}"
    assert await redis.exists(key) == 1

    await page.get_by_role("button", name="Sign out").click()
    await expect(page.get_by_role("status")).to_have_text("You have signed out.")
    assert path_of(page) == "/sign-in?signed_out=1"
    await audit(page, "signed-out")
    # The record is gone from the store, not only the cookie from the browser.
    assert await redis.exists(key) == 0

    # Signed out, a student page leads to sign-in and back to it afterwards.
    await page.goto(f"/exams/{demo.exam_id}")
    assert path_of(page) == f"/sign-in?next=%2Fexams%2F{demo.exam_id}"
    await audit(page)
    await page.get_by_label("Email").fill(demo.student_emails[0])
    await page.get_by_label("Password").fill(DEMO_PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    assert path_of(page) == f"/exams/{demo.exam_id}"
    await audit(page)


async def test_times_in_the_students_zone_and_reflow(
    browser: Browser, server: str, db: AsyncSession
) -> None:
    demo: DemoSummary = await load_demo(db)
    context = await new_context(
        browser, server, timezone_id="America/New_York", viewport={"width": 320, "height": 700}
    )
    try:
        page = await context.new_page()
        await sign_in(page, demo.student_emails[0])
        await expect(page.get_by_role("heading", name="My exams", level=1)).to_be_visible()
        await expect(
            page.get_by_text("Times are shown in your time zone (America/New_York).")
        ).to_be_visible()
        closes = page.locator("time[data-local]").first
        await expect(closes).to_contain_text(re.compile(r"\bE[SD]T\b"))
        await audit(page, "my-exams-narrow")
        for path in ("/exams", f"/exams/{demo.exam_id}", "/no-such-page"):
            await page.goto(path)
            await audit(page)
            overflow = await page.evaluate(
                "document.documentElement.scrollWidth - document.documentElement.clientWidth"
            )
            assert overflow <= 0, f"{path} scrolls sideways at 320 CSS pixels"
    finally:
        await context.close()
    check_context(context)


async def test_the_audit_fails_a_page_with_a_violation(browser: Browser, server: str) -> None:
    """axe-core really runs: a field stripped of its label fails the audit."""
    context = await new_context(browser, server)
    try:
        page = await context.new_page()
        await page.goto("/sign-in")
        await page.evaluate("document.querySelector('label[for=email]').remove()")
        try:
            await audit(page)
        except AssertionError as failure:
            assert "'id': 'label'" in str(failure), failure
        else:
            raise AssertionError("an unlabelled field passed the audit")
    finally:
        await context.close()
