"""The operator's pages in a real browser: a dead job retried from the queues page, which
follows the ledger live; accounts disabled and re-roled, with effect on open sign-ins."""

from __future__ import annotations

import json
import re
import time

from playwright.async_api import Browser, Page, expect
from redis.asyncio import Redis
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from safexam.core.settings import Settings
from safexam.jobs import enqueue
from safexam.jobs.kinds import GRADE_SESSION
from safexam.jobs.models import Job
from safexam.jobs.service import claim_job, mark_failed
from tests.factories import PASSWORD, make_user
from tests.helpers import one
from tests.web.conftest import audit, check_context, new_context, path_of, sign_in_as


async def test_an_operator_retries_a_dead_job_and_the_page_follows_the_ledger(
    page: Page,
    db: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
    redis: Redis,
    settings: Settings,
) -> None:
    admin = await make_user(db, "operator", name="Ada Operator")
    job = await enqueue(db, GRADE_SESSION)
    await db.flush()
    await db.execute(
        update(Job)
        .where(Job.id == job.id)
        .values(status="dead", attempts=5, error="ConnectionError: the sandbox went away")
    )
    await db.commit()
    # A worker's heartbeat, as workers write it (core.broker), for the workers table.
    await redis.hset(
        f"{settings.redis_namespace}:workers",
        "host-1:4242",
        json.dumps({"queues": ["grading", "judge"], "seen_at": time.time() - 5, "pid": 4242}),
    )

    await sign_in_as(page, admin.email, PASSWORD)
    await audit(page)
    await page.get_by_role("link", name="Queues").click()
    assert path_of(page) == "/operator/queues"
    await expect(page.get_by_role("heading", name="Queues", level=1)).to_be_visible()
    row = page.locator(f"tr[data-job-id='{job.id}']")
    await expect(row).to_contain_text("ConnectionError: the sandbox went away")
    await expect(row).to_contain_text("Dead")
    await expect(page.get_by_text("PostgreSQL: ready")).to_be_visible()
    await expect(page.get_by_role("row", name=re.compile("host-1:4242"))).to_contain_text(
        "grading, judge"
    )
    await expect(page.get_by_role("row", name=re.compile("^grading"))).to_contain_text(
        "none in 5 minutes"
    )
    await expect(
        page.get_by_role("button", name="Retry all grade_session jobs (1)")
    ).to_be_visible()
    await audit(page, "operator-queues")

    await row.get_by_role("button", name=re.compile("^Retry grade_session job")).click()
    await expect(page.get_by_role("status").filter(has_text="sent again")).to_be_visible()
    assert path_of(page) == "/operator/queues?done=one"
    await expect(page.locator(f"tr[data-job-id='{job.id}']")).to_have_count(0)
    await expect(page.get_by_text("No failed or dead jobs.")).to_be_visible()
    status = await one(db, "SELECT status, attempts, error FROM jobs WHERE id = :id", id=job.id)
    assert status.status in ("pending", "queued") and status.error is None
    actor = await one(db, "SELECT actor_id FROM audit_events WHERE action = 'job.retry'")
    assert actor.actor_id == admin.id
    await expect(page.locator("#live-status")).to_have_text("Live: this page updates by itself.")
    await audit(page, "operator-queues-retried")

    # The job fails again, through the services a worker uses, while the page is
    # open: it comes back to the list without a reload.
    await page.evaluate("window.stillTheSamePage = true")
    async with sessionmaker() as worker_db:
        claim = await claim_job(worker_db, job.id)
        assert claim is not None
        await mark_failed(worker_db, claim, "ValueError: the key does not parse", retry=False)
    await expect(page.locator(f"tr[data-job-id='{job.id}']")).to_contain_text(
        "ValueError: the key does not parse", timeout=8_000
    )
    cell = page.locator("td[data-kind='grade_session'][data-status='failed']")
    await expect(cell).to_have_text("1")
    assert await page.evaluate("window.stillTheSamePage === true")
    await audit(page, "operator-queues-live")


async def test_a_disabled_student_and_a_former_educator_lose_access_at_once(
    browser: Browser, server: str, page: Page, db: AsyncSession
) -> None:
    admin = await make_user(db, "admin", name="Ada Admin")
    student = await make_user(db, "student", name="Sam Student")
    educator = await make_user(db, "educator", name="Eve Educator")
    student_context = await new_context(browser, server)
    educator_context = await new_context(browser, server)
    try:
        student_page = await student_context.new_page()
        await sign_in_as(student_page, student.email, PASSWORD)
        await audit(student_page)
        educator_page = await educator_context.new_page()
        await sign_in_as(educator_page, educator.email, PASSWORD)
        await audit(educator_page)
        assert (await educator_context.request.get("/api/v1/questions")).status == 200
        # Not for educators (nor students: the role matrix tries every route):
        # the operator's pages are refused in words.
        response = await educator_page.goto("/operator/queues")
        assert response is not None and response.status == 403
        await expect(educator_page.get_by_role("heading", level=1)).to_have_text(
            "You do not have access to this page"
        )
        await expect(educator_page.get_by_text("This page is for administrators.")).to_be_visible()
        await audit(educator_page, "operator-refused")

        await sign_in_as(page, admin.email, PASSWORD)
        await audit(page)
        await page.goto("/operator/users")
        await expect(page.get_by_role("heading", name="Users", level=1)).to_be_visible()
        await audit(page, "operator-users")

        await page.get_by_label("Role of Eve Educator").select_option("student")
        await page.get_by_role("button", name="Change role of Eve Educator").click()
        await expect(page.get_by_role("status")).to_contain_text("The role was changed")
        await audit(page)
        # The former educator's next request is refused; signed in again, a student.
        assert (await educator_context.request.get("/api/v1/questions")).status == 401
        await educator_page.goto("/exams")
        assert path_of(educator_page).startswith("/sign-in")
        await audit(educator_page)
        await sign_in_as(educator_page, educator.email, PASSWORD)
        assert path_of(educator_page) == "/exams"
        await audit(educator_page)
        assert (await educator_context.request.get("/api/v1/questions")).status == 403

        await page.get_by_label("Name or email").fill("sam")
        await page.get_by_role("button", name="Search").click()
        await expect(page.locator("table.data caption")).to_have_text("1 account")
        await audit(page)
        await page.get_by_role("button", name="Disable Sam Student").click()
        await expect(page.get_by_role("status")).to_contain_text("signed out everywhere")
        assert path_of(page) == "/operator/users?q=sam&done=disabled"
        await expect(page.get_by_role("row", name=re.compile("Sam Student"))).to_contain_text(
            "Disabled"
        )
        await audit(page, "operator-users-disabled")
        row = await one(db, "SELECT is_active FROM users WHERE id = :id", id=student.id)
        assert row.is_active is False
        # The student's very next request: back to the sign-in page.
        await student_page.goto("/exams")
        assert path_of(student_page).startswith("/sign-in?next=%2Fexams")
        await audit(student_page)

        # Creating an account: a problem is said beside its field, then it works.
        await page.get_by_label("Name", exact=True).fill("Grace Hopper")
        await page.get_by_label("Email", exact=True).fill("not an address")
        await page.get_by_role("button", name="Create account").click()
        await expect(page.locator("#email-error")).to_have_text(
            "Enter an email address, like name@college.edu."
        )
        await expect(page.get_by_label("Email", exact=True)).to_have_attribute(
            "aria-invalid", "true"
        )
        await audit(page, "operator-users-create-error")
        await page.get_by_label("Email", exact=True).fill("grace@college.edu")
        await page.get_by_label("Role", exact=True).last.select_option("educator")
        await page.get_by_role("button", name="Create account").click()
        await expect(page.get_by_role("status")).to_contain_text("The account was created")
        await audit(page)
        made = await one(
            db, "SELECT role, password_hash FROM users WHERE email = 'grace@college.edu'"
        )
        assert made.role == "educator" and made.password_hash is None
    finally:
        await student_context.close()
        await educator_context.close()
    check_context(student_context)
    check_context(educator_context)
