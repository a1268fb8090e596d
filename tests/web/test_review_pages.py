"""The review in a real browser: before release a sentence, after it the score,
each answer in words, the correct answers and the code that counted; another
student's review is a 404 page. Each scenario checks the database too."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from playwright.async_api import Browser, BrowserContext, Page, expect
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from safexam.auth.guards import Principal
from safexam.auth.models import User
from safexam.coding.models import CodingSubmission
from safexam.exams.models import Exam, Question
from safexam.grading.service import grade_session
from safexam.sessions.closing import release_results
from safexam.sessions.models import ExamSession
from tests.factories import (
    PASSWORD,
    coding_body,
    enroll,
    make_exam,
    make_question,
    make_session,
    make_user,
    mcq_body,
    paper_for,
)
from tests.helpers import one, rows
from tests.web.conftest import audit, check_context, new_context, path_of

CODING_PROMPT = (
    "Write `add` so that the program prints the sum:\n\n"
    "```python\nprint(add(1, 2))  # 3\n```\n\n"
    "| input | output |\n|---|--:|\n| `1 2` | 3 |"
)
SUBMITTED = "def add(a, b):\n    return a + b\n"


async def sign_in(page: Page, email: str, then: str) -> None:
    await page.goto(f"/sign-in?next={then}")
    await audit(page)
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url(f"**{then}")


def principal_of(user: User) -> Principal:
    return Principal(
        id=user.id,
        email=user.email,
        name=user.name,
        role=user.role,
        organization_id=user.organization_id,
    )


async def taken_exam(
    db: AsyncSession, sessionmaker: async_sessionmaker[AsyncSession]
) -> tuple[User, User, Exam, ExamSession]:
    """An educator, a student and a manually released exam of every kind, taken and graded."""
    educator = await make_user(db, "educator")
    student = await make_user(db, "student", name="Ada Student")
    questions: list[Question] = [
        await make_question(
            db, educator, "mcq_single", body=mcq_body("b"), prompt="Which is **b**?"
        ),
        await make_question(
            db,
            educator,
            "numeric",
            body={"answer": 42.5, "tolerance": 0.01},
            prompt="6 times 7.08?",
        ),
        await make_question(
            db,
            educator,
            "short_text",
            body={"answers": ["Paris", "paris, france"], "case_sensitive": False},
            prompt="The capital of *France*?",
        ),
        await make_question(
            db, educator, "coding", body=coding_body(languages=["python"]), prompt=CODING_PROMPT
        ),
    ]
    exam = await make_exam(
        db,
        educator,
        [(q, p) for q, p in zip(questions, [2.0, 3.0, 1.0, 10.0], strict=True)],
        title="Review exam",
        release_policy="manual",
    )
    await enroll(db, exam, student)
    session = await make_session(
        db,
        exam,
        student,
        paper_for(questions, [2.0, 3.0, 1.0, 10.0]),
        {
            questions[0].id: {"choice": "c"},
            questions[1].id: {"value": 42.5},
            # The short text question is left unanswered.
            questions[3].id: {"language": "python", "source": "# a later draft\n"},
        },
    )
    # The submission the judge finished before the deadline: it counts for the score.
    db.add(
        CodingSubmission(
            session_id=session.id,
            question_id=questions[3].id,
            kind="submit",
            language="python",
            source=SUBMITTED,
            status="done",
            verdict="wrong_answer",
            score=5.0,
            max_score=10.0,
            tests=[
                {"name": "small", "hidden": False, "verdict": "accepted", "time_ms": 20},
                {"name": "big", "hidden": True, "verdict": "wrong_answer", "time_ms": 21},
            ],
            tests_done=2,
            tests_total=2,
            created_at=datetime.now(UTC) - timedelta(minutes=5),
        )
    )
    await db.commit()
    async with sessionmaker() as worker_db:  # what the grading worker does
        await grade_session(worker_db, session.id)
        await worker_db.commit()
    # The educator's comment on the first answer (an override keeps the score).
    await db.execute(
        text(
            "UPDATE responses SET override_comment = :c WHERE session_id = :s AND question_id = :q"
        ),
        {
            "c": "Choice b is the one in bold.\nRead the prompt again.",
            "s": session.id,
            "q": questions[0].id,
        },
    )
    await db.commit()
    return educator, student, exam, session


async def test_results_before_and_after_release(
    page: Page, db: AsyncSession, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    educator, student, exam, session = await taken_exam(db, sessionmaker)
    review_path = f"/sessions/{session.id}/review"
    await sign_in(page, student.email, review_path)

    # Before release: a sentence, never a raw 403.
    await expect(page.get_by_role("heading", name="Results are not released yet")).to_be_visible()
    await expect(page.get_by_text("when your educator releases them")).to_be_visible()
    await audit(page, "review-not-released")
    result = await one(db, "SELECT score, max_score, released_at FROM results")
    assert result.released_at is None and result.score == 8.0
    await page.goto("/exams")
    await expect(page.get_by_role("link", name="See your results")).to_have_count(0)
    await audit(page)

    await release_results(db, exam.id, principal_of(educator))

    await page.goto("/exams")
    await expect(page.get_by_role("heading", name="Results released")).to_be_visible()
    await audit(page, "my-exams-released")
    await page.get_by_role("link", name="See your results for Review exam").click()
    assert path_of(page) == review_path
    await expect(page.get_by_role("heading", name="Results: Review exam", level=1)).to_be_visible()
    await expect(page.locator(".total-score")).to_have_text("8 of 16 points (50%)")

    items = page.locator(".review-item")
    await expect(items).to_have_count(4)
    mcq, number, text, code = (items.nth(i) for i in range(4))
    await expect(mcq.get_by_role("heading", name="Question 1")).to_contain_text("0 of 2 points")
    await expect(mcq.get_by_text("No points")).to_be_visible()
    await expect(mcq.locator("strong")).to_have_text("b")  # the prompt's Markdown
    await expect(_fact(mcq, "Your answer")).to_have_text("choice c")
    await expect(_fact(mcq, "Correct answer")).to_have_text("choice b")
    await expect(_fact(mcq, "Feedback")).to_have_text(
        "Choice b is the one in bold.\nRead the prompt again."
    )

    await expect(number.get_by_role("heading", name="Question 2")).to_contain_text("3 of 3 points")
    await expect(_fact(number, "Your answer")).to_have_text("42.5")
    await expect(_fact(number, "Correct answer")).to_have_text(
        "42.5 (answers within 0.01 of it count)"
    )

    await expect(_fact(text, "Your answer")).to_have_text("You did not answer this question.")
    await expect(_fact(text, "Accepted answers")).to_contain_text("Paris")

    await expect(code.get_by_role("heading", name="Question 4")).to_contain_text("5 of 10 points")
    await expect(code.get_by_text("Part marks")).to_be_visible()
    # The prompt's own code block and table, then the code that counted (not the draft).
    await expect(code.locator(".prompt-text pre.highlight .nb").first).to_have_text("print")
    await expect(code.locator(".prompt-text th.align-right")).to_have_text("output")
    submitted = _fact(code, "Your submitted code")
    await expect(submitted).to_contain_text("Python 3")
    await expect(submitted.locator("pre.highlight")).to_have_text(SUBMITTED)
    await expect(submitted.locator("pre.highlight .k").first).to_have_text("def")
    await expect(_fact(code, "Result of the tests")).to_contain_text(
        "Wrong answer on at least one test. 1 of 2 tests passed, 5 of 10 points."
    )
    await expect(_fact(code, "Tests")).to_contain_text("1 hidden test")
    await expect(_fact(code, "Tests")).to_contain_text("small")
    await audit(page, "review")

    # What the page shows is what the database holds.
    scores = await rows(
        db,
        "SELECT q.kind, r.score FROM responses r JOIN questions q ON q.id = r.question_id"
        " WHERE r.session_id = :s ORDER BY q.kind",
        s=session.id,
    )
    assert {row.kind: row.score for row in scores} == {
        "coding": 5.0,
        "mcq_single": 0.0,
        "numeric": 3.0,
        "short_text": 0.0,  # unanswered: scored zero
    }
    released = await one(db, "SELECT score, released_at FROM results")
    assert released.score == 8.0 and released.released_at is not None

    # At 320 CSS pixels (400% zoom of 1280) the page reflows: nothing scrolls sideways.
    await page.set_viewport_size({"width": 320, "height": 800})
    overflow = await page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0
    await audit(page, "review-narrow")
    await page.set_viewport_size({"width": 1280, "height": 720})

    # So does the finished attempt's own page.
    await page.goto(f"/sessions/{session.id}")
    await audit(page)
    await page.get_by_role("link", name="See your results").click()
    assert path_of(page) == review_path
    await audit(page)

    # The lobby leads to the same page.
    await page.goto(f"/exams/{exam.id}")
    await audit(page)
    await page.get_by_role("link", name="See your results").click()
    assert path_of(page) == review_path
    await audit(page)


def _fact(item: Any, term: str) -> Any:
    """The <dd> of a review item's <dt>``term``</dt>."""
    return (
        item.locator("dl > div").filter(has=item.page.get_by_text(term, exact=True)).locator("dd")
    )


async def test_a_running_attempt_and_another_students_review(
    browser: Browser,
    server: str,
    context: BrowserContext,
    db: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    _educator, student, exam, graded = await taken_exam(db, sessionmaker)
    # The same student's second exam, still running.
    running_exam = await make_exam(
        db, _educator, [await make_question(db, _educator)], title="Running exam"
    )
    await enroll(db, running_exam, student)
    question = (
        await rows(db, "SELECT question_id FROM exam_items WHERE exam_id = :e", e=running_exam.id)
    )[0].question_id
    running = await make_session(
        db,
        running_exam,
        student,
        [
            {
                "question_id": str(question),
                "points": 1.0,
                "position": 0,
                "choice_order": None,
                "variant": None,
            }
        ],
        {},
        status="active",
    )
    page = await context.new_page()
    await sign_in(page, student.email, f"/sessions/{running.id}/review")
    await expect(page.get_by_text("This attempt is still running.")).to_be_visible()
    await audit(page, "review-running")
    await page.get_by_role("link", name="Back to the exam").click()
    assert path_of(page) == f"/sessions/{running.id}"
    await audit(page)

    other = await make_user(db, "student")
    await enroll(db, exam, other)
    second_context = await new_context(browser, server)
    try:
        second = await second_context.new_page()
        await sign_in(second, other.email, "/exams")
        await audit(second)
        for path in (f"/sessions/{graded.id}/review", f"/sessions/{uuid.uuid4()}/review"):
            response = await second.goto(path)
            assert response is not None and response.status == 404, path
            await expect(second.get_by_role("heading", name="Page not found")).to_be_visible()
            await audit(second, "review-not-found")
        # Looking changed nothing: still one result, unreleased, for the first student.
        assert [
            (r.user_id, r.released_at)
            for r in await rows(
                db,
                "SELECT s.user_id, r.released_at FROM results r"
                " JOIN exam_sessions s ON s.id = r.session_id",
            )
        ] == [(student.id, None)]
    finally:
        await second_context.close()
    check_context(second_context)
