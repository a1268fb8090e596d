"""The live exam monitor in a real browser: an educator watches two students in two
other browsers take the exam, extends one's time, announces, and force-submits one.

Every change reaches the other pages over their event streams, without a
reload: the monitor's rows, the student's timer, the announcement, the
closed exam page. The actions leave audit rows with who and why.
"""

from __future__ import annotations

import re
import uuid

from playwright.async_api import Browser, Page, expect
from sqlalchemy.ext.asyncio import AsyncSession

from tests.factories import PASSWORD, enroll, make_exam, make_question, make_user
from tests.helpers import rows
from tests.web.conftest import audit, check_context, new_context, sign_in_as


async def _student_starts(page: Page, email: str, exam_id: uuid.UUID) -> str:
    await sign_in_as(page, email, PASSWORD)
    await audit(page)
    await page.goto(f"/exams/{exam_id}")
    await audit(page)
    async with page.expect_navigation():
        await page.get_by_role("button", name="Start exam").click()
    await audit(page)
    await expect(page.locator("#exam-remaining")).to_have_text(re.compile(r"^(59|60):"))
    return page.url.rsplit("/", 1)[-1]


def _cell(page: Page, user_id: uuid.UUID, cell: str) -> object:
    return page.locator(f'#monitor-rows tr[data-key="{user_id}"] [data-cell="{cell}"]')


async def test_the_monitor_follows_two_students_and_its_actions_reach_them(
    browser: Browser, server: str, db: AsyncSession
) -> None:
    educator = await make_user(db, "educator", name="Dana Educator")
    alice = await make_user(db, "student", name="Alice Student")
    bob = await make_user(db, "student", name="Bob Student")
    text = await make_question(db, educator, "short_text", prompt="Name the capital of France.")
    choice = await make_question(db, educator, "mcq_single")
    exam = await make_exam(db, educator, [text, choice], title="Geography quiz")
    await enroll(db, exam, alice)
    await enroll(db, exam, bob)

    contexts = [await new_context(browser, server) for _ in range(3)]
    try:
        teacher, a, b = [await c.new_page() for c in contexts]
        await sign_in_as(teacher, educator.email, PASSWORD)
        await audit(teacher)
        await teacher.goto(f"/educator/exams/{exam.id}/monitor")
        await expect(teacher.locator("#monitor-connection")).to_have_text(re.compile("^Live"))
        await expect(_cell(teacher, alice.id, "state")).to_have_text("Not started")
        await audit(teacher)

        # Start: the rows change as the students arrive, with no reload.
        a_session = await _student_starts(a, alice.email, exam.id)
        await expect(_cell(teacher, alice.id, "state")).to_have_text("Active")
        await expect(_cell(teacher, alice.id, "answered")).to_have_text("0 of 2")
        b_session = await _student_starts(b, bob.email, exam.id)
        await expect(_cell(teacher, bob.id, "state")).to_have_text("Active")

        # Answer: the save reaches the monitor.
        await a.get_by_label(re.compile("Your answer")).first.fill("Paris")
        await a.get_by_label(re.compile("Your answer")).first.blur()
        await expect(_cell(teacher, alice.id, "answered")).to_have_text("1 of 2")
        await expect(_cell(teacher, alice.id, "last_save")).not_to_have_text("Never")

        # A student's timeline, live.
        await teacher.get_by_role("button", name="Alice Student").click()
        await expect(teacher.locator("#timeline-title")).to_have_text("Timeline: Alice Student")
        await expect(teacher.locator("#timeline-list")).to_contain_text("Saved an answer")

        # Extend Alice's time: her timer moves without a reload; Bob's does not.
        await teacher.get_by_label("Who").select_option(a_session)
        await teacher.get_by_label("Extra minutes").fill("15")
        await teacher.locator("#extend_reason").fill("Fire alarm in room B")
        async with teacher.expect_navigation():
            await teacher.get_by_role("button", name="Extend time").click()
        await expect(teacher.get_by_role("status").first).to_be_visible()
        await audit(teacher)
        await expect(a.locator("#exam-remaining")).to_have_text(re.compile(r"^1:1[45]:"))
        await expect(b.locator("#exam-remaining")).to_have_text(re.compile(r"^(59|60):"))

        # An announcement: both students see it (and hear it once, politely).
        await teacher.get_by_label("Message to every student").fill(
            "Question 1: the answer is a city."
        )
        async with teacher.expect_navigation():
            await teacher.get_by_role("button", name="Send to every student").click()
        await audit(teacher)
        for student in (a, b):
            await expect(student.locator("#exam-announcements")).to_contain_text(
                "Question 1: the answer is a city."
            )
        await expect(a.locator("#exam-announcer")).to_contain_text(
            "Announcement from your educator"
        )
        await audit(a, "exam-announcement")
        await teacher.get_by_role("button", name="Alice Student").click()
        await expect(teacher.locator("#timeline-list")).to_contain_text("Time extended")
        await audit(teacher, "monitor")

        # Force-submit Bob: his page closes; his row says so.
        await teacher.get_by_label("Student", exact=True).select_option(b_session)
        await teacher.locator("#force_reason").fill("Left the room")
        async with teacher.expect_navigation():
            await teacher.get_by_role("button", name="Submit this attempt now").click()
        await expect(b.get_by_text("Your exam is submitted.")).to_be_visible()
        await audit(b)
        await expect(_cell(teacher, bob.id, "state")).to_have_text("Submitted")

        # Alice submits herself: her row follows.
        await a.get_by_role("button", name=re.compile("Review and submit")).click()
        async with a.expect_navigation():
            await a.get_by_role("button", name="Submit exam").click()
        await audit(a)
        await expect(_cell(teacher, alice.id, "state")).to_have_text("Submitted")

        # The audit trail, on the page and in the database.
        trail = teacher.get_by_role("table", name=re.compile("Actions taken"))
        await teacher.reload()
        await expect(trail).to_contain_text("Fire alarm in room B")
        await expect(trail).to_contain_text("Left the room")
        await expect(trail).to_contain_text("Dana Educator")
        await audit(teacher)
    finally:
        for context in contexts:
            await context.close()
    for context in contexts:
        check_context(context)

    stored = await rows(
        db,
        "SELECT actor_id, action, reason FROM audit_events WHERE exam_id = :e ORDER BY at",
        e=exam.id,
    )
    assert [(r.action, r.reason) for r in stored] == [
        ("session.extend", "Fire alarm in room B"),
        ("exam.announce", None),
        ("session.force_submit", "Left the room"),
    ]
    assert {r.actor_id for r in stored} == {educator.id}
