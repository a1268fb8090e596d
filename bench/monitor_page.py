"""The monitor page itself in Chromium while 500 students save every 2 s (250 saves/s).

Starts its own system (bench/pages.py), enrols and starts 500 students over the
API, opens /educator/exams/{id}/monitor as the educator in Debian's Chromium,
sorts by last save (the order that moves most), and counts the page's long
tasks (PerformanceObserver "longtask") over 20 s of saving::

    .venv/bin/python bench/monitor_page.py

Traffic goes to 127.0.0.1 only; the run is bounded (about 3 minutes).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import sys
import time
import uuid
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from loadgen import Recorder, StudentClient, run_in_processes
from monitor import client_process
from pages import PASSWORD, create_accounts, create_exam, kind_questions, private_system
from playwright.async_api import async_playwright

#: Collects every long task (over 50 ms of main-thread work) the page has.
OBSERVE = """
window.__long = [];
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) window.__long.push(e.duration);
}).observe({ type: "longtask", buffered: true });
"""

STUDENTS = 500
WATCH_S = 20.0


async def watch_monitor(url: str, educator: str, exam_id: str, start_at: float) -> dict[str, Any]:
    """Open the monitor as the educator, then record its long tasks while students save."""
    result: dict[str, Any] = {}
    async with async_playwright() as p:
        browser = await p.chromium.launch(
            executable_path="/usr/bin/chromium",
            headless=True,
            args=["--no-sandbox", "--disable-gpu"],
        )
        try:
            page = await browser.new_page(base_url=url)
            await page.add_init_script(OBSERVE)
            await page.goto("/sign-in")
            await page.get_by_label("Email").fill(educator)
            await page.get_by_label("Password").fill(PASSWORD)
            async with page.expect_navigation():
                await page.get_by_role("button", name="Sign in").click()
            began = time.monotonic()
            await page.goto(f"/educator/exams/{exam_id}/monitor")
            await page.wait_for_selector("#monitor-connection[data-state=live]")
            result["load_s"] = time.monotonic() - began
            # Saves have been flowing for a few seconds before the count starts.
            await asyncio.sleep(max(0.0, start_at + 5 - time.monotonic()))
            await page.evaluate("window.__long = []")
            await page.select_option("#monitor-sort", "last_save")
            await asyncio.sleep(WATCH_S)
            result["long"] = await page.evaluate("window.__long")
            result["rows"] = await page.locator("#monitor-rows tr").count()
            first = page.locator('#monitor-rows [data-cell="answered"]').first
            result["answered"] = await first.text_content()
        finally:
            await browser.close()
    return result


async def main() -> None:
    async with private_system(web_workers=2, pools={}) as system:
        run = uuid.uuid4().hex[:8]
        accounts = await create_accounts(system.database_url, run, STUDENTS)
        educator = StudentClient(system.url, Recorder())
        await educator.sign_in(accounts["educator"], PASSWORD)
        choices = [q for q in kind_questions(4, coding=False) if q["kind"] == "mcq_single"]
        exam_id = await create_exam(educator, "Probe", choices, accounts["students"])
        await educator.close()
        emails = accounts["students"]
        # Three client processes, each saving for its third of the students.
        shards = [(system.url, exam_id, emails[i::3], 2.0, WATCH_S + 5, 1) for i in range(3)]
        loop = asyncio.get_running_loop()
        watching: list[concurrent.futures.Future[dict[str, Any]]] = []

        def on_ready() -> float:
            at = time.monotonic() + 0.5
            coroutine = watch_monitor(system.url, accounts["educator"], exam_id, at)
            watching.append(asyncio.run_coroutine_threadsafe(coroutine, loop))
            return at

        await asyncio.to_thread(
            run_in_processes,
            client_process,
            shards,
            ready_timeout_s=900,
            total_timeout_s=300,
            on_all_ready=on_ready,
        )
        result = await asyncio.wrap_future(watching[0])
        long: list[float] = result["long"]
        blocking = sum(max(0.0, d - 50) for d in long)
        print(
            f"page live in {result['load_s']:.2f} s; rows {result['rows']};"
            f" first answered {result['answered']!r}"
        )
        print(
            f"long tasks in {WATCH_S:.0f} s at {STUDENTS // 2} saves/s: {len(long)},"
            f" total {sum(long):.0f} ms, max {max(long, default=0):.0f} ms;"
            f" blocking (over 50 ms) {blocking:.0f} ms"
        )


if __name__ == "__main__":
    asyncio.run(main())
