"""The exam page in a real browser: answers of every kind, the outbox, the
navigator and flags, review and submit, offline, signed out, keyboard alone.

Each scenario takes the demo exam (one question of each kind, in this order:
single choice, multiple choice, number, short text, code) and checks what the
database holds afterwards: every response's answer and client_seq.
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from typing import Any

from playwright.async_api import BrowserContext, Locator, Page, Route, expect
from sqlalchemy.ext.asyncio import AsyncSession

from safexam.auth.signins import SIGNIN_COOKIE
from safexam.demo import DEMO_PASSWORD, EXAM_TITLE, load_demo
from tests.helpers import rows
from tests.web.conftest import audit, path_of

SAVED = re.compile(r"^Saved \d{1,2}:\d{2}:\d{2}")
CODE = "a = int(input())\nb = int(input())\nprint(a + b)\n"


async def sign_in(page: Page, email: str, next_path: str = "/sign-in") -> None:
    await page.goto(next_path)
    await audit(page)
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Password").fill(DEMO_PASSWORD)
    await page.get_by_role("button", name="Sign in").click()


async def shot(page: Page, name: str) -> None:
    """Audit the page scrolled to its top, so its screenshot shows the sticky bar in place."""
    await page.evaluate("window.scrollTo(0, 0)")
    await audit(page, name)


async def start_exam(page: Page, db: AsyncSession, student: int = 0) -> str:
    """Sign in as a demo student, start the demo exam; the session's id."""
    demo = await load_demo(db)
    await sign_in(page, demo.student_emails[student])
    await expect(page.get_by_role("heading", name="My exams", level=1)).to_be_visible()
    await audit(page)
    await page.goto(f"/exams/{demo.exam_id}")
    await audit(page)
    await page.get_by_role("button", name="Start exam").click()
    await expect(page.get_by_role("heading", name="Question 1")).to_be_visible()
    await audit(page)
    match = re.fullmatch(r"/sessions/([0-9a-f-]{36})", path_of(page))
    assert match, page.url
    return match[1]


def question(page: Page, n: int) -> Locator:
    return page.locator(f"#question-{n}")


def nav(page: Page, n: int) -> Locator:
    return page.locator(f"#nav-{n}")


def status(page: Page) -> Locator:
    return page.locator("#exam-save-state")


async def saved(db: AsyncSession, session_id: str) -> dict[str, tuple[Any, int]]:
    """Each saved response of the session, by its question's kind: (answer, client_seq)."""
    found = await rows(
        db,
        "SELECT q.kind, r.answer, r.client_seq FROM responses r"
        " JOIN questions q ON q.id = r.question_id WHERE r.session_id = :id",
        id=uuid.UUID(session_id),
    )
    return {row.kind: (row.answer, row.client_seq) for row in found}


async def kept_on_device(page: Page) -> list[dict[str, Any]]:
    """What the page's outbox holds in IndexedDB."""
    records: list[dict[str, Any]] = await page.evaluate(
        """() => new Promise((resolve, reject) => {
            const open = indexedDB.open("safexam", 1);
            open.onerror = () => reject(open.error);
            open.onsuccess = () => {
              const request = open.result.transaction("outbox").objectStore("outbox").getAll();
              request.onsuccess = () => resolve(request.result);
            };
        })"""
    )
    return records


async def until_nothing_kept(page: Page, seconds: float = 5.0) -> None:
    """Wait until the outbox on the device is empty (every answer acknowledged)."""
    for _ in range(int(seconds * 10)):
        if not await kept_on_device(page):
            return
        await page.wait_for_timeout(100)
    raise AssertionError(f"still kept on the device: {await kept_on_device(page)}")


async def answer_everything(page: Page) -> None:
    await question(page, 1).get_by_role("radio", name="4", exact=True).check()
    await question(page, 2).get_by_role("checkbox", name="2", exact=True).check()
    await question(page, 2).get_by_role("checkbox", name="17", exact=True).check()
    await page.get_by_label("Your answer (a number)").fill("56")
    await page.get_by_label("Your answer", exact=True).fill("def")
    await type_code(page, "Code for question 5", CODE)


EVERYTHING = {
    "mcq_single": ({"choice": "b"}, 1),
    "mcq_multi": ({"choices": ["a", "c"]}, 2),
    "numeric": ({"value": 56.0}, 1),
    "short_text": ({"text": "def"}, 1),
    "coding": ({"language": "python", "source": CODE}, 1),
}


async def test_a_mixed_exam_from_sign_in_to_submit(page: Page, db: AsyncSession) -> None:
    session_id = await start_exam(page, db)
    await expect(page.get_by_role("heading", name=EXAM_TITLE, level=1)).to_be_visible()
    for n in range(1, 6):
        await expect(nav(page, n)).to_have_accessible_name(f"Question {n} Not answered")
    await shot(page, "exam-start")

    await answer_everything(page)
    await question(page, 3).get_by_role("button", name="Flag for review").click()
    await expect(status(page)).to_have_text(SAVED)
    for n in (1, 2, 4, 5):
        await expect(nav(page, n)).to_have_accessible_name(f"Question {n} Answered")
    await expect(nav(page, 3)).to_have_accessible_name(
        re.compile(r"^Question 3 Answered ?, Flagged$")
    )
    await expect(question(page, 4).get_by_text("Saved", exact=True)).to_be_visible()
    await shot(page, "exam-answered")
    assert await saved(db, session_id) == EVERYTHING
    assert await kept_on_device(page) == []

    # The review lists the flagged question as a link that leads there.
    await page.get_by_role("button", name="Review and submit").click()
    dialog = page.get_by_role("dialog", name="Submit your exam?")
    await expect(dialog).to_contain_text("Flagged for review (1)")
    await expect(dialog).not_to_contain_text("Not answered")
    await audit(page, "exam-review")
    await dialog.get_by_role("link", name="Question 3").click()
    await expect(dialog).to_be_hidden()
    await expect(page.get_by_role("heading", name="Question 3")).to_be_focused()

    # A last change typed and submitted at once, before the pause that saves
    # it: Submit sends it first.
    await page.get_by_label("Your answer", exact=True).fill("DEF")
    await page.get_by_role("button", name="Review and submit").click()
    await dialog.get_by_role("button", name="Submit exam").click()
    await expect(page.get_by_text("Your exam is submitted.")).to_be_visible()
    await expect(page.get_by_role("button", name="Review and submit")).to_have_count(0)
    await shot(page, "exam-submitted")
    status_row = await rows(
        db, "SELECT status FROM exam_sessions WHERE id = :id", id=uuid.UUID(session_id)
    )
    assert status_row[0].status in ("submitted", "graded")
    assert await saved(db, session_id) == {**EVERYTHING, "short_text": ({"text": "DEF"}, 2)}


async def test_reload_mid_exam_and_find_every_answer(page: Page, db: AsyncSession) -> None:
    session_id = await start_exam(page, db)
    await answer_everything(page)
    await question(page, 2).get_by_role("button", name="Flag for review").click()
    await expect(status(page)).to_have_text(SAVED)

    await page.reload()
    await expect(page.get_by_role("heading", name="Question 1")).to_be_visible()
    await expect(question(page, 1).get_by_role("radio", name="4", exact=True)).to_be_checked()
    await expect(question(page, 2).get_by_role("checkbox", name="2", exact=True)).to_be_checked()
    await expect(question(page, 2).get_by_role("checkbox", name="17", exact=True)).to_be_checked()
    await expect(
        question(page, 2).get_by_role("checkbox", name="9", exact=True)
    ).not_to_be_checked()
    await expect(page.get_by_label("Your answer (a number)")).to_have_value("56")
    await expect(page.get_by_label("Your answer", exact=True)).to_have_value("def")
    await expect(source_of(page)).to_have_value(CODE)
    # The flag is kept on the device across the reload.
    await expect(question(page, 2).get_by_role("button", name="Flag for review")).to_have_attribute(
        "aria-pressed", "true"
    )
    await expect(nav(page, 2)).to_have_accessible_name(
        re.compile(r"^Question 2 Answered ?, Flagged$")
    )
    await shot(page, "exam-reloaded")
    assert await saved(db, session_id) == EVERYTHING

    # Alt+Shift+N and Alt+Shift+P move between questions, but never from a text field.
    await question(page, 1).get_by_role("radio", name="4", exact=True).focus()
    await page.keyboard.press("Alt+Shift+N")
    await expect(page.get_by_role("heading", name="Question 2")).to_be_focused()
    await page.keyboard.press("Alt+Shift+N")
    await expect(page.get_by_role("heading", name="Question 3")).to_be_focused()
    await page.keyboard.press("Alt+Shift+P")
    await expect(page.get_by_role("heading", name="Question 2")).to_be_focused()
    await page.get_by_label("Your answer", exact=True).focus()
    await page.keyboard.press("Alt+Shift+N")
    await expect(page.get_by_label("Your answer", exact=True)).to_be_focused()
    await expect(page.get_by_text("Alt+Shift+N", exact=False).first).to_be_attached()

    # Cleared answers stay cleared after a reload: the cleared shape is saved.
    await page.get_by_label("Your answer", exact=True).fill("")
    await question(page, 2).get_by_role("checkbox", name="2", exact=True).uncheck()
    await question(page, 2).get_by_role("checkbox", name="17", exact=True).uncheck()
    await expect(nav(page, 4)).to_have_accessible_name("Question 4 Not answered")
    await expect(status(page)).to_have_text(SAVED)
    await page.reload()
    await expect(page.get_by_label("Your answer", exact=True)).to_have_value("")
    await expect(
        question(page, 2).get_by_role("checkbox", name="17", exact=True)
    ).not_to_be_checked()
    await expect(nav(page, 2)).to_have_accessible_name(
        re.compile(r"^Question 2 Not answered ?, Flagged$")
    )
    await audit(page)
    answers = await saved(db, session_id)
    assert answers["short_text"] == ({"text": ""}, 2)
    assert answers["mcq_multi"] == ({"choices": []}, 4)


async def test_a_refused_answer_is_told_beside_its_field(page: Page, db: AsyncSession) -> None:
    session_id = await start_exam(page, db)
    number = page.get_by_label("Your answer (a number)")
    await number.fill("56")
    await expect(status(page)).to_have_text(SAVED)
    # Not a number: said beside the field, nothing sent, the saved one still counts.
    await number.fill("fifty")
    await expect(question(page, 3).locator("[data-problem]")).to_have_text(
        "This is not a number yet. Type digits, such as 42, -3.5 or 0.25."
        " Your saved answer, 56, still counts."
    )
    await expect(nav(page, 3)).to_have_accessible_name("Question 3 Not saved: check it")
    await expect(number).to_have_accessible_description(re.compile("not a number yet"))
    # A decimal comma is read as a decimal point, and the page says how it read it.
    await number.fill("7,5")
    await expect(question(page, 3).locator("[data-problem]")).to_have_text("Read as 7.5.")
    # The server refuses a language the question does not allow (422): the
    # reason is shown beside the field, and other questions still save.
    await page.evaluate(
        """() => {
            const select = document.querySelector('#question-5 select[name="language"]');
            select.add(new Option("COBOL", "cobol"));
            select.value = "cobol";
            select.dispatchEvent(new Event("change", { bubbles: true }));
        }"""
    )
    await expect(question(page, 5).locator("[data-problem]")).to_have_text(
        "Not saved: language cobol is not allowed for this question."
    )
    await expect(nav(page, 5)).to_have_accessible_name("Question 5 Not saved: check it")
    await page.get_by_label("Your answer", exact=True).fill("def")
    await expect(nav(page, 4)).to_have_accessible_name("Question 4 Answered")
    await expect(status(page)).to_have_text(SAVED)
    await shot(page, "exam-problems")

    # As the page hides, what is pending goes out in keepalive requests, which
    # browsers cap at 64 KB in flight: the small answers go, a large program
    # waits on the device for the next load (the outbox's own module, with
    # fetch only recorded).
    sent = await page.evaluate(
        """async () => {
            const url = performance.getEntriesByType("resource")
              .map((entry) => entry.name).find((name) => name.includes("/js/outbox."));
            const { Outbox } = await import(url);
            const outbox = new Outbox({ sessionId: "s", csrf: "c", seqs: {} });
            const answers = {
              big: { language: "python", source: "#".repeat(60000) },
              small: { text: "def" },
              medium: { language: "python", source: "x".repeat(30000) },
              other: { text: "x".repeat(1900) },
            };
            for (const [id, answer] of Object.entries(answers)) {
              outbox.pending.set(id, { questionId: id, answer, clientSeq: 1, resends: 0 });
            }
            const calls = [];
            const fetch = window.fetch;
            window.fetch = (url, options) => {
              calls.push([url.split("/").pop(), options.keepalive, options.body.length]);
              return new Promise(() => {});
            };
            try {
              outbox.flushOnHide();
            } finally {
              window.fetch = fetch;
            }
            return calls;
        }"""
    )
    assert [(name, keepalive) for name, keepalive, _ in sent] == [
        ("small", True),
        ("other", True),
        ("medium", True),
    ]
    assert sum(size for _, _, size in sent) < 48 * 1024
    answers = await saved(db, session_id)
    assert answers == {
        "numeric": ({"value": 7.5}, 2),
        "short_text": ({"text": "def"}, 1),
    }
    assert await kept_on_device(page) == []


async def test_offline_answers_are_kept_and_sent_when_back(
    context: BrowserContext, page: Page, db: AsyncSession
) -> None:
    session_id = await start_exam(page, db)
    await context.set_offline(True)
    await question(page, 1).get_by_role("radio", name="4", exact=True).check()
    await page.get_by_label("Your answer (a number)").fill("56")
    await page.get_by_label("Your answer", exact=True).fill("def")
    await expect(status(page)).to_have_text("Offline: 3 answers kept on this device.")
    for n in (1, 3, 4):
        await expect(nav(page, n)).to_have_accessible_name(f"Question {n} Not saved yet")
    kept = await kept_on_device(page)
    assert sorted((r["clientSeq"], json.dumps(r["answer"])) for r in kept) == [
        (1, '{"choice": "b"}'),
        (1, '{"text": "def"}'),
        (1, '{"value": 56}'),
    ]
    await shot(page, "exam-offline")
    assert await saved(db, session_id) == {}

    # Back online, the page sends them on its own.
    await context.set_offline(False)
    await expect(status(page)).to_have_text(SAVED)
    assert await saved(db, session_id) == {
        "mcq_single": ({"choice": "b"}, 1),
        "numeric": ({"value": 56.0}, 1),
        "short_text": ({"text": "def"}, 1),
    }

    # Offline again, three changes, and the page is closed: a page cannot
    # load without the network (there is no service worker), so the answers
    # wait on the device for the next visit once online.
    await context.set_offline(True)
    await question(page, 1).get_by_role("radio", name="5", exact=True).check()
    await page.get_by_label("Your answer (a number)").fill("57")
    await question(page, 2).get_by_role("checkbox", name="9", exact=True).check()
    await expect(status(page)).to_have_text("Offline: 3 answers kept on this device.")
    await page.close()
    await context.set_offline(False)
    again = await context.new_page()
    await again.goto(f"/sessions/{session_id}")
    # Either the next page sent them from the device, or the keepalive requests
    # of the closing page got through (Chromium's offline emulation belongs to
    # the page and ends with it): the same answers, the same numbers.
    await expect(status(again)).to_have_text(
        re.compile(f"{SAVED.pattern}|^All answers shown are saved")
    )
    await until_nothing_kept(again)
    await expect(question(again, 1).get_by_role("radio", name="5", exact=True)).to_be_checked()
    await expect(again.get_by_label("Your answer (a number)")).to_have_value("57")
    await audit(again)
    assert await saved(db, session_id) == {
        "mcq_single": ({"choice": "c"}, 2),
        "mcq_multi": ({"choices": ["b"]}, 1),
        "numeric": ({"value": 57.0}, 2),
        "short_text": ({"text": "def"}, 1),
    }


async def signed_out_for_good(context: BrowserContext) -> None:
    """Drop the sign-in cookie, and again if a response still in flight (the page's
    streams open as it loads) sets it back: the test needs a browser signed out."""
    for _ in range(20):
        await context.clear_cookies(name=SIGNIN_COOKIE)
        await asyncio.sleep(0.25)
        if not any(c["name"] == SIGNIN_COOKIE for c in await context.cookies()):
            return
    raise AssertionError("the sign-in cookie kept coming back")


async def test_answers_wait_on_the_device_when_signed_out_or_the_server_is_down(
    context: BrowserContext, page: Page, db: AsyncSession
) -> None:
    session_id = await start_exam(page, db)
    await signed_out_for_good(context)
    await page.get_by_label("Your answer", exact=True).fill("def")
    await expect(status(page)).to_have_text(
        "Signed out: 1 answer kept on this device. Sign in again to save them."
    )
    await shot(page, "exam-signed-out")
    assert await saved(db, session_id) == {}
    demo = await load_demo(db)
    await status(page).get_by_role("link", name="Sign in again").click()
    await expect(page.get_by_role("heading", name="Sign in", level=1)).to_be_visible()
    await audit(page)
    await page.get_by_label("Email").fill(demo.student_emails[0])
    await page.get_by_label("Password").fill(DEMO_PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    assert path_of(page) == f"/sessions/{session_id}"
    await expect(status(page)).to_have_text(SAVED)
    await expect(page.get_by_label("Your answer", exact=True)).to_have_value("def")
    await audit(page)
    assert await saved(db, session_id) == {"short_text": ({"text": "def"}, 1)}

    # A server that cannot answer for a moment (503 with Retry-After): the page
    # says the answer is kept and tries again on its own.
    refused: list[str] = []

    async def unavailable_once(route: Route) -> None:
        if refused:
            await route.continue_()
            return
        refused.append(route.request.url)
        await route.fulfill(
            status=503,
            headers={"Retry-After": "1", "Content-Type": "application/json"},
            body='{"error": {"code": "unavailable", "message": "try again", "details": null}}',
        )

    await page.route("**/api/v1/sessions/*/responses/*", unavailable_once)
    await page.get_by_label("Your answer (a number)").fill("56")
    await expect(status(page)).to_have_text(
        "Not saved yet, trying again: 1 answer kept on this device."
    )
    await expect(status(page)).to_have_text(SAVED)
    assert len(refused) == 1
    assert await saved(db, session_id) == {
        "short_text": ({"text": "def"}, 1),
        "numeric": ({"value": 56.0}, 1),
    }


async def tab_to(page: Page, test: str, limit: int = 40) -> None:
    """Press Tab until ``test`` (JavaScript, given the focused element) holds."""
    for _ in range(limit):
        await page.keyboard.press("Tab")
        if await page.evaluate(
            f"(el) => {test}", await page.evaluate_handle("document.activeElement")
        ):
            return
    raise AssertionError(f"nothing where {test} is reachable with Tab")


def source_of(page: Page) -> Locator:
    """The code answer's text area, which the editor keeps in step and hides."""
    return page.locator('textarea[name="source"]')


async def type_code(page: Page, label: str, code: str) -> None:
    """Replace the editor's text with ``code`` as typed text (no indentation added)."""
    await page.get_by_role("textbox", name=label).click()
    await page.keyboard.press("Control+a")
    await page.keyboard.insert_text(code)
    await expect(source_of(page)).to_have_value(code)


def named(text: str) -> str:
    return f"el.textContent.trim() === {json.dumps(text)}"


async def test_an_exam_with_the_keyboard_alone(page: Page, db: AsyncSession) -> None:
    demo = await load_demo(db)
    await page.goto("/sign-in")
    await audit(page)
    await page.keyboard.type(demo.student_emails[1])
    await page.keyboard.press("Tab")
    await page.keyboard.type(DEMO_PASSWORD)
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("heading", name="My exams", level=1)).to_be_visible()
    await audit(page)
    await tab_to(page, named(EXAM_TITLE))
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("heading", name=EXAM_TITLE, level=1)).to_be_visible()
    await audit(page)
    await tab_to(page, named("Start exam"))
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("heading", name="Question 1")).to_be_visible()
    await audit(page)
    session_id = path_of(page).rsplit("/", 1)[1]

    # A radio group is one Tab stop; the arrows choose within it.
    await tab_to(page, "el.type === 'radio'")
    await page.keyboard.press("ArrowDown")
    await expect(question(page, 1).get_by_role("radio", name="4", exact=True)).to_be_checked()
    await page.keyboard.press("Tab")
    await expect(question(page, 2).get_by_role("button", name="Flag for review")).to_be_focused()
    await page.keyboard.press("Space")
    await page.keyboard.press("Tab")
    await page.keyboard.press("Space")  # 2
    await page.keyboard.press("Tab")
    await page.keyboard.press("Tab")
    await page.keyboard.press("Space")  # 17
    await tab_to(page, "el.name === 'value'")
    await page.keyboard.type("56")
    await tab_to(page, "el.name === 'text'")
    await page.keyboard.type("def")
    # The editor lives in a shadow root: the focus is on its host, inside.
    await tab_to(page, "el.shadowRoot?.activeElement?.classList.contains('cm-content')")
    await page.keyboard.type("print(2 + 3)\n")
    source = await source_of(page).input_value()
    # In the editor Tab indents; Escape first lets the next Tab move on.
    await page.keyboard.press("Escape")
    await tab_to(page, named("Review and submit"))
    await page.keyboard.press("Enter")
    dialog = page.get_by_role("dialog", name="Submit your exam?")
    await expect(dialog).to_contain_text("Flagged for review (1)")
    await audit(page)
    await tab_to(page, named("Submit exam"), limit=5)
    await page.keyboard.press("Enter")
    await expect(page.get_by_text("Your exam is submitted.")).to_be_visible()
    await audit(page)
    assert await saved(db, session_id) == {
        "mcq_single": ({"choice": "b"}, 1),
        "mcq_multi": ({"choices": ["a", "c"]}, 2),
        "numeric": ({"value": 56.0}, 1),
        "short_text": ({"text": "def"}, 1),
        "coding": ({"language": "python", "source": source}, 1),
    }
    status_row = await rows(
        db, "SELECT status FROM exam_sessions WHERE id = :id", id=uuid.UUID(session_id)
    )
    assert status_row[0].status in ("submitted", "graded")


async def test_another_device_and_the_end_of_the_attempt(page: Page, db: AsyncSession) -> None:
    session_id = await start_exam(page, db)
    csrf = await page.locator("#exam").get_attribute("data-csrf")
    assert csrf
    question_id = await question(page, 4).get_attribute("data-question-id")
    api = f"/api/v1/sessions/{session_id}"
    # Another device of the same student saved this question, numbered 5.
    other = await page.request.put(
        f"{api}/responses/{question_id}",
        data={"answer": {"text": "from the other device"}, "client_seq": 5},
        headers={"X-CSRF-Token": csrf},
    )
    assert other.ok, await other.text()
    # Typed here afterwards (numbered 1 on this page): the latest edit wins,
    # sent again above the other device's number.
    await page.get_by_label("Your answer", exact=True).fill("def")
    await expect(status(page)).to_have_text(SAVED)
    assert await saved(db, session_id) == {"short_text": ({"text": "def"}, 6)}

    # At 320 CSS pixels (200% zoom) the page reflows to one column.
    await page.set_viewport_size({"width": 320, "height": 700})
    overflow = await page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    wide = await page.evaluate(
        """() => [...document.querySelectorAll('body *')]
            .filter((el) =>
                el.getBoundingClientRect().right > document.documentElement.clientWidth + 1)
            .slice(0, 8).map((el) => el.tagName + '.' + el.className + '#' + el.id
                + ' ' + Math.round(el.getBoundingClientRect().right))"""
    )
    assert overflow <= 0, f"the exam page scrolls sideways at 320 CSS pixels: {wide}"
    await shot(page, "exam-narrow")
    await page.set_viewport_size({"width": 1280, "height": 720})

    # The attempt ends elsewhere (submitted from another tab): the next save
    # is refused with 409 and the page says the exam has ended.
    ended = await page.request.post(f"{api}/submit", headers={"X-CSRF-Token": csrf})
    assert ended.ok, await ended.text()
    await question(page, 1).get_by_role("radio", name="4", exact=True).check()
    notice = page.locator("#exam-closed")
    await expect(notice).to_contain_text("This exam has ended")
    await expect(notice).to_be_focused()
    await expect(page.get_by_role("button", name="Review and submit")).to_be_hidden()
    await shot(page, "exam-ended")
    await notice.get_by_role("link", name="See your submitted exam").click()
    await expect(page.get_by_text("Your exam is submitted.")).to_be_visible()
    await audit(page)
    assert await saved(db, session_id) == {"short_text": ({"text": "def"}, 6)}
