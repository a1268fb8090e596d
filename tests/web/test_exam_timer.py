"""The exam page's timer and integrity capture in a real browser, on a real server.

The timer's time comes from the server: a page whose clock is an hour ahead
shows what an honest one shows; warnings are announced once each; a changed
deadline is picked up; at the deadline the page lands on the ended view and
the server's auto-submit (a real worker) closes the session with the answers
intact. Integrity capture records what the lobby lists, a paste by its length
only, and events made offline once the page is back online.
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import pytest
from playwright.async_api import Browser, BrowserContext, Page, expect
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from safexam.core.settings import Settings
from safexam.integrity.schemas import CLIENT_EVENT_KINDS
from safexam.jobs.kinds import GRADE_SESSION
from tests.factories import PASSWORD, enroll, make_exam, make_question, make_user, mcq_body
from tests.helpers import ServiceUrls, rows
from tests.live import live_server
from tests.web.conftest import audit, check_context, new_context, path_of
from tests.workers_helper import running_worker

# A short grace, so that the server's auto-submit follows the deadline within
# a test's time; the page's own behaviour at the deadline does not depend on it.
GRACE_SECONDS = 1

# Every text the polite announcer is given, in order, kept by the page itself.
RECORD_ANNOUNCEMENTS = """
window.__announced = [];
document.addEventListener("DOMContentLoaded", () => {
  const region = document.getElementById("exam-announcer");
  if (!region) return;
  new MutationObserver(() => {
    if (region.textContent) window.__announced.push(region.textContent);
  }).observe(region, { childList: true, characterData: true, subtree: true });
});
"""


@pytest.fixture(scope="module")
async def server(settings: Settings) -> AsyncIterator[str]:
    short = msgspec.structs.replace(settings, autosubmit_grace_seconds=GRACE_SECONDS)
    async with live_server(short) as url:
        yield url


@dataclass
class Sitting:
    exam_id: uuid.UUID
    email: str
    text_question: uuid.UUID
    choice_question: uuid.UUID


async def an_exam(
    db: AsyncSession,
    *,
    closes_in: timedelta = timedelta(hours=3),
    duration_minutes: int = 60,
    integrity: dict[str, Any] | None = None,
    extra_minutes: int = 0,
) -> Sitting:
    """A published exam with a short-text and a single-choice question, one student enrolled."""
    educator = await make_user(db, "educator")
    text_question = await make_question(
        db, educator, "short_text", prompt="Name the capital of France."
    )
    choice_question = await make_question(
        db, educator, "mcq_single", body=mcq_body("b"), prompt="Pick b."
    )
    exam = await make_exam(
        db,
        educator,
        [text_question, choice_question],
        title="Timed exam",
        closes_at=datetime.now(UTC) + closes_in,
        duration_minutes=duration_minutes,
        integrity=integrity,
    )
    student = await make_user(db, "student")
    await enroll(db, exam, student, extra_minutes=extra_minutes)
    return Sitting(exam.id, student.email, text_question.id, choice_question.id)


async def open_exam(page: Page, sitting: Sitting) -> uuid.UUID:
    """Sign in, open the lobby, start (or resume) and land on the exam page."""
    await page.goto("/sign-in")
    await audit(page)
    await page.get_by_label("Email").fill(sitting.email)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("heading", name="My exams", level=1)).to_be_visible()
    await audit(page)
    await page.goto(f"/exams/{sitting.exam_id}")
    await audit(page)
    await page.get_by_role("button", name=re.compile(r"^(Start|Resume) exam$")).click()
    await expect(page.get_by_role("heading", name="Question 1")).to_be_visible()
    match = re.fullmatch(r"/sessions/([0-9a-f-]{36})", path_of(page))
    assert match, page.url
    return uuid.UUID(match.group(1))


async def seconds_left(page: Page) -> int:
    """The timer's text, ``m:ss`` or ``h:mm:ss``, in seconds."""
    text = (await page.locator("#exam-remaining").text_content() or "").strip()
    parts = [int(part) for part in text.split(":")]
    assert 2 <= len(parts) <= 3, text
    total = 0
    for part in parts:
        total = total * 60 + part
    return total


async def wait_until_ticking(page: Page) -> None:
    """The script has replaced the server's words ("1 hour") with the clock."""
    await expect(page.locator("#exam-remaining")).to_have_text(re.compile(r"^\d+(:\d\d){1,2}$"))


async def test_an_hour_ahead_the_page_shows_the_same_time_left(
    browser: Browser, server: str, db: AsyncSession
) -> None:
    sitting = await an_exam(db, duration_minutes=60, extra_minutes=10)
    honest = await new_context(browser, server)
    ahead = await new_context(browser, server)
    try:
        page = await honest.new_page()
        session_id = await open_exam(page, sitting)
        await wait_until_ticking(page)
        honest_left, honest_at = await seconds_left(page), time.monotonic()
        assert 68 * 60 < honest_left <= 70 * 60
        await expect(page.locator("#exam-accommodation")).to_have_text(
            "Your accommodation: 10 minutes more."
        )
        await audit(page, "exam-timer")
        # Hiding the timer leaves the accommodation in view.
        await page.get_by_role("button", name="Hide timer").click()
        await expect(page.locator("#exam-remaining")).to_be_hidden()
        await expect(page.locator("#exam-accommodation")).to_be_visible()

        skewed = await ahead.new_page()
        # Date, timers and performance.now() of this page all run an hour ahead.
        await skewed.clock.install(time=datetime.now(UTC) + timedelta(hours=1))
        assert await open_exam(skewed, sitting) == session_id  # resumed, not restarted
        await wait_until_ticking(skewed)
        skewed_left = await seconds_left(skewed)
        elapsed = time.monotonic() - honest_at
        shown_ahead = await skewed.evaluate("Date.now()") / 1000 - time.time()
        assert 3590 < shown_ahead < 3610, shown_ahead
        assert abs(skewed_left - (honest_left - elapsed)) <= 2, (honest_left, skewed_left, elapsed)

        # Moving the clock again while the exam runs changes nothing either:
        # the jump makes the page ask the server, and the time left stays.
        assert await skewed.locator("#exam-remaining").get_attribute("data-synced") is None
        await skewed.clock.set_system_time(datetime.now(UTC) + timedelta(hours=5))
        await expect(skewed.locator("#exam-remaining")).to_have_attribute(
            "data-synced", re.compile(r"^\d+$")
        )
        moved_left = await seconds_left(skewed)
        elapsed = time.monotonic() - honest_at
        assert abs(moved_left - (honest_left - elapsed)) <= 2, (honest_left, moved_left, elapsed)
        await audit(skewed)
    finally:
        await honest.close()
        await ahead.close()
    check_context(honest)
    check_context(ahead)

    session = (
        await rows(
            db,
            "SELECT status, deadline_at - started_at AS allowed FROM exam_sessions WHERE id = :id",
            id=session_id,
        )
    )[0]
    assert (session.status, session.allowed) == ("active", timedelta(minutes=70))
    assert len(await rows(db, "SELECT 1 FROM exam_sessions")) == 1


async def _move_deadline(db: AsyncSession, session_id: uuid.UUID, seconds: float) -> None:
    await db.execute(
        text(
            "UPDATE exam_sessions SET deadline_at = now() + make_interval(secs => :s)"
            " WHERE id = :id"
        ),
        {"s": seconds, "id": session_id},
    )
    await db.commit()


async def _tell_page_it_is_shown_again(page: Page) -> None:
    """What the browser fires when the student comes back to the tab (or the laptop wakes)."""
    await page.evaluate("document.dispatchEvent(new Event('visibilitychange'))")


async def test_warnings_are_announced_once_and_an_extension_is_picked_up(
    context: BrowserContext, page: Page, db: AsyncSession
) -> None:
    # The exam closes 10 minutes and a few seconds from now, so the attempt's
    # deadline is the closing time and the first warning comes at once.
    sitting = await an_exam(db, closes_in=timedelta(minutes=10, seconds=4))
    await context.add_init_script(RECORD_ANNOUNCEMENTS)
    session_id = await open_exam(page, sitting)
    remaining = page.locator("#exam-remaining")
    # The ticking time is not a live region: only the announcer speaks.
    assert await remaining.get_attribute("aria-live") is None
    assert await remaining.get_attribute("role") is None
    assert await page.locator("[role=timer], #exam-timer [aria-live]").count() == 0
    await expect(page.locator("#exam-announcer")).to_have_attribute("aria-live", "polite")
    await expect(page.locator("#exam-announcer")).to_have_text("10 minutes left.", timeout=8_000)
    await audit(page, "exam-timer-warning")

    # The student hides the timer; the warnings still come, heard and seen.
    toggle = page.get_by_role("button", name="Hide timer")
    await expect(toggle).to_have_attribute("aria-expanded", "true")
    await toggle.click()
    toggle = page.get_by_role("button", name="Show timer")
    await expect(toggle).to_have_attribute("aria-expanded", "false")
    await expect(page.locator("#exam-timer")).to_be_hidden()

    # The server's deadline moves (the page learns it when shown again).
    await _move_deadline(db, session_id, 5 * 60 + 2)
    await _tell_page_it_is_shown_again(page)
    await expect(page.locator("#exam-announcer")).to_have_text("5 minutes left.", timeout=8_000)
    await expect(page.locator("#exam-timer-warning")).to_have_text("5 minutes left.")
    await audit(page, "exam-timer-hidden")

    await _move_deadline(db, session_id, 60 + 2)
    await _tell_page_it_is_shown_again(page)
    await expect(page.locator("#exam-announcer")).to_have_text("1 minute left.", timeout=8_000)

    # An extension: announced, and the timer counts to the new deadline.
    await _move_deadline(db, session_id, 20 * 60)
    await _tell_page_it_is_shown_again(page)
    await expect(page.locator("#exam-announcer")).to_have_text(
        "Your time was extended. 20 minutes left."
    )
    await toggle.click()
    await expect(page.locator("#exam-timer")).to_be_visible()
    assert 19 * 60 < await seconds_left(page) <= 20 * 60
    await page.wait_for_timeout(1_500)  # a few more ticks: nothing more is said
    assert await page.evaluate("window.__announced") == [
        "10 minutes left.",
        "5 minutes left.",
        "1 minute left.",
        "Your time was extended. 20 minutes left.",
    ]

    # Hidden is remembered for the session across a reload.
    await page.get_by_role("button", name="Hide timer").click()
    await page.reload()
    await expect(page.get_by_role("button", name="Show timer")).to_have_attribute(
        "aria-expanded", "false"
    )
    await expect(page.locator("#exam-timer")).to_be_hidden()
    await audit(page)
    assert await page.evaluate("window.__announced") == []

    session = (
        await rows(
            db,
            "SELECT status, deadline_at - now() AS left FROM exam_sessions WHERE id = :id",
            id=session_id,
        )
    )[0]
    assert session.status == "active"
    assert timedelta(minutes=19) < session.left <= timedelta(minutes=20)


async def test_at_the_deadline_the_page_ends_and_the_server_submits(
    page: Page, db: AsyncSession, services: ServiceUrls
) -> None:
    with running_worker(services, ("maintenance",), threads=1):
        # Made once the worker is up (its start takes a few seconds of its own).
        sitting = await an_exam(db, closes_in=timedelta(seconds=9))
        session_id = await open_exam(page, sitting)
        await page.get_by_label("Your answer").fill("Paris")
        await page.get_by_role("radio", name="choice b").check()
        await expect(page.locator("#exam-save-state")).to_have_text(re.compile(r"^Saved "))
        await audit(page, "exam-before-deadline")
        # The page itself moves on at the deadline: no reload by the test.
        await expect(page.get_by_text(re.compile(r"Your time (is up|ran out)"))).to_be_visible(
            timeout=12_000
        )
        # The timer and the questions are gone from view: nothing can change an answer.
        await expect(page.locator("#exam-remaining")).to_be_hidden()
        await expect(page.locator("#question-1")).to_be_hidden()
        await audit(page, "exam-time-up")
        status = ""
        for _ in range(100):
            status = (
                await rows(db, "SELECT status FROM exam_sessions WHERE id = :id", id=session_id)
            )[0].status
            if status != "active":
                break
            await asyncio.sleep(0.1)
        assert status == "expired"
    await page.reload()
    await expect(
        page.get_by_text("Your time ran out, so your exam was submitted for you")
    ).to_be_visible()
    await audit(page, "exam-expired")

    session = (
        await rows(
            db,
            "SELECT status, submitted_at = deadline_at AS at_deadline FROM exam_sessions"
            " WHERE id = :id",
            id=session_id,
        )
    )[0]
    assert (session.status, session.at_deadline) == ("expired", True)
    answers = {
        row.question_id: row.answer
        for row in await rows(
            db,
            "SELECT question_id, answer FROM responses WHERE session_id = :id",
            id=session_id,
        )
    }
    assert answers == {
        sitting.text_question: {"text": "Paris"},
        sitting.choice_question: {"choice": "b"},
    }
    grading = await rows(
        db,
        "SELECT 1 FROM jobs WHERE session_id = :id AND kind = :k",
        id=session_id,
        k=GRADE_SESSION.name,
    )
    assert len(grading) == 1


async def test_a_page_loaded_after_the_deadline_shows_the_end_not_zero(
    page: Page, db: AsyncSession
) -> None:
    """Between the deadline and the server's auto-submit the attempt is over for the student."""
    sitting = await an_exam(db)
    session_id = await open_exam(page, sitting)
    await audit(page)
    # As if it had started an hour ago and run out half a second before this load.
    await db.execute(
        text(
            "UPDATE exam_sessions SET started_at = now() - interval '1 hour',"
            " deadline_at = now() - interval '0.5 seconds' WHERE id = :id"
        ),
        {"id": session_id},
    )
    await db.commit()
    await page.reload()
    await expect(page.get_by_text("Your time is up; your exam is being submitted")).to_be_visible()
    await expect(page.locator("#exam")).to_have_count(0)
    await audit(page, "exam-time-up-pending")
    status = (await rows(db, "SELECT status FROM exam_sessions WHERE id = :id", id=session_id))[0]
    assert status.status == "active"  # the page changed nothing: the server decides


async def _events(db: AsyncSession, session_id: uuid.UUID) -> list[Any]:
    return await rows(
        db,
        "SELECT kind, details, client_at, server_at FROM activity_logs"
        " WHERE session_id = :id ORDER BY id",
        id=session_id,
    )


# Switching windows may or may not hide the page, as the browser sees fit;
# the test follows the other kinds exactly and the visibility ones separately.
VISIBILITY = ("visibility_hidden", "visibility_visible")


async def _wait_for_events(db: AsyncSession, session_id: uuid.UUID, count: int) -> list[Any]:
    """The session's logged events, visibility aside, once there are ``count``.

    The page sends in batches, so they arrive in a little while.
    """
    found: list[Any] = []
    for _ in range(100):
        found = [row for row in await _events(db, session_id) if row.kind not in VISIBILITY]
        if len(found) >= count:
            break
        await asyncio.sleep(0.1)
    return found


async def switch_to(page: Page, *, away_from: Page) -> None:
    """Bring ``page``'s window to the front, and wait until the other has lost the focus."""
    await page.bring_to_front()
    # Polled: the page's policy forbids the eval behind wait_for_function.
    for _ in range(50):
        if not await away_from.evaluate("document.hasFocus()"):
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"{away_from.url} kept the focus")


async def until_kept(page: Page, session_id: uuid.UUID, kind: str) -> None:
    """Wait until the page keeps an event of ``kind`` on the device (it fires a moment later)."""
    key = f"safexam:integrity:{session_id}"
    for _ in range(50):
        kept = await page.evaluate(f"JSON.parse(localStorage.getItem('{key}') || '[]')")
        if any(event["kind"] == kind for event in kept):
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"no {kind} event kept")


async def test_integrity_events_reach_the_log_with_a_pastes_length_only(
    context: BrowserContext, page: Page, db: AsyncSession
) -> None:
    sitting = await an_exam(db, integrity={"require_fullscreen": True})
    await context.grant_permissions(["clipboard-read", "clipboard-write"])
    session_id = await open_exam(page, sitting)

    # Full screen is required: the prompt shows until the student's click enters it.
    prompt = page.locator("#exam-fullscreen")
    await expect(prompt).to_be_visible()
    await audit(page, "exam-fullscreen-prompt")
    await page.get_by_role("button", name="Return to full screen").click()
    await expect(prompt).to_be_hidden()
    assert await page.evaluate("document.fullscreenElement !== null")
    await page.evaluate("document.exitFullscreen()")
    await expect(prompt).to_be_visible()

    # The window loses the focus to another window and gets it back. (Playwright
    # tells every page it has the focus unless asked not to.)
    other = await context.new_page()
    await other.goto("/exams")
    for window in (page, other):
        cdp = await context.new_cdp_session(window)
        await cdp.send("Emulation.setFocusEmulationEnabled", {"enabled": False})
    await audit(other)
    await switch_to(other, away_from=page)
    await switch_to(page, away_from=other)
    # A field's own focus changes are not the window's: nothing recorded.
    await page.get_by_label("Your answer").focus()
    await page.get_by_role("radio", name="choice a").focus()

    # Copy the prompt, paste 24 characters (two of them outside the BMP) into the answer.
    await page.get_by_text("Name the capital of France.").select_text()
    await page.keyboard.press("Control+C")
    pasted = "Paris is the answer 🇫🇷"
    await page.evaluate("text => navigator.clipboard.writeText(text)", pasted)
    await page.get_by_label("Your answer").focus()
    await page.keyboard.press("Control+V")
    await expect(page.get_by_label("Your answer")).to_have_value(pasted)

    # Offline: what happens is kept on the device and sent when back online.
    await context.set_offline(True)
    await until_kept(page, session_id, "offline")
    await switch_to(other, away_from=page)
    await switch_to(page, away_from=other)
    offline_at = datetime.now(UTC)
    await context.set_offline(False)
    found = await _wait_for_events(db, session_id, 10)
    await audit(page)

    assert [(row.kind, row.details) for row in found] == [
        ("fullscreen_enter", {}),
        ("fullscreen_exit", {}),
        ("focus_lost", {}),
        ("focus_gained", {}),
        ("copy", {}),
        ("paste", {"length": 22}),
        ("offline", {}),
        ("focus_lost", {}),
        ("focus_gained", {}),
        ("online", {}),
    ]
    # Only the length: the pasted text is nowhere in the log.
    assert all("Paris" not in str(row.details) for row in found)
    # Sent late, but stamped when they happened.
    kept = found[6:9]
    assert all(row.client_at < offline_at < row.server_at for row in kept), kept
    assert {row.kind for row in found} <= set(CLIENT_EVENT_KINDS)

    # Events made offline just before the page goes away are kept on the
    # device and sent by the next page of the session.
    await context.set_offline(True)
    await until_kept(page, session_id, "offline")
    await switch_to(other, away_from=page)
    exam_url = page.url
    await page.close()
    await context.set_offline(False)
    again = await context.new_page()
    await again.goto(exam_url)
    await audit(again)
    found = await _wait_for_events(db, session_id, 12)
    assert [row.kind for row in found[10:]] == ["offline", "focus_lost"]
    # Nothing was sent twice: not by the page that left, nor by the next one.
    await again.wait_for_timeout(500)
    logged = [(row.kind, row.client_at) for row in await _events(db, session_id)]
    assert len(logged) == len(set(logged)), logged
    assert await again.evaluate(f"localStorage.getItem('safexam:integrity:{session_id}')") is None
