"""A real server and Debian's Chromium, driven by Playwright, for the browser tests.

One browser per test module (starting one takes seconds), a fresh context
(cookies, storage) per test. axe-core is injected into every page; each test
audits every page it lands on with :func:`audit`, and a page left unaudited,
a Content-Security-Policy violation or an uncaught script error fails the test.

``SAFEXAM_SCREENSHOTS=<folder>`` saves a PNG of each audited page there.
"""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, BrowserContext, Page, async_playwright

from safexam.core.settings import Settings
from tests.live import live_server

CHROMIUM = "/usr/bin/chromium"
# Headless, and nothing that calls out: this machine (and CI's) has no network
# beyond the package registries, and a browser that retries lookups is slow.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
AXE = Path(__file__).parent / "vendor" / "axe.min.js"
SCREENSHOTS = os.environ.get("SAFEXAM_SCREENSHOTS")
TIMEOUT_MS = 15_000

_AXE_RUN = """async () => {
  const result = await axe.run(document, { resultTypes: ["violations"] });
  return result.violations.map((v) => ({
    id: v.id,
    impact: v.impact,
    help: v.help,
    nodes: v.nodes.slice(0, 5).map((n) => n.target.join(" ")),
  }));
}"""


@dataclass
class Watch:
    """What a test's pages did that must not happen, and what is left to audit."""

    problems: list[str] = field(default_factory=list)
    unaudited: list[str] = field(default_factory=list)


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} is missing: `make setup` installs Debian's chromium package")
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        yield launched
        await launched.close()


@pytest.fixture(scope="module")
async def server(settings: Settings) -> AsyncIterator[str]:
    """The app on a free port of 127.0.0.1, against the test database and Redis."""
    async with live_server(settings) as url:
        yield url


async def new_context(browser: Browser, server: str, **options: Any) -> BrowserContext:
    """A context whose pages carry axe-core and report what a test must not let pass.

    The service worker is blocked unless a test allows it
    (``service_workers="allow"``, as tests/web/test_installable_app.py does):
    requests it answers from its cache never reach ``route`` handlers, which
    many tests use to fail or delay a request.
    """
    options.setdefault("service_workers", "block")
    context = await browser.new_context(base_url=server, locale="en-US", **options)
    return await instrument(context)


async def instrument(context: BrowserContext) -> BrowserContext:
    """Give ``context`` axe-core on every page and the watch :func:`check_context` reads."""
    context.set_default_timeout(TIMEOUT_MS)
    await context.add_init_script(path=str(AXE))
    watch = Watch()
    context.watch = watch  # type: ignore[attr-defined]

    def on_page(page: Page) -> None:
        def on_console(message: Any) -> None:
            if "Content Security Policy" in message.text or "Content-Security-Policy" in (
                message.text
            ):
                watch.problems.append(f"{page.url}: {message.text}")

        def on_load(loaded: Page) -> None:
            watch.unaudited.append(loaded.url)

        page.on("console", on_console)
        page.on("pageerror", lambda error: watch.problems.append(f"{page.url}: {error}"))
        page.on("load", on_load)

    context.on("page", on_page)
    return context


def check_context(context: BrowserContext) -> None:
    watch: Watch = context.watch  # type: ignore[attr-defined]
    assert not watch.problems, watch.problems
    assert not watch.unaudited, f"pages never audited: {watch.unaudited}"


@pytest.fixture
async def context(browser: Browser, server: str) -> AsyncIterator[BrowserContext]:
    made = await new_context(browser, server)
    yield made
    await made.close()
    check_context(made)


@pytest.fixture
async def page(context: BrowserContext) -> Page:
    return await context.new_page()


async def audit(page: Page, name: str | None = None) -> None:
    """No axe-core violation on the page as it stands (and a screenshot when asked)."""
    await page.wait_for_load_state("load")
    violations = await page.evaluate(_AXE_RUN)
    assert violations == [], f"{page.url}: {violations}"
    watch: Watch = page.context.watch  # type: ignore[attr-defined]
    watch.unaudited[:] = [url for url in watch.unaudited if url != page.url]
    if SCREENSHOTS and name:
        folder = Path(SCREENSHOTS)
        folder.mkdir(parents=True, exist_ok=True)
        # A full-page picture shows sticky bars wherever the viewport last was;
        # a viewport as tall as the page shows them where the page puts them.
        viewport = page.viewport_size
        if viewport is None:
            await page.screenshot(path=str(folder / f"web-{name}.png"), full_page=True)
            return
        height = await page.evaluate("document.documentElement.scrollHeight")
        await page.set_viewport_size({"width": viewport["width"], "height": height})
        await page.screenshot(path=str(folder / f"web-{name}.png"))
        await page.set_viewport_size(viewport)


def path_of(page: Page) -> str:
    """The page's path and query, without the server's origin."""
    return re.sub(r"^https?://[^/]+", "", page.url)


async def sign_in_as(page: Page, email: str, password: str) -> None:
    """Sign in through the form, as anyone would, and wait for the page it leads to."""
    await page.goto("/sign-in")
    await audit(page)
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Password").fill(password)
    async with page.expect_navigation():
        await page.get_by_role("button", name="Sign in").click()
