"""The front door and the installable app in Chromium: the landing page, "Talk to us"
and the operators' list (axe-core on each), Chromium's own installability check,
and the service worker with the network off on a started exam."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import BrowserContext, Page, async_playwright, expect
from sqlalchemy.ext.asyncio import AsyncSession

from safexam.web.front.pwa import shell_urls
from tests.factories import PASSWORD, make_user
from tests.helpers import rows
from tests.web.conftest import (
    CHROMIUM,
    CHROMIUM_ARGS,
    audit,
    check_context,
    instrument,
    path_of,
    sign_in_as,
)
from tests.web.test_exam_page import (
    kept_on_device,
    question,
    saved,
    start_exam,
    status,
    until_nothing_kept,
)

# Sent as the page loaded ("Saved 10:42:13"), or already saved when it rendered.
SAVED_OR_SHOWN = re.compile(r"^(Saved \d{1,2}:\d{2}:\d{2}|All answers shown are saved\.)")

WORKER_READY = """async () => {
  const registration = await navigator.serviceWorker.ready;
  for (let i = 0; i < 100 && !navigator.serviceWorker.controller; i++) {
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return Boolean(registration.active && navigator.serviceWorker.controller);
}"""


@pytest.fixture
async def profile(tmp_path: Path, server: str) -> AsyncIterator[BrowserContext]:
    """A browser with a profile on disk: Chromium refuses to install anything from an
    incognito context, which every ordinary Playwright context is."""
    async with async_playwright() as playwright:
        context = await playwright.chromium.launch_persistent_context(
            str(tmp_path / "profile"),
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_ARGS,
            base_url=server,
            locale="en-US",
        )
        await instrument(context)
        yield context
        await context.close()
    check_context(context)


async def test_a_visitor_finds_the_app_installable_and_asks_to_talk(
    profile: BrowserContext, db: AsyncSession
) -> None:
    page = profile.pages[0] if profile.pages else await profile.new_page()
    await page.goto("/")
    await expect(
        page.get_by_role("heading", name="Online exams your college can afford to run", level=1)
    ).to_be_visible()
    await audit(page, "landing")
    assert not [c for c in await profile.cookies() if c["domain"] == "127.0.0.1"]

    # Chromium's own check (Lighthouse 12 no longer audits installability).
    assert await page.evaluate(WORKER_READY)
    cdp = await profile.new_cdp_session(page)
    found = await cdp.send("Page.getInstallabilityErrors")
    assert found["installabilityErrors"] == [], found

    await page.get_by_role("link", name="Talk to us").first.click()
    await expect(page.get_by_role("heading", name="Talk to us", level=1)).to_be_visible()
    await audit(page, "talk-to-us")
    await page.get_by_label("Institution").fill("Harbour Chess Club")
    await page.get_by_label("Your name").fill("Tomas Reyes")
    await page.get_by_label("Email").fill("tomas@harbour")
    await page.get_by_role("button", name="Send request").click()
    await expect(page.get_by_role("alert")).to_have_text(
        "2 fields need attention: see the messages beside them."
    )
    await expect(page.get_by_label("Email")).to_have_accessible_description(
        "We answer here, and use it for nothing else. "
        "Enter an email address, like name@college.edu."
    )
    await expect(page.get_by_label("Size")).to_have_attribute("aria-invalid", "true")
    await audit(page, "talk-to-us-errors")
    await page.get_by_label("Email").fill("tomas@harbour.club")
    await page.get_by_label("Size").select_option(label="Fewer than 100 students")
    await page.get_by_role("button", name="Send request").click()
    await expect(page.get_by_role("status")).to_contain_text("your request has reached us")
    await audit(page)
    assert [
        tuple(r) for r in await rows(db, "SELECT institution, size FROM onboarding_requests")
    ] == [("Harbour Chess Club", "under_100")]

    operator = await make_user(db, "operator", name="Otto Operator")
    await sign_in_as(page, operator.email, PASSWORD)
    await page.get_by_role("link", name="Onboarding").click()
    await expect(page.get_by_role("heading", name="Onboarding requests", level=1)).to_be_visible()
    await expect(page.get_by_role("row", name="Harbour Chess Club")).to_contain_text(
        "tomas@harbour.club"
    )
    await audit(page, "operator-onboarding")

    # Signed in, / leads on to their own pages, though this browser was shown the
    # landing page there as a visitor minutes ago (it varies by Cookie).
    await page.get_by_role("link", name="SafeExam", exact=True).click()
    await expect(page.get_by_role("heading", name="Queues", level=1)).to_be_visible()
    assert path_of(page) == "/operator/queues"
    await audit(page)


async def test_offline_a_reload_shows_the_offline_page_and_the_exam_keeps_its_answers(
    browser: Any, server: str, db: AsyncSession
) -> None:
    context = await browser.new_context(base_url=server, locale="en-US", service_workers="allow")
    await instrument(context)
    try:
        await _offline_exam(context, db)
    finally:
        await context.close()
    check_context(context)


async def _offline_exam(context: BrowserContext, db: AsyncSession) -> None:
    page: Page = await context.new_page()
    session_id = await start_exam(page, db)
    assert await page.evaluate(WORKER_READY)
    exam_url = path_of(page)

    await context.set_offline(True)
    await question(page, 1).get_by_role("radio", name="4", exact=True).check()
    await expect(status(page)).to_have_text("Offline: 1 answer kept on this device.")
    assert await saved(db, session_id) == {}

    # The page itself needs the network: the worker never answers it from a cache.
    await page.reload()
    await expect(page.get_by_role("heading", name="You are offline", level=1)).to_be_visible()
    assert path_of(page) == exam_url
    await audit(page, "offline")
    assert [r["answer"] for r in await kept_on_device(page)] == [{"choice": "b"}]

    # Back online, the offline page loads the exam again and its outbox sends.
    await context.set_offline(False)
    # At once on the "online" event, or a few seconds later if that came too early.
    await expect(page.get_by_role("heading", name="Question 1")).to_be_visible(timeout=15_000)
    await until_nothing_kept(page)
    await expect(status(page)).to_have_text(SAVED_OR_SHOWN)
    await expect(question(page, 1).get_by_role("radio", name="4", exact=True)).to_be_checked()
    await audit(page)
    assert await saved(db, session_id) == {"mcq_single": ({"choice": "b"}, 1)}
    # What the worker keeps: hashed static files and the offline page, never a page or an answer.
    kept_paths: list[str] = await page.evaluate(
        """async () => {
            const paths = [];
            for (const name of await caches.keys()) {
              for (const request of await (await caches.open(name)).keys()) {
                paths.push(new URL(request.url).pathname);
              }
            }
            return paths;
        }"""
    )
    assert "/offline" in kept_paths
    assert all(p == "/offline" or p.startswith("/static/") for p in kept_paths), kept_paths
    assert len(kept_paths) == len(shell_urls()) + 1

    # Signing out leaves nothing on the device; an answer still waiting is asked about first.
    await page.evaluate(
        """() => new Promise((resolve, reject) => {
            const open = indexedDB.open("safexam", 1);
            open.onsuccess = () => {
              const tx = open.result.transaction("outbox", "readwrite");
              tx.objectStore("outbox").put({sessionId: "elsewhere", questionId: "q",
                                            answer: {text: "kept"}, clientSeq: 1});
              tx.oncomplete = () => resolve(true);
              tx.onerror = () => reject(tx.error);
            };
        })"""
    )
    asked: list[str] = []

    async def refuse(dialog: Any) -> None:
        asked.append(dialog.message)
        await dialog.dismiss()

    page.once("dialog", refuse)
    await page.get_by_role("button", name="Sign out").click()
    for _ in range(50):
        if asked:
            break
        await asyncio.sleep(0.05)
    assert asked == [
        "1 answer has not reached the server yet. Signing out deletes it from this device. "
        "Sign out anyway?"
    ]
    assert path_of(page) == exam_url
    assert len(await kept_on_device(page)) == 1

    page.once("dialog", lambda dialog: asyncio.ensure_future(dialog.accept()))
    async with page.expect_navigation():
        await page.get_by_role("button", name="Sign out").click()
    assert path_of(page) == "/sign-in?signed_out=1"
    await audit(page)
    assert await kept_on_device(page) == []
    assert await page.evaluate("caches.keys()") == []
    assert (
        await page.evaluate("navigator.serviceWorker.getRegistrations().then((r) => r.length)") == 0
    )
