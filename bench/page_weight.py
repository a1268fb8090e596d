"""Page weight of the exam page: what a student's browser downloads, gzipped, with and without
the code editor.

Starts the API on a database of its own (see bench/pages.py), or drives a
running one (``--url`` with ``--database-url`` for the accounts)::

    .venv/bin/python bench/page_weight.py
    .venv/bin/python bench/page_weight.py --url http://127.0.0.1:8123 \\
        --database-url postgresql://postgres@127.0.0.1:5432/safexam_bench

An educator makes two exams through the API: one with a question of every
kind but coding (four single-choice, one multiple-choice, one numeric, one
short text), and the same with a coding question added. A student signs in
through the sign-in page and starts both in Chromium (``/usr/bin/chromium``,
driven by Playwright); each exam page is then loaded once more in a fresh
context (same cookies, empty cache) while every response is recorded,
including modules loaded later by ``import()``, until the network is idle.

Printed per page: each request (what started it, bytes on the wire, bytes,
gzip -9 of the body: what the server sends for static files, and what a
compressing proxy would make of the HTML), the gzipped total, and which
requests the coding question added: the editor. Checked: the page without a
coding question weighs at most ``--budget-kb`` KB gzipped (60) and loads no
editor module; with one, the page's editor module (``data-coding-module``) is
loaded. Exit status 1 when a check fails.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import os
import sys
import time
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from loadgen import Recorder, StudentClient, check_local_url
from pages import (
    PASSWORD,
    create_accounts,
    create_exam,
    kind_questions,
    private_system,
)

CHROMIUM = "/usr/bin/chromium"
# As tests/web/conftest.py: headless, and nothing that calls out.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
KB = 1024
# What the page asks the API for once loaded is data, not the page's weight.
DATA = {"fetch", "xhr", "eventsource", "websocket"}


@dataclass
class Loaded:
    """One response the page received."""

    url: str
    kind: str
    status: int
    wire: int
    raw: int
    gzipped: int
    initiator: str


@dataclass
class PageLoad:
    url: str
    loads: list[Loaded] = field(default_factory=list)
    coding_module: str | None = None

    @property
    def files(self) -> list[Loaded]:
        return [item for item in self.loads if item.kind not in DATA]

    @property
    def gzipped(self) -> int:
        return sum(item.gzipped for item in self.files)

    def paths(self) -> set[str]:
        return {item.url for item in self.files}


def _path(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


async def record_page(browser: Any, storage: Any, base_url: str, path: str) -> PageLoad:
    """Load ``path`` in a fresh context (cold cache, ``storage``'s cookies); every response."""
    context = await browser.new_context(base_url=base_url, storage_state=storage)
    try:
        page = await context.new_page()
        # Chromium's own view of who asked for each request: the document, or a module's import().
        cdp = await context.new_cdp_session(page)
        await cdp.send("Network.enable")
        initiators: dict[str, str] = {}

        def on_request(event: dict[str, Any]) -> None:
            initiator = event.get("initiator", {})
            frames = (initiator.get("stack") or {}).get("callFrames") or []
            source = initiator.get("url") or (frames[0]["url"] if frames else "")
            who = initiator.get("type", "?") + (f" {_path(source)}" if source else "")
            initiators.setdefault(event["request"]["url"], who)

        cdp.on("Network.requestWillBeSent", on_request)
        responses: list[Any] = []
        # Bodies are read at once: Chromium drops them once anything navigates.
        page.on(
            "response",
            lambda response: responses.append((response, asyncio.ensure_future(response.body()))),
        )
        await page.goto(path, wait_until="load")
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
        load = PageLoad(url=path)
        load.coding_module = await page.evaluate(
            "document.getElementById('exam')?.dataset.codingModule ?? null"
        )
        for response, read in responses:
            try:
                body = await read if response.status < 300 else b""
            except Exception:  # a redirect's or a failed response's body: nothing to count
                body = b""
            sizes = await response.request.sizes()
            load.loads.append(
                Loaded(
                    url=_path(response.url),
                    kind=response.request.resource_type,
                    status=response.status,
                    wire=sizes["responseBodySize"],
                    raw=len(body),
                    gzipped=len(gzip.compress(body, compresslevel=9, mtime=0)) if body else 0,
                    initiator=initiators.get(response.url, "?"),
                )
            )
        return load
    finally:
        await context.close()


async def sign_in_and_start(
    browser: Any, base_url: str, email: str, exam_ids: list[str]
) -> tuple[Any, list[str]]:
    """Sign in through the sign-in page, start each exam from its lobby; (cookies, page paths)."""
    context = await browser.new_context(base_url=base_url)
    try:
        page = await context.new_page()
        await page.goto("/sign-in")
        await page.get_by_label("Email").fill(email)
        await page.get_by_label("Password").fill(PASSWORD)
        await page.get_by_role("button", name="Sign in").click()
        await page.wait_for_url("**/exams")
        paths = []
        for exam_id in exam_ids:
            await page.goto(f"/exams/{exam_id}")
            await page.get_by_role("button", name="Start exam").click()
            await page.wait_for_url("**/sessions/*")
            paths.append(_path(page.url))
        return await context.storage_state(), paths
    finally:
        await context.close()


def print_load(title: str, load: PageLoad, only: set[str] | None = None) -> None:
    print(f"\n{title}: {load.url}")
    print(f"  {'request':<58} {'type':<10} {'st':>3} {'wire':>8} {'bytes':>8} {'gzip':>8}  from")
    for item in load.loads:
        if only is not None and item.url not in only:
            continue
        print(
            f"  {item.url[:58]:<58} {item.kind[:10]:<10} {item.status:>3} {item.wire:>8} "
            f"{item.raw:>8} {item.gzipped:>8}  {item.initiator}"
        )
    chosen = [i for i in load.files if only is None or i.url in only]
    data = [i for i in load.loads if i.kind in DATA]
    if data and only is None:
        print(f"  ({len(data)} API requests of the page after it loaded are data, not counted)")
    print(
        f"  total: {len(chosen)} requests, {sum(i.wire for i in chosen) / KB:.1f} KB on the wire, "
        f"{sum(i.raw for i in chosen) / KB:.1f} KB, {sum(i.gzipped for i in chosen) / KB:.1f} KB"
        " gzipped"
    )


async def measure(url: str, database_url: str, budget_kb: float) -> int:
    run = uuid.uuid4().hex[:8]
    accounts = await create_accounts(database_url, run, 1)
    educator = StudentClient(url, Recorder())
    try:
        await educator.sign_in(accounts["educator"], PASSWORD)
        without = await create_exam(
            educator,
            f"Page weight {run}: every kind but coding",
            kind_questions(coding=False),
            accounts["students"],
        )
        with_coding = await create_exam(
            educator,
            f"Page weight {run}: every kind",
            kind_questions(coding=True),
            accounts["students"],
        )
    finally:
        await educator.close()

    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        try:
            storage, (plain_path, coding_path) = await sign_in_and_start(
                browser, url, accounts["students"][0], [without, with_coding]
            )
            plain = await record_page(browser, storage, url, plain_path)
            coding = await record_page(browser, storage, url, coding_path)
        finally:
            await browser.close()

    print_load("exam page, every kind but coding (no editor)", plain)
    print_load("exam page with a coding question", coding)
    added = coding.paths() - plain.paths() - {coding.url}
    editor = [i for i in coding.files if i.url in added]
    print_load("  of which added by the coding question (the editor)", coding, only=added)

    failures = []
    total_kb = plain.gzipped / KB
    print(f"\nwithout the editor: {total_kb:.1f} KB gzipped (budget {budget_kb:.0f} KB)")
    editor_kb = sum(i.gzipped for i in editor) / KB
    print(f"the editor: {editor_kb:.1f} KB gzipped in {len(editor)} requests")
    if total_kb > budget_kb:
        failures.append(f"the exam page without the editor weighs {total_kb:.1f} KB gzipped")
    if not coding.coding_module:
        failures.append("the exam page names no editor module (no data-coding-module)")
    else:
        if coding.coding_module not in coding.paths():
            failures.append(f"the coding question's page did not load {coding.coding_module}")
        if coding.coding_module in plain.paths():
            failures.append("the page without a coding question loaded the editor module")
        only_there = coding.coding_module not in plain.paths()
        loaded = coding.coding_module in coding.paths()
        print(f"editor module {coding.coding_module}: loaded {loaded}, only there {only_there}")
    for failure in failures:
        print(f"FAIL: {failure}")
    return 1 if failures else 0


async def main_async(args: argparse.Namespace) -> int:
    if args.url:
        check_local_url(args.url)
        if not args.database_url:
            print("--url needs --database-url (or SAFEXAM_DATABASE_URL)", file=sys.stderr)
            return 2
        return await measure(args.url, args.database_url, args.budget_kb)
    started = time.perf_counter()
    async with private_system(web_workers=1, pools={}) as system:
        print(f"API started on {system.url} in {time.perf_counter() - started:.1f} s")
        return await measure(system.url, system.database_url, args.budget_kb)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", help="a running API (default: start one)")
    parser.add_argument("--database-url", default=os.environ.get("SAFEXAM_DATABASE_URL"))
    parser.add_argument("--budget-kb", type=float, default=60.0)
    return asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
