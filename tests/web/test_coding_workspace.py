"""The coding workspace in a real browser, on the real server, with a real judge worker.

A student types code with the keyboard in the editor, runs it on the visible
tests and on input of their own, submits it, and watches each test's status
arrive; the database then holds the runs, the submission and the autosaved
code. Every page is audited with axe-core (the editor included).
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest
from playwright.async_api import Page, expect
from sqlalchemy.ext.asyncio import AsyncSession

from safexam.coding.sandbox import bwrap_path
from tests.factories import (
    ADD_STARTER,
    PASSWORD,
    coding_body,
    exam_with_questions,
    make_session,
    make_user,
    move_deadline,
    paper_for,
)
from tests.helpers import ServiceUrls, rows
from tests.web.conftest import audit
from tests.workers_helper import running_worker

pytestmark = pytest.mark.skipif(bwrap_path() is None, reason="bubblewrap is not installed")

C_STARTER = "int add(int a, int b) {\n    return 0;\n}\n"
# The harness takes a tenth of the first number in seconds, so that the
# "slow" test is still running while the page already shows the first one passed.
SLOW_TEMPLATE = (
    "{{ SOURCE }}\nimport time\na, b = map(int, input().split())\n"
    "time.sleep(a / 10)\nprint(add(a, b))\n"
)
TESTS = [
    {"name": "small", "stdin": "1 2\n", "expected_output": "3\n", "points": 5},
    {"name": "slow", "stdin": "8 0\n", "expected_output": "8\n", "points": 5},
    {"name": "big", "stdin": "0 30\n", "expected_output": "30\n", "points": 5, "hidden": True},
]
# What the student's keystrokes leave in the editor: the editor indents the
# line after the colon by itself.
TYPED = "def add(a, b):\n    return a + b"

# Each change of the workspace's state as the server reported it (the data-coding-status
# attribute coding.js sets on the question from each SSE message).
_WATCH_STATUSES = """() => {
  window.codingStatuses = [];
  const section = document.querySelector('section[data-kind="coding"]');
  new MutationObserver(() => window.codingStatuses.push(section.dataset.codingStatus))
    .observe(section, { attributes: true, attributeFilter: ["data-coding-status"] });
}"""


async def _saved_answer(db: AsyncSession, want: dict[str, Any]) -> Any:
    """The autosaved answer once it is ``want`` (the outbox sends within moments)."""
    found: list[Any] = []
    for _ in range(100):
        found = await rows(db, "SELECT answer, client_seq FROM responses")
        if found and found[0].answer == want:
            return found[0]
        await asyncio.sleep(0.1)
    raise AssertionError(f"the saved answer is {found}, not {want}")


async def test_type_run_and_submit_code_and_watch_each_test(
    page: Page, db: AsyncSession, services: ServiceUrls
) -> None:
    educator = await make_user(db, "educator")
    student = await make_user(db, "student")
    body = coding_body(
        languages=["python", "c"],
        starter_code={"python": ADD_STARTER, "c": C_STARTER},
        template={"python": SLOW_TEMPLATE},
        tests=TESTS,
    )
    exam, (question,) = await exam_with_questions(db, educator, [(("coding", body), 10)])
    session = await make_session(
        db, exam, student, paper_for([question], [10]), {}, status="active"
    )

    await page.goto("/sign-in")
    await audit(page)
    await page.get_by_label("Email").fill(student.email)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("heading", name="My exams", level=1)).to_be_visible()
    await audit(page)

    await page.goto(f"/sessions/{session.id}")
    editor = page.get_by_role("textbox", name="Code for question 1")
    await expect(editor).to_be_visible()
    await expect(editor).to_have_text(re.compile(r"def add\(a, b\):\s+pass"))
    source = page.locator('textarea[name="source"]')
    await expect(source).to_be_hidden()
    await audit(page, "coding-workspace-start")

    # Not edited yet: another language brings its starter code, and back again.
    language = page.get_by_label("Language")
    await language.select_option("c")
    await expect(editor).to_contain_text("int add(int a, int b) {")
    await language.select_option("python")
    await expect(editor).to_contain_text("pass")

    # The keyboard alone: select everything and type; the editor indents the body.
    await editor.click()
    await page.keyboard.press("Control+a")
    await page.keyboard.type("def add(a, b):")
    await page.keyboard.press("Enter")
    await page.keyboard.type("return a + b")
    await expect(source).to_have_value(TYPED)
    # Tab indents inside the editor; Escape, then Tab, moves on to the next control.
    await page.keyboard.press("Tab")
    await expect(source).to_have_value("def add(a, b):\n        return a + b")
    await page.keyboard.press("Shift+Tab")
    await expect(source).to_have_value(TYPED)
    await page.keyboard.press("Escape")
    await page.keyboard.press("Tab")
    await expect(page.get_by_label("Your own input for Run (optional)")).to_be_focused()

    # Edited now: another language keeps the student's code, and the language is saved.
    await language.select_option("c")
    await expect(source).to_have_value(TYPED)
    await _saved_answer(db, {"language": "c", "source": TYPED})
    # One change at a time: the outbox does not yet resend a change made while
    # an earlier one is on its way (it waits for the next change).
    await expect(page.locator("#exam-save-state")).to_have_text(re.compile(r"^Saved "))
    await language.select_option("python")
    await expect(editor).to_contain_text("return a + b")
    await _saved_answer(db, {"language": "python", "source": TYPED})

    results = page.get_by_role("region", name="Results")
    status = results.locator("[data-status]")
    # No judge is up yet: the run waits in the queue, and the page says where.
    await page.evaluate(_WATCH_STATUSES)
    await page.get_by_role("button", name="Run", exact=True).click()
    await expect(status).to_have_text("Run queued: number 1 in line.")
    small = results.locator('[data-test-name="small"]')
    await expect(small).to_contain_text("Queued")
    await expect(page.get_by_role("button", name="Run", exact=True)).to_be_disabled()
    await audit(page, "coding-workspace-queued")
    # The same question in a second tab while the run waits: refused, in words.
    other = await page.context.new_page()
    await other.goto(f"/sessions/{session.id}")
    await expect(other.get_by_role("textbox", name="Code for question 1")).to_be_visible()
    await other.get_by_role("button", name="Run", exact=True).click()
    await expect(other.get_by_role("region", name="Results").get_by_role("alert")).to_have_text(
        "Your previous run of this question is still being judged."
        " Wait for its result, then try again."
    )
    await audit(other)
    # The refusal named its wait (2 seconds); then the buttons are back.
    await expect(other.get_by_role("button", name="Run", exact=True)).to_be_enabled()
    await other.close()
    with running_worker(services, ("judge",), threads=1) as worker:
        slow = results.locator('[data-test-name="slow"]')
        try:
            # Each test's outcome as it comes: the first passed, the next still running.
            await expect(small).to_contain_text("Passed", timeout=30_000)
        except AssertionError:
            print(worker.log()[-4000:])
            raise
        await expect(slow).to_contain_text("Running")
        await expect(status).to_have_text(re.compile(r"Run running: 1 of 2 tests done\."))
        await expect(status).to_have_text("Run judged: 2 of 2 tests passed.", timeout=30_000)
        await expect(slow).to_contain_text("Passed")
        first = await page.evaluate("window.codingStatuses")
        await expect(small).to_contain_text(re.compile(r"\d+ ms"))
        await expect(small.locator("pre")).to_have_text("3\n")

        # Input of the student's own: what the program printed for it.
        await page.get_by_label("Your own input for Run (optional)").fill("5 7\n")
        await page.get_by_role("button", name="Run", exact=True).click()
        custom = results.locator('[data-test-name="custom input"]')
        await expect(custom).to_contain_text("Finished", timeout=30_000)
        await expect(custom.locator("pre")).to_have_text("12\n")

        await page.evaluate(_WATCH_STATUSES)
        await page.get_by_role("button", name="Submit code").click()
        await expect(status).to_have_text(
            "Submission judged: 3 of 3 tests passed. Score: 15 out of 15.", timeout=30_000
        )
        await expect(results.locator('[data-test-name="small"]')).to_contain_text("Passed")
        # The hidden test: a count, never its name, input or output.
        await expect(results.locator(".hidden-tests")).to_have_text(
            re.compile(r"Hidden tests\s*1 of 1 passed")
        )
        await expect(results).not_to_contain_text("big")
        second = await page.evaluate("window.codingStatuses")
        await audit(page, "coding-workspace-results")

    # The server's own words came live: queued (no judge yet), running, done.
    assert first == ["queued", "running", "done"], first
    assert second and second[-1] == "done", second

    submissions = await rows(
        db,
        "SELECT kind, language, source, stdin, status, verdict, score FROM coding_submissions"
        " ORDER BY created_at",
    )
    assert [(s.kind, s.stdin, s.status, s.verdict) for s in submissions] == [
        ("run", None, "done", "accepted"),
        ("run", "5 7\n", "done", "accepted"),
        ("submit", None, "done", "accepted"),
    ]
    assert {(s.language, s.source) for s in submissions} == {("python", TYPED)}
    assert submissions[-1].score == 15.0
    saved = await _saved_answer(db, {"language": "python", "source": TYPED})
    assert saved.client_seq >= 1

    # A reload brings the saved code and language back into the editor.
    await page.reload()
    await expect(editor).to_have_text(re.compile(r"def add\(a, b\):\s+return a \+ b"))
    await expect(language).to_have_value("python")
    await audit(page)

    # After the deadline the server refuses, and the page says so in words.
    await move_deadline(db, session.id, -1)
    await page.get_by_role("button", name="Run", exact=True).click()
    await expect(results.get_by_role("alert")).to_have_text(
        "This exam has ended, so code can no longer be run or submitted."
        " The code you saved is kept."
    )
    await audit(page)
    assert len(await rows(db, "SELECT 1 FROM coding_submissions")) == 3
