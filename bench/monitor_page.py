"""The monitor page itself in Chromium while 500 students save every 2 s (250 saves/s).

Starts its own system (bench/pages.py), enrols and starts 500 students over the
API, opens /educator/exams/{id}/monitor as the educator in Debian's Chromium,
sorts by last save (the order that moves most), and counts the page's long
tasks (PerformanceObserver "longtask") over 20 s of saving::

    .venv/bin/python bench/monitor_page.py

Traffic goes to 127.0.0.1 only; the run is bounded (about 3 minutes).
"""
import asyncio, os, sys, time, uuid
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from loadgen import Recorder, StudentClient, run_in_processes
from pages import PASSWORD, create_accounts, create_exam, kind_questions, private_system
from monitor import client_process
from playwright.async_api import async_playwright

OBSERVE = """
window.__long = [];
new PerformanceObserver((list) => { for (const e of list.getEntries()) window.__long.push(e.duration); })
  .observe({ type: "longtask", buffered: true });
"""

async def main():
    async with private_system(web_workers=2, pools={}) as system:
        run = uuid.uuid4().hex[:8]
        accounts = await create_accounts(system.database_url, run, 500)
        educator = StudentClient(system.url, Recorder())
        await educator.sign_in(accounts["educator"], PASSWORD)
        exam_id = await create_exam(educator, "Probe", [q for q in kind_questions(4, coding=False) if q["kind"] == "mcq_single"], accounts["students"])
        await educator.close()
        emails = accounts["students"]
        shards = [(system.url, exam_id, emails[i::3], 2.0, 25.0, 1) for i in range(3)]
        result = {}
        loop = asyncio.get_running_loop()

        async def browse(start_at):
            async with async_playwright() as p:
                browser = await p.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=["--no-sandbox", "--disable-gpu"])
                page = await browser.new_page(base_url=system.url)
                await page.add_init_script(OBSERVE)
                await page.goto("/sign-in")
                await page.get_by_label("Email").fill(accounts["educator"])
                await page.get_by_label("Password").fill(PASSWORD)
                async with page.expect_navigation():
                    await page.get_by_role("button", name="Sign in").click()
                t0 = time.monotonic()
                await page.goto(f"/educator/exams/{exam_id}/monitor")
                await page.wait_for_selector("#monitor-connection[data-state=live]")
                result["load_s"] = time.monotonic() - t0
                await asyncio.sleep(max(0, start_at + 5 - time.monotonic()))
                await page.evaluate("window.__long = []")
                await page.select_option("#monitor-sort", "last_save")
                await asyncio.sleep(20)
                result["long"] = await page.evaluate("window.__long")
                result["rows"] = await page.locator("#monitor-rows tr").count()
                result["answered"] = await page.locator('#monitor-rows [data-cell="answered"]').first.text_content()
                                await browser.close()

        futures = []
        def on_ready():
            at = time.monotonic() + 0.5
            futures.append(asyncio.run_coroutine_threadsafe(browse(at), loop))
            return at
        await asyncio.to_thread(run_in_processes, client_process, shards, ready_timeout_s=900, total_timeout_s=300, on_all_ready=on_ready)
        await asyncio.wrap_future(futures[0])
        long = result["long"]
        print(f"page live in {result['load_s']:.2f} s; rows {result['rows']}; first answered {result['answered']!r}")
        print(f"long tasks in 20 s at 250 saves/s: {len(long)}, total {sum(long):.0f} ms, max {max(long, default=0):.0f} ms; blocking (over 50 ms) {sum(max(0, d - 50) for d in long):.0f} ms")

if __name__ == "__main__":
    asyncio.run(main())
