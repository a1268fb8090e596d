"""Question generation in a real browser, with a real ``qie`` worker (embedded generator).

An educator asks for drafts from a passage, sees a refused request told beside
its field, watches the drafts arrive on the job's page without a reload (the
worker starts only once the page is open), approves one and rejects another;
the database shows what became of each.
"""

from __future__ import annotations

import re
import uuid
from pathlib import Path

from playwright.async_api import Page, expect
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from safexam.exams.models import Question
from tests.factories import PASSWORD, make_user
from tests.helpers import ServiceUrls
from tests.web.conftest import audit, path_of, sign_in_as
from tests.workers_helper import running_worker

PASSAGE = (Path(__file__).parents[1] / "qie" / "data" / "steam_engine.txt").read_text()


async def test_generate_watch_approve_and_reject(
    page: Page, db: AsyncSession, services: ServiceUrls
) -> None:
    educator = await make_user(db, "educator")
    await sign_in_as(page, educator.email, PASSWORD)
    await audit(page)
    await page.goto("/educator/generate")
    await expect(page.get_by_role("heading", name="Generate questions", level=1)).to_be_visible()
    await expect(page.get_by_role("link", name="Generate")).to_have_attribute(
        "aria-current", "page"
    )
    await audit(page, "generate-form")

    # Neither a passage nor a topic, and no count: each told beside its field.
    await page.get_by_label("How many").fill("0")
    await page.get_by_role("button", name="Generate drafts").click()
    await expect(page.get_by_role("alert")).to_have_text(
        "One field needs attention: see the message beside it."
    )
    passage = page.get_by_label("Passage")
    await expect(passage).to_have_attribute("aria-invalid", "true")
    await expect(passage).to_have_accessible_description(
        re.compile("Paste a passage or give a topic.")
    )
    await audit(page, "generate-form-error")

    await passage.fill(PASSAGE)
    await expect(page.get_by_label("How many")).to_have_value("0")
    await page.get_by_role("button", name="Generate drafts").click()
    await expect(page.get_by_label("How many")).to_have_accessible_description(
        re.compile("Ask for between 1 and 50 questions.")
    )
    await audit(page)

    await page.get_by_label("How many").fill("3")
    await page.get_by_label("Short answer").uncheck()
    await page.get_by_label("Multiple choice, one answer").check()
    await page.get_by_label("Numeric").check()
    await page.get_by_label("Tags").fill("steam, history")
    await page.get_by_role("button", name="Generate drafts").click()
    await expect(page).to_have_url(re.compile(r"/educator/generate/[0-9a-f-]{36}$"))
    job_id = path_of(page).rsplit("/", 1)[1]
    await expect(page.get_by_text("Waiting for a worker to start")).to_be_visible()
    await expect(page.get_by_role("heading", name=re.compile("^Drafts"))).to_have_count(0)
    await audit(page, "generate-waiting")

    # The worker starts now; the page, already open, shows its drafts as they come.
    loads = len(await page.evaluate("performance.getEntriesByType('navigation')"))
    with running_worker(services, ("qie",), threads=1):
        await expect(page.get_by_role("status")).to_have_text(
            "3 drafts have arrived.", timeout=30_000
        )
    assert len(await page.evaluate("performance.getEntriesByType('navigation')")) == loads
    assert path_of(page) == f"/educator/generate/{job_id}"
    await expect(page.get_by_text("Finished: 3 drafts made.")).to_be_visible()
    drafts = page.get_by_role("listitem").filter(has=page.get_by_role("heading", level=3))
    await expect(drafts).to_have_count(3)
    await expect(page.get_by_role("heading", name=re.compile("^Drafts"))).to_contain_text(
        "3 waiting for review"
    )
    await expect(page.get_by_role("link", name="Edit draft 1")).to_have_attribute(
        "href", re.compile(r"^/educator/questions/[0-9a-f-]{36}$")
    )
    await audit(page, "generate-drafts")

    await page.get_by_role("button", name="Approve draft 1").click()
    await expect(page.locator("#drafts .draft").nth(0)).to_contain_text("Approved")
    await audit(page)
    await page.get_by_role("button", name="Reject draft 2").click()
    await expect(page.locator("#drafts .draft").nth(1)).to_contain_text("Rejected")
    await expect(page.get_by_role("button", name="Approve draft 1")).to_have_count(0)
    await expect(page.get_by_role("button", name="Approve draft 3")).to_be_visible()
    await expect(page.get_by_role("heading", name=re.compile("^Drafts"))).to_contain_text(
        "1 waiting for review"
    )
    await audit(page, "generate-reviewed")

    made = list(
        await db.scalars(
            select(Question)
            .where(Question.owner_id == educator.id)
            .execution_options(populate_existing=True)
        )
    )
    assert len(made) == 3
    by_status = {q.status: q for q in made}
    assert set(by_status) == {"active", "archived", "draft"}
    approved = by_status["active"]
    assert approved.source == "qie" and approved.tags == ["steam", "history"]
    assert approved.provenance is not None
    assert approved.provenance["job_id"] == job_id
    assert approved.provenance["generator"] == "embedded"
    assert approved.provenance["review"]["decision"] == "approved"
    assert by_status["archived"].provenance["review"]["decision"] == "rejected"  # type: ignore[index]

    # The job is listed among the recent ones, with what it made.
    await page.get_by_role("link", name="Generate questions").click()
    row = page.get_by_role("row").filter(has_text="A passage")
    await expect(row).to_contain_text("Finished")
    await audit(page)
    await row.get_by_role("link").click()
    assert path_of(page) == f"/educator/generate/{job_id}"
    await audit(page)
    assert uuid.UUID(job_id)
