"""Shared question banks in a real browser: one educator shares a bank read-only,
a colleague finds its question, puts it in an exam and finds no way to edit it;
the bank is made editable and the colleague's edit is recorded. Every page is audited."""

from __future__ import annotations

from typing import Any

from playwright.async_api import Browser, Page, expect
from sqlalchemy.ext.asyncio import AsyncSession

from tests.factories import PASSWORD, make_exam, make_question, make_user
from tests.helpers import rows, signed_in
from tests.web.conftest import audit, check_context, new_context, sign_in_as
from tests.web.test_question_bank_http import PAGE, token_of

PROMPT = "Solve 3x = 12 for x."


async def test_a_bank_shared_read_only_then_editable(
    browser: Browser, server: str, page: Page, db: AsyncSession
) -> None:
    alice = await make_user(db, "educator", name="Alice Martin")
    bob = await make_user(db, "educator", name="Bob Keller")
    question = await make_question(db, alice, prompt=PROMPT, tags=["algebra"])
    exam = await make_exam(db, bob, [], title="Algebra quiz", status="draft")

    # Alice makes a bank shared read-only and files her question in it.
    await sign_in_as(page, alice.email, PASSWORD)
    await audit(page)
    await page.goto("/educator/questions")
    await audit(page)
    await page.get_by_label("Name of the bank").fill("Algebra, first year")
    await page.get_by_label("Sharing").select_option(
        label="Shared with your organization (read-only)"
    )
    await page.get_by_role("button", name="Create bank").click()
    await expect(page.get_by_role("row", name="Algebra, first year")).to_be_visible()
    await audit(page)
    await page.goto(f"/educator/questions/{question.id}")
    await audit(page)
    await page.get_by_label("Move to the bank").select_option(label="Algebra, first year")
    await page.get_by_role("button", name="Move the question").click()
    await expect(
        page.get_by_text(
            "In the bank “Algebra, first year”: Shared with your organization (read-only)."
        )
    ).to_be_visible()
    await audit(page)

    # Bob finds it through the bank filter, sees it is read-only, and uses it in his exam.
    context = await new_context(browser, server)
    bob_page = await context.new_page()
    await sign_in_as(bob_page, bob.email, PASSWORD)
    await audit(bob_page)
    await bob_page.goto("/educator/questions")
    await audit(bob_page)
    await bob_page.get_by_label("Bank", exact=True).select_option(label="Algebra, first year")
    await bob_page.get_by_role("button", name="Filter").click()
    row = bob_page.get_by_role("row").filter(has_text=PROMPT)
    await expect(row).to_contain_text("Shared with you (read-only)")
    await expect(bob_page.locator("#bank-count")).to_have_text("1 question matches the filters.")
    await audit(bob_page, "bank-shared-read-only")
    await row.get_by_role("link", name=PROMPT).click()
    await expect(bob_page.get_by_role("heading", level=1)).to_have_text(
        "Preview as a student sees it"
    )
    await expect(bob_page.get_by_text("shared with your organization (read-only)")).to_be_visible()
    await expect(bob_page.get_by_role("link", name="Edit")).to_have_count(0)
    await expect(bob_page.get_by_role("button", name="Edit")).to_have_count(0)
    await audit(bob_page)
    await bob_page.goto(f"/educator/exams/{exam.id}")
    await audit(bob_page)
    await bob_page.get_by_label("Words in the question").fill("3x")
    await bob_page.get_by_role("button", name="Search").click()
    await audit(bob_page)
    await bob_page.get_by_role("button", name=f"Add “{PROMPT}”").click()
    await audit(bob_page)
    held = await rows(db, "SELECT question_id FROM exam_items WHERE exam_id = :e", e=exam.id)
    assert [r.question_id for r in held] == [question.id]

    # Alice makes the bank editable.
    await page.goto("/educator/questions")
    await audit(page)
    await page.get_by_label("Sharing of Algebra, first year", exact=True).select_option("org_edit")
    await page.get_by_role("button", name="Save the sharing of Algebra, first year").click()
    await expect(page.get_by_label("Sharing of Algebra, first year", exact=True)).to_have_value(
        "org_edit"
    )
    await audit(page, "bank-banks")

    # Bob edits it now; the edit carries his name in the trail.
    await bob_page.goto("/educator/questions")
    await audit(bob_page)
    row = bob_page.get_by_role("row").filter(has_text=PROMPT)
    await expect(row).to_contain_text("Shared with you (can edit)")
    await row.get_by_role("link", name=PROMPT).click()
    await expect(bob_page.get_by_text("Your changes are recorded")).to_be_visible()
    await audit(bob_page, "bank-shared-edit")
    await bob_page.get_by_label("Prompt", exact=True).fill("Solve 4x = 12 for x.")
    await bob_page.get_by_role("button", name="Save changes").click()
    await expect(
        bob_page.get_by_role("status").filter(has_text="The question is saved.")
    ).to_be_visible()
    await audit(bob_page)
    trail = await rows(
        db,
        "SELECT actor_id FROM audit_events WHERE action = 'question.edit' AND subject_id = :q",
        q=question.id,
    )
    assert [r.actor_id for r in trail] == [bob.id]
    edited = await rows(db, "SELECT prompt FROM questions WHERE id = :q", q=question.id)
    assert edited[0].prompt == "Solve 4x = 12 for x."
    await context.close()
    check_context(context)


async def test_the_bank_forms_tell_their_errors_and_refuse_read_only_edits(
    make_client: Any, db: AsyncSession
) -> None:
    """Without a browser: a bank name blank or already used is told beside the field,
    and a read-only shared question cannot be changed through its form."""
    alice_client, alice = await signed_in(make_client, db, "educator")
    token = await token_of(alice_client, "/educator/questions")
    blank = await alice_client.post(
        "/educator/questions/banks",
        data={"_csrf_token": token, "bank_name": "  ", "bank_sharing": "org_read"},
        headers=PAGE,
    )
    assert blank.status_code == 422
    assert 'id="bank_name-error">Name must not be blank.' in blank.text
    made = await alice_client.post(
        "/educator/questions/banks",
        data={"_csrf_token": token, "bank_name": "Geometry", "bank_sharing": "org_read"},
        headers=PAGE,
        follow_redirects=False,
    )
    assert made.status_code == 303
    again = await alice_client.post(
        "/educator/questions/banks",
        data={"_csrf_token": token, "bank_name": "Geometry", "bank_sharing": "private"},
        headers=PAGE,
    )
    assert again.status_code == 409
    assert 'id="bank_name-error">You already have a bank named &#39;Geometry&#39;.' in again.text

    question = await make_question(db, alice, prompt="Angles of a triangle")
    bank_id = (await rows(db, "SELECT id FROM question_banks WHERE owner_id = :o", o=alice.id))[
        0
    ].id
    moved = await alice_client.post(
        f"/educator/questions/{question.id}/bank",
        data={"_csrf_token": token, "bank_id": str(bank_id)},
        headers=PAGE,
        follow_redirects=False,
    )
    assert moved.status_code == 303
    bob_client, _ = await signed_in(make_client, db, "educator")
    opened = await bob_client.get(
        f"/educator/questions/{question.id}", headers=PAGE, follow_redirects=False
    )
    assert opened.status_code == 303
    assert opened.headers["location"] == f"/educator/questions/{question.id}/preview"
    bob_token = await token_of(bob_client, "/educator/questions")
    refused = await bob_client.post(
        f"/educator/questions/{question.id}",
        data={"_csrf_token": bob_token, "prompt": "Taken over"},
        headers=PAGE,
    )
    assert refused.status_code == 403
    assert "shared read-only" in refused.text
    assert await rows(db, "SELECT prompt FROM questions WHERE id = :q", q=question.id) == [
        ("Angles of a triangle",)
    ]
