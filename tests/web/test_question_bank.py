"""An educator's question bank in a real browser: one question of each kind
written through the forms, a mistake told in words beside its field, an edit,
the student's view, and the list's filters finding them. Every page is audited."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.async_api import Page, expect
from sqlalchemy.ext.asyncio import AsyncSession

from safexam.coding.sandbox.process import bwrap_path
from tests.factories import PASSWORD, make_user
from tests.helpers import ServiceUrls, rows
from tests.web.conftest import audit, path_of, sign_in_as
from tests.workers_helper import Worker, running_worker

EDIT_PATH = re.compile(r"^/educator/questions/[0-9a-f-]{36}\?saved=1$")


async def new_question(page: Page, kind_label: str, prompt: str, shot: str | None = None) -> None:
    await page.goto("/educator/questions/new")
    await audit(page, "bank-kinds")
    await page.get_by_role("link", name=kind_label, exact=True).click()
    await expect(page.get_by_role("heading", level=1)).to_have_text(
        f"New {kind_label.lower()} question"
    )
    await audit(page, shot)
    await page.get_by_label("Prompt", exact=True).fill(prompt)


async def create(page: Page) -> None:
    await page.get_by_role("button", name="Create question").click()
    await expect(
        page.get_by_role("status").filter(has_text="The question is saved.")
    ).to_be_visible()
    assert EDIT_PATH.match(path_of(page)), page.url
    await audit(page)


@pytest.fixture
def judge_worker(services: ServiceUrls) -> Iterator[Worker | None]:
    """A judge worker, starting while the flow writes its first questions."""
    if bwrap_path() is None:
        yield None
        return
    with running_worker(services, ("judge",), threads=1, wait_ready=False) as worker:
        yield worker


async def test_an_educator_writes_one_question_of_each_kind(
    page: Page, db: AsyncSession, judge_worker: Worker | None
) -> None:
    educator = await make_user(db, "educator")
    await sign_in_as(page, educator.email, PASSWORD)
    await audit(page)
    await page.goto("/educator/questions")
    await expect(page.get_by_text("Your bank is empty.")).to_be_visible()
    await audit(page, "bank-empty")

    # Single choice, with a live preview of the prompt and a mistake first.
    await new_question(page, "Single choice", "What is **2 + 2**?", "bank-new-mcq")
    await expect(page.locator("#prompt-preview strong")).to_have_text("2 + 2")
    await page.get_by_label("Text of choice A").fill("4")
    await page.get_by_label("Text of choice B").fill("4")
    await page.get_by_label("Correct: choice A").check()
    await page.get_by_label("Tags", exact=True).fill("Arithmetic, week 1")
    await page.get_by_label("Status").select_option("active")
    await page.get_by_role("button", name="Create question").click()
    await expect(page.locator("#body\\.choices-error")).to_have_text(
        "Two choices have the same text."
    )
    await expect(page.get_by_role("alert")).to_contain_text("One field needs attention")
    await audit(page, "bank-form-error")
    # What was typed is still there; the server's "Add a choice" gives one more row.
    await expect(page.get_by_label("Text of choice B")).to_have_value("4")
    await page.get_by_role("button", name="Add a choice").click()
    await page.get_by_label("Text of choice B").fill("5")
    await page.get_by_label("Text of choice C").fill("22")
    await expect(page.get_by_label("Text of choice D")).to_have_value("")
    await audit(page)
    await create(page)
    mcq_path = path_of(page).split("?")[0]

    # Seen as a student sees it: the student's own controls, disabled.
    await page.get_by_role("link", name="Preview as a student sees it").click()
    await expect(page.locator(".prompt strong")).to_have_text("2 + 2")
    await expect(page.get_by_role("radio", name="22")).to_be_disabled()
    await expect(page.get_by_text("Correct")).to_have_count(0)
    await audit(page, "bank-preview-mcq")

    # Multiple choice.
    await new_question(page, "Multiple choice", "Which are prime?")
    for letter, text in (("A", "2"), ("B", "3")):
        await page.get_by_label(f"Text of choice {letter}").fill(text)
        await page.get_by_label(f"Correct: choice {letter}").check()
    await page.get_by_role("button", name="Add a choice").click()
    await audit(page)
    await page.get_by_label("Text of choice C").fill("4")
    await page.get_by_label("Partial credit", exact=False).check()
    await create(page)

    # A number, parametric: sample variants on its page.
    await new_question(page, "Number", "What is {{ a }} times 3?")
    await page.get_by_label("Tolerance", exact=True).fill("0.5")
    await page.get_by_text("Parameters (a variant for each student)").click()
    await page.get_by_label("Answer expression (parametric questions)").fill("a * 3")
    await page.get_by_label("Name of parameter 1").fill("a")
    await page.get_by_label("Minimum of parameter 1").fill("2")
    await page.get_by_label("Maximum of parameter 1").fill("9")
    await create(page)
    await expect(page.get_by_role("heading", name="Sample variants")).to_be_visible()
    await expect(page.locator(".samples article")).to_have_count(3)
    numeric_path = path_of(page).split("?")[0]

    # Short answer.
    await new_question(page, "Short answer", "Name the capital of France.")
    await page.get_by_label("Accepted answer 1").fill("Paris")
    await page.get_by_label("Accepted answer 2").fill("Paree")
    await page.get_by_role("button", name="Add an answer").click()
    await page.get_by_label("Accepted answer 3").fill("Lutetia")
    # Remove posts the form and comes back without the row.
    await page.get_by_role("button", name="Remove accepted answer 2").click()
    await expect(page.get_by_label("Accepted answer 2")).to_have_value("Lutetia")
    await expect(page.get_by_label("Accepted answer 1")).to_have_value("Paris")
    await audit(page)
    await create(page)

    # Coding: a language with its starter code and template, a visible and a hidden test.
    await new_question(page, "Coding", "Write `add(a, b)`.", "bank-new-coding")
    await page.get_by_text("Python", exact=True).click()
    await page.get_by_label("Students may answer in Python").check()
    await page.get_by_label("Starter code in Python").fill("def add(a, b):\n    pass\n")
    await page.get_by_label("Template in Python").fill(
        "{{ SOURCE }}\nprint(add(*map(int, input().split())))\n"
    )
    await page.get_by_label("Name of test 1").fill("small")
    await page.get_by_label("Input of test 1").fill("1 2")
    await page.get_by_label("Expected output of test 1").fill("3")
    await page.get_by_label("Name of test 2").fill("big")
    await page.get_by_label("Input of test 2").fill("500 700")
    await page.get_by_label("Expected output of test 2").fill("1200")
    await page.get_by_label("Points of test 2").fill("2")
    await page.get_by_label("Hidden: test 2").check()
    # With scripts, "Add a test" adds the row in place (no reload, nothing lost).
    await page.get_by_role("button", name="Add a test").click()
    await page.get_by_label("Name of test 3").fill("zero")
    await page.get_by_label("Input of test 3").fill("0 0")
    await page.get_by_label("Expected output of test 3").fill("0")
    await expect(page.get_by_label("Hidden: test 3")).not_to_be_checked()
    await page.get_by_label("Processor time (seconds)").fill("1")
    await create(page)
    coding_path = path_of(page).split("?")[0]

    # Try it: a reference solution against every test, on the judge's workers.
    await page.get_by_role("button", name="Try it").click()
    await expect(page.get_by_role("alert")).to_have_text(
        "Write the reference solution first: it is run against every test."
    )
    await audit(page)
    await page.get_by_label("Reference solution").fill("def add(a, b):\n    return a + b\n")
    await page.get_by_role("button", name="Try it").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text(
        "Try it: the reference solution"
    )
    if judge_worker is not None:
        status = page.locator("#trial [role=status]")
        try:
            await expect(status).to_have_text("3 of 3 tests passed: 4 of 4 points.", timeout=30_000)
        except AssertionError:
            print(judge_worker.log()[-4000:])
            raise
        big = page.locator('[data-test-name="big"]')
        await expect(big).to_contain_text("Hidden")
        await expect(big).to_contain_text("Passed")
        await expect(big).to_contain_text("1200")
    await audit(page, "bank-try-it")
    await page.goto(coding_path)
    await audit(page, "bank-edit-coding")
    await page.get_by_role("link", name="Preview as a student sees it").click()
    await expect(page.get_by_label("Code for question 1")).to_have_value(
        "def add(a, b):\n    pass\n"
    )
    await expect(page.get_by_label("Code for question 1")).to_be_disabled()
    await expect(page.locator("[data-visible-test]")).to_have_count(2)
    await expect(page.get_by_text("500 700")).to_have_count(0)
    await audit(page, "bank-preview-coding")

    # Edit one.
    await page.goto(numeric_path)
    await audit(page, "bank-edit-numeric")
    await page.get_by_label("Tolerance", exact=True).fill("0.25")
    await page.get_by_role("button", name="Save changes").click()
    await expect(
        page.get_by_role("status").filter(has_text="The question is saved.")
    ).to_be_visible()
    await audit(page)

    stored = dict(
        await rows(
            db,
            "SELECT kind, body FROM questions WHERE owner_id = :o",
            o=educator.id,
        )
    )
    assert set(stored) == {"mcq_single", "mcq_multi", "numeric", "short_text", "coding"}
    assert stored["mcq_single"]["choices"] == [
        {"id": "a", "text": "4"},
        {"id": "b", "text": "5"},
        {"id": "c", "text": "22"},
    ]
    assert stored["mcq_multi"]["answer"] == ["a", "b"]
    assert stored["mcq_multi"]["partial_credit"] is True
    assert stored["numeric"]["tolerance"] == 0.25
    assert stored["numeric"]["parameters"][0]["name"] == "a"
    assert stored["short_text"]["answers"] == ["Paris", "Lutetia"]
    coding = stored["coding"]
    assert coding["languages"] == ["python"]
    assert coding["limits"]["cpu_time_s"] == 1.0
    assert [(t["name"], t["hidden"], t["points"]) for t in coding["tests"]] == [
        ("small", False, 1.0),
        ("big", True, 2.0),
        ("zero", False, 1.0),
    ]

    # The list, and its filters.
    await page.goto("/educator/questions")
    await expect(page.locator("#bank-count")).to_have_text("5 questions.")
    await audit(page, "bank-list")
    await page.get_by_label("Kind").select_option("coding")
    await page.get_by_role("button", name="Filter").click()
    await expect(page.locator("#bank-count")).to_have_text("1 question matches the filters.")
    await expect(page.get_by_role("link", name="Write add(a, b).")).to_be_visible()
    await audit(page, "bank-list-filtered")
    await page.goto("/educator/questions")
    await audit(page)
    await page.get_by_label("Tag", exact=True).fill("arithmetic")
    await page.get_by_role("button", name="Filter").click()
    await expect(page.locator("tbody tr")).to_have_count(1)
    await audit(page)
    await page.get_by_role("link", name="What is 2 + 2?").click()
    assert path_of(page) == mcq_path
    await audit(page)
    await page.goto("/educator/questions?q=capital")
    await expect(page.locator("tbody tr")).to_have_count(1)
    await expect(page.get_by_role("link", name="Name the capital of France.")).to_be_visible()
    await audit(page)
