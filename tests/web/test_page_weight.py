"""The exam page's weight budget: what a browser downloads for it, gzipped, without the editor.

The page is loaded in Chromium with the cache off and every response counted
(the document, stylesheets, scripts, modules they import, icons), each body
gzipped at level 9 as the server sends static files. A heavy dependency added
to the page, or the editor loaded where no coding question is, breaks the
budget. bench/page_weight.py prints the same figures per request.
"""

from __future__ import annotations

import asyncio
import gzip
from typing import Any

import pytest
from playwright.async_api import Page, Response, expect
from sqlalchemy.ext.asyncio import AsyncSession

from safexam.auth.models import User
from safexam.web.assets import assets
from tests.factories import PASSWORD, enroll, make_exam, make_question, make_user
from tests.helpers import rows
from tests.web.conftest import audit, path_of

BUDGET_BYTES = 60 * 1024
KINDS = ("mcq_single", "mcq_single", "mcq_multi", "numeric", "short_text")
EDITOR = "js/coding.js"
DATA = {"fetch", "xhr", "eventsource", "websocket"}


async def gzipped_load(opener: Page, path: str) -> dict[str, int]:
    """Open ``path`` in a new tab with the cache disabled; gzipped bytes per file it loaded.

    A new tab, so nothing of the page before it (an open event stream) is
    counted; API calls the page makes (fetch, event streams) are data, not weight.
    """
    page = await opener.context.new_page()
    cdp = await page.context.new_cdp_session(page)
    await cdp.send("Network.enable")
    await cdp.send("Network.setCacheDisabled", {"cacheDisabled": True})
    responses: list[tuple[Response, asyncio.Task[bytes]]] = []

    def keep(response: Response) -> None:
        if response.request.resource_type in DATA:
            return
        # The body is read at once: Chromium drops it once anything navigates.
        responses.append((response, asyncio.ensure_future(response.body())))

    page.on("response", keep)
    try:
        await page.goto(path, wait_until="load")
        # Modules the page imports later, with import(), count too.
        await page.wait_for_load_state("networkidle")
        # A coding question scrolled into view: the page may load its editor only when shown.
        coding = page.locator('section[data-kind="coding"]')
        if await coding.count():
            await coding.first.scroll_into_view_if_needed()
            # Until no response has come for half a second (at most 10 s).
            seen = -1
            for _ in range(40):
                if seen == len(responses):
                    break
                seen = len(responses)
                await asyncio.sleep(0.5)
        await audit(page)
    finally:
        page.remove_listener("response", keep)
        await cdp.detach()
        await page.close()
    sizes: dict[str, int] = {}
    for response, read in responses:
        assert response.ok, f"{response.url}: {response.status}"
        body = await read
        key = response.url.split("://", 1)[1].split("/", 1)[1]
        sizes["/" + key] = len(gzip.compress(body, compresslevel=9, mtime=0))
    return sizes


async def start_exam(page: Page, db: AsyncSession, kinds: tuple[str, ...]) -> tuple[User, str]:
    """A student enrolled in an exam of ``kinds`` signs in and starts it; (student, page path)."""
    educator = await make_user(db, "educator")
    student = await make_user(db)
    questions = [await make_question(db, educator, kind) for kind in kinds]
    exam = await make_exam(db, educator, list(questions), title="Every kind")
    await enroll(db, exam, student)

    await page.goto("/sign-in")
    await audit(page)
    await page.get_by_label("Email").fill(student.email)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("heading", name="My exams", level=1)).to_be_visible()
    await audit(page)
    await page.goto(f"/exams/{exam.id}")
    await audit(page)
    await page.get_by_role("button", name="Start exam").click()
    await page.wait_for_url("**/sessions/*")
    await audit(page)
    return student, path_of(page)


async def test_the_exam_page_without_a_coding_question_fits_the_budget(
    page: Page, db: AsyncSession
) -> None:
    student, exam_page = await start_exam(page, db, KINDS)
    sizes = await gzipped_load(page, exam_page)
    total = sum(sizes.values())
    assert any(p.endswith(".css") for p in sizes) and exam_page in sizes, sizes
    assert total <= BUDGET_BYTES, f"{total / 1024:.1f} KB gzipped > 60 KB: {sizes}"
    assert not any(p.startswith("/static/js/coding.") for p in sizes), sizes
    # The page measured is the student's running attempt, with every question on it.
    sessions: list[Any] = await rows(
        db, "SELECT id, status FROM exam_sessions WHERE user_id = :u", u=student.id
    )
    assert [(f"/sessions/{s.id}", s.status) for s in sessions] == [(exam_page, "active")]
    for number in range(1, len(KINDS) + 1):
        await expect(page.get_by_role("heading", name=f"Question {number}")).to_be_visible()


async def test_the_editor_is_loaded_with_a_coding_question(page: Page, db: AsyncSession) -> None:
    if EDITOR not in assets.urls:
        pytest.skip(f"{EDITOR} is not in the static files yet")
    student, exam_page = await start_exam(page, db, ("mcq_single", "coding"))
    sizes = await gzipped_load(page, exam_page)
    assert assets.url(EDITOR) in sizes, sizes
    sessions: list[Any] = await rows(
        db, "SELECT id FROM exam_sessions WHERE user_id = :u AND status = 'active'", u=student.id
    )
    assert [f"/sessions/{s.id}" for s in sessions] == [exam_page]


async def test_the_editor_waits_until_its_question_is_near(page: Page, db: AsyncSession) -> None:
    """A coding question far down the page: its editor loads when the student gets near it."""
    await start_exam(page, db, ("mcq_single",) * 8 + ("coding",))
    editor: list[str] = []
    page.on(
        "request",
        lambda request: editor.append(request.url) if "/static/js/coding." in request.url else None,
    )
    await page.reload(wait_until="load")
    await page.wait_for_load_state("networkidle")
    await audit(page)
    assert editor == [], "the editor loaded while its question was two screens away"
    coding = page.locator('section[data-kind="coding"]')
    await page.get_by_role("link", name="Question 9").first.click()
    await expect(coding.get_by_role("button", name="Run")).to_be_visible()
    assert len(editor) == 1, editor
