"""The educator's results, regrade and release pages in a real browser, against a
real regrade worker: sort the table, see the pictures, drill into a student,
override a score with a reason, change a key, dry-run, see the diff, meet a
stale apply, apply, see the new scores, release. Each step checks the database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from playwright.async_api import Locator, Page, expect
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from safexam.auth.guards import Principal
from safexam.auth.models import User
from safexam.coding.models import CodingSubmission
from safexam.exams.models import Exam, Question
from safexam.exams.questions_service import get_owned_question, update_question
from safexam.exams.schemas import QuestionUpdate
from safexam.grading.service import grade_session, override_response
from safexam.integrity.models import ActivityLog
from safexam.sessions.models import ExamSession
from tests.factories import (
    coding_body,
    enroll,
    make_exam,
    make_question,
    make_session,
    make_user,
    mcq_body,
    paper_for,
)
from tests.helpers import ServiceUrls, one, rows
from tests.web.conftest import audit, path_of
from tests.web.test_review_pages import sign_in
from tests.workers_helper import running_worker

POINTS = [2.0, 3.0, 10.0]


def principal_of(user: User) -> Principal:
    return Principal(
        id=user.id,
        email=user.email,
        name=user.name,
        role=user.role,
        organization_id=user.organization_id,
    )


async def graded_exam(
    db: AsyncSession, sessionmaker: async_sessionmaker[AsyncSession]
) -> tuple[User, Exam, list[Question], ExamSession, ExamSession]:
    """Two graded attempts: Ada (b, 42.5, code 5/10) and Bob (a, 7, no code)."""
    educator = await make_user(db, "educator")
    ada = await make_user(db, "student", name="Ada Lovelace")
    bob = await make_user(db, "student", name="Bob Babbage")
    questions = [
        await make_question(db, educator, "mcq_single", body=mcq_body("b"), prompt="Pick **b**"),
        await make_question(
            db,
            educator,
            "numeric",
            body={"answer": 42.5, "tolerance": 0.01},
            prompt="6 times 7.08?",
        ),
        await make_question(
            db, educator, "coding", body=coding_body(languages=["python"]), prompt="Write add"
        ),
    ]
    exam = await make_exam(
        db,
        educator,
        list(zip(questions, POINTS, strict=True)),
        title="Results exam",
        release_policy="manual",
    )
    paper = paper_for(questions, POINTS)
    sessions = []
    for student, answers in (
        (ada, {questions[0].id: {"choice": "b"}, questions[1].id: {"value": 42.5}}),
        (bob, {questions[0].id: {"choice": "a"}, questions[1].id: {"value": 7}}),
    ):
        await enroll(db, exam, student)
        sessions.append(await make_session(db, exam, student, paper, answers))
    ada_session, bob_session = sessions
    db.add(
        CodingSubmission(
            session_id=ada_session.id,
            question_id=questions[2].id,
            kind="submit",
            language="python",
            source="def add(a, b):\n    return a + b\n",
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
    db.add(ActivityLog(session_id=ada_session.id, kind="focus_lost", details={}))
    await db.commit()
    async with sessionmaker() as worker_db:
        for session in sessions:
            await grade_session(worker_db, session.id)
        await worker_db.commit()
    return educator, exam, questions, ada_session, bob_session


def row_of(page: Page, name: str) -> Locator:
    return page.locator("table.results-table tbody tr").filter(has_text=name)


async def test_results_override_regrade_and_release(
    page: Page,
    db: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
    services: ServiceUrls,
) -> None:
    educator, exam, questions, ada_session, bob_session = await graded_exam(db, sessionmaker)
    results_path = f"/educator/exams/{exam.id}/results"
    await sign_in(page, educator.email, results_path)

    # The table, sorted by score on the server, and its pictures.
    await expect(page.get_by_role("heading", name="Results: Results exam")).to_be_visible()
    await expect(page.locator("table.results-table tbody tr")).to_have_count(2)
    await expect(row_of(page, "Ada Lovelace")).to_contain_text("10 / 15")
    await expect(page.get_by_role("img", name="Scores of the 2 graded students")).to_be_visible()
    await expect(page.get_by_role("img", name="Share of graded students")).to_contain_text("50%")
    await page.get_by_role("link", name="Score", exact=True).click()
    await expect(page.locator("th[aria-sort=ascending]")).to_have_text("Score ▲")
    await expect(page.locator("table.results-table tbody tr").first).to_contain_text("Bob")
    await audit(page)
    await page.get_by_role("link", name="Score", exact=True).click()
    await expect(page.locator("table.results-table tbody tr").first).to_contain_text("Ada")
    await audit(page, "results")
    await page.get_by_label("Name or email").fill("bob")
    await page.get_by_role("button", name="Show").click()
    await expect(page.locator("table.results-table tbody tr")).to_have_count(1)
    await audit(page)
    await page.get_by_role("link", name="Clear filters").click()
    await audit(page)

    # Ada's attempt: answers, per-test verdicts, the integrity timeline.
    await page.get_by_role("link", name="Ada Lovelace").click()
    assert path_of(page) == f"{results_path}/{ada_session.id}"
    await expect(page.locator("#total-score")).to_contain_text("10 of 15 points")
    tests = page.get_by_role("table", name="Each test of Q3")
    await expect(tests.get_by_role("row", name="small")).to_contain_text("Passed")
    await expect(tests.get_by_role("row", name="big (hidden)")).to_contain_text("Wrong answer")
    await expect(page.locator(".timeline")).to_contain_text("Focus lost")
    await audit(page, "results-student")

    # An override needs a reason: refused beside the field, then saved with one.
    await page.get_by_text("Change the score of Q1").click()
    await page.get_by_label("New score for Q1").fill("1.5")
    await page.get_by_role("button", name="Save the score of Q1").click()
    reason = page.get_by_label("Reason for Q1")
    await expect(reason).to_have_attribute("aria-invalid", "true")
    await expect(page.locator("#q1-reason-error")).to_have_text("Say why the score changes")
    await audit(page)
    await reason.fill("The wording was ambiguous")
    await page.get_by_role("button", name="Save the score of Q1").click()
    await expect(page.get_by_text("The score of Q1 is changed")).to_be_visible()
    await expect(page.locator("#total-score")).to_contain_text("9.5 of 15 points")
    await expect(page.get_by_role("table", name="Overrides of this attempt")).to_contain_text(
        "The wording was ambiguous"
    )
    await audit(page)
    trail = await rows(
        db,
        "SELECT actor_id, reason, exam_id FROM audit_events WHERE action = 'response.override'",
    )
    assert [(t.actor_id, t.reason, t.exam_id) for t in trail] == [
        (educator.id, "The wording was ambiguous", exam.id)
    ]

    # The key of Q1 changes to "a" through the question service.
    async with sessionmaker() as edit:
        question = await get_owned_question(edit, questions[0].id, principal_of(educator))
        await update_question(
            edit, question, QuestionUpdate(body={**questions[0].body, "answer": ["a"]})
        )
        await edit.commit()

    await page.goto(results_path)
    await audit(page)
    await page.get_by_role("link", name="Regrade").click()
    await expect(page.get_by_role("link", name="Edit Q1")).to_have_attribute(
        "href", f"/educator/questions/{questions[0].id}"
    )
    await audit(page)
    # No worker yet: the dry run waits, and the page says so.
    await page.get_by_role("button", name="Run a dry run").click()
    await expect(page.get_by_role("heading", name="Regrade running")).to_be_visible()
    await expect(page.locator("#job-progress")).to_be_visible()
    await audit(page)
    with running_worker(services, ("regrade",)):
        # The page follows the job over its SSE stream and shows the outcome by itself.
        await expect(page.get_by_role("heading", name="3. The dry run's changes")).to_be_visible(
            timeout=30_000
        )
        diff = page.get_by_role("table", name="Who changes")
        await expect(diff.get_by_role("row")).to_have_count(3)
        await expect(diff.get_by_role("row", name="Bob Babbage")).to_contain_text("Q1: 0 → 2")
        await expect(diff.get_by_role("row", name="Bob Babbage")).to_contain_text("+2")
        # Ada's Q1 moves too, but her override keeps counting.
        await expect(diff.get_by_role("row", name="Ada Lovelace")).to_contain_text(
            "Q1: 2 → 0 (overridden"
        )
        await audit(page, "regrade-diff")

        # Someone changes a score after the dry run: the apply is refused in words.
        bob_q2 = await one(
            db,
            "SELECT id FROM responses WHERE session_id = :s AND question_id = :q",
            s=bob_session.id,
            q=questions[1].id,
        )
        async with sessionmaker() as other:
            await override_response(
                other,
                bob_q2.id,
                principal_of(educator),
                score=1.0,
                comment=None,
                reason="Partial working shown",
            )
        await page.get_by_role("button", name="Apply these changes").click()
        await expect(page.get_by_role("alert")).to_contain_text("changed after this dry run")
        await audit(page)

        await page.get_by_role("button", name="Run a dry run").click()
        await expect(page.get_by_role("heading", name="3. The dry run's changes")).to_be_visible()
        await audit(page)
        await page.get_by_role("button", name="Apply these changes").click()
        await expect(page.get_by_role("heading", name="The regrade is applied")).to_be_visible()
        await expect(page.locator("#diff-summary")).to_contain_text("Changed the scores of 2")
        await audit(page)
    applied = await rows(db, "SELECT details FROM audit_events WHERE action = 'exam.regrade_apply'")
    assert len(applied) == 1 and applied[0].details["students_changed"] == 2

    await page.get_by_role("link", name="See the new scores").click()
    # Bob: Q1 now right (2) and the override of Q2 (1); Ada keeps her override of Q1.
    await expect(row_of(page, "Bob Babbage")).to_contain_text("3 / 15")
    await expect(row_of(page, "Ada Lovelace")).to_contain_text("9.5 / 15")
    await audit(page)

    # Release by hand, seeing first what students will see.
    await page.get_by_role("link", name="Release results").click()
    await expect(page.get_by_role("heading", name="What students will see")).to_be_visible()
    await expect(page.locator("#held-count")).to_have_text("2")
    await audit(page, "release")
    await page.get_by_role("button", name="Release results now").click()
    await expect(page.get_by_text("Results are released")).to_be_visible()
    await expect(page.locator("#visible-count")).to_have_text("2")
    await audit(page)
    released = await one(db, "SELECT count(*) AS n FROM results WHERE released_at IS NOT NULL")
    assert released.n == 2
    assert await one(db, "SELECT 1 FROM audit_events WHERE action = 'exam.release'")
