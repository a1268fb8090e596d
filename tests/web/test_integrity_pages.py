"""The integrity review in a real browser: the ranked list, a pair side by side with its
regions marked, a decision with a note (audited, no score touched), a session's timeline
with the answers saved before and after an event."""

from __future__ import annotations

from datetime import timedelta

from playwright.async_api import Page, expect
from sqlalchemy.ext.asyncio import AsyncSession

from safexam.integrity.cohort import run_similarity
from safexam.integrity.models import ActivityLog
from safexam.sessions.models import ResponseHistory
from tests.helpers import one
from tests.integrity.world import cohort_world
from tests.web.conftest import audit, path_of
from tests.web.test_review_pages import sign_in


async def test_list_pair_decision_and_timeline(page: Page, db: AsyncSession) -> None:
    world = await cohort_world(db)
    await run_similarity(db, world.exam.id, world.question.id)
    ada = world.sessions["ada"]
    pasted_at = ada.started_at + timedelta(minutes=3)
    db.add(
        ActivityLog(session_id=ada.id, kind="paste", server_at=pasted_at, details={"length": 812})
    )
    # A two-line draft 40 s before the paste, the whole program 25 s after it.
    final = (await one(db, "SELECT answer FROM responses WHERE session_id = :s", s=ada.id)).answer
    draft = {"language": "python", "source": "def encode(text):\n    pass\n"}
    for seq, answer, seconds in ((3, draft, -40), (4, final, 25)):
        db.add(
            ResponseHistory(
                session_id=ada.id,
                question_id=world.question.id,
                client_seq=seq,
                answer=answer,
                saved_at=pasted_at + timedelta(seconds=seconds),
            )
        )
    await db.commit()
    base = f"/educator/exams/{world.exam.id}/integrity"

    await sign_in(page, world.owner.email, base)
    await audit(page, "integrity-overview")
    pairs = page.get_by_role("table", name="1 similar pair")
    await expect(pairs).to_be_visible()
    sessions = page.get_by_role("table", name="Most flags first", exact=False)
    await expect(
        sessions.get_by_role("row").filter(has_text=world.students["ada"].name)
    ).to_contain_text("paste: 1")

    await pairs.get_by_role("link", name="Compare", exact=False).click()
    await page.wait_for_url("**/integrity/pairs/**")
    await audit(page, "integrity-pair")
    regions = page.get_by_role("list").filter(has_text="Region 1: lines")
    await expect(regions).to_be_visible()
    # Every region of both programs is marked, and its first line labelled in words.
    marks = page.locator("pre.listing mark")
    assert await marks.count() >= 10
    await expect(page.locator(".region-tag").first).to_have_text("Region 1 starts")

    await page.get_by_label("Escalated: to be followed up").check()
    await page.get_by_label("Note (optional, kept with the decision)").fill("Same decoder")
    await page.get_by_role("button", name="Record the decision").click()
    await page.wait_for_url("**saved=pair")
    await audit(page)
    await expect(page.get_by_role("status")).to_contain_text("decision on this pair is recorded")
    await expect(page.get_by_text("Now: Escalated", exact=False)).to_be_visible()
    pair_id = path_of(page).split("/pairs/")[1].split("?")[0]
    row = await one(
        db,
        "SELECT p.decision, p.note, a.actor_id FROM similarity_pairs p"
        " JOIN audit_events a ON a.subject_id = p.id AND a.action = 'similarity.decide'"
        " WHERE p.id = :id",
        id=pair_id,
    )
    assert (row.decision, row.note, row.actor_id) == ("escalated", "Same decoder", world.owner.id)
    assert (await one(db, "SELECT count(*) AS n FROM responses WHERE score IS NOT NULL")).n == 0

    await page.get_by_role("link", name=f"Timeline of {world.students['ada'].name}").click()
    await page.wait_for_url(f"**/integrity/sessions/{ada.id}")
    await audit(page, "integrity-session")
    paste = page.get_by_role("listitem").filter(has_text="Pasted 812 characters")
    await expect(paste).to_contain_text("Flag:")
    # The answers saved around the paste: the earlier draft, then the program that replaced it.
    saves = paste.get_by_role("table", name="Answers saved around", exact=False)
    await expect(saves).to_be_visible()
    rows = saves.get_by_role("row")
    before = rows.filter(has_text="40 s before")
    after = rows.filter(has_text="25 s after")
    await expect(before).to_contain_text("Q1: Run-length encoding")
    await expect(before).to_contain_text("2 lines of code")
    await expect(before.get_by_role("cell").last).to_have_text("3")
    lines = len(final["source"].splitlines())
    await expect(after).to_contain_text(f"{lines} lines of code (")
    await expect(after.get_by_role("cell").last).to_have_text("4")
    texts = await rows.all_inner_texts()
    first = next(i for i, t in enumerate(texts) if "40 s before" in t)
    second = next(i for i, t in enumerate(texts) if "25 s after" in t)
    assert first < second
    await after.get_by_text("Lines it added").click()
    await expect(after.locator("pre")).to_contain_text("def ")
    await audit(page, "integrity-session-saves")
