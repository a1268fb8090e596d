"""The exam builder: an educator builds, enrols and publishes an exam in a real
browser; then, without a browser, who may use it and what a roster with bad
rows does.

The rule for a roster with bad rows (``safexam.exams.roster``): every row is
checked before anything is written; the good rows are enrolled together in one
transaction, each refused row is left out and reported with its line and the
reason in words, and a roster that cannot be read as a whole (an unknown
column, no students) changes nothing.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from playwright.async_api import Browser, Page, expect
from sqlalchemy.ext.asyncio import AsyncSession

from tests.factories import PASSWORD, make_exam, make_question, make_user
from tests.helpers import login, rows
from tests.web.conftest import audit, check_context, new_context, path_of, sign_in_as

PAGE = {"Accept": "text/html,application/xhtml+xml"}
ZONE = "America/New_York"


async def _items(db: AsyncSession, exam_id: Any) -> list[tuple[Any, ...]]:
    found = await rows(
        db,
        "SELECT i.position, q.prompt, i.draw_tag, i.draw_count, i.points FROM exam_items i "
        "LEFT JOIN questions q ON q.id = i.question_id WHERE i.exam_id = :e ORDER BY i.position",
        e=exam_id,
    )
    return [tuple(r) for r in found]


async def test_an_educator_builds_enrols_and_publishes_an_exam(
    browser: Browser, server: str, db: AsyncSession
) -> None:
    educator = await make_user(db, "educator", name="Ada Educator")
    first = await make_user(db, "student", name="First Student")
    second = await make_user(db, "student", name="Second Student")
    await make_question(db, educator, prompt="What is the capital of France?", points=1)
    for n in (1, 2):
        await make_question(db, educator, prompt=f"Algebra {n}: solve for x", tags=["algebra"])
    await make_question(db, educator, prompt="Draft algebra", tags=["algebra"], status="draft")

    context = await new_context(browser, server, timezone_id=ZONE)
    page: Page = await context.new_page()
    await sign_in_as(page, educator.email, PASSWORD)
    assert path_of(page) == "/educator/exams"
    await expect(page.get_by_role("heading", name="Exams", level=1)).to_be_visible()
    await expect(page.get_by_text("You have no exams yet.")).to_be_visible()
    await audit(page, "educator-exams-empty")

    # A new exam: the window is typed in the browser's zone, and the page says which.
    await page.get_by_role("link", name="New exam").click()
    await expect(page.locator("#zone-hint")).to_have_text(
        f"Dates and times are in your time zone ({ZONE})."
    )
    await page.get_by_role("button", name="Create exam").click()
    await expect(page.locator("#title-error")).to_have_text("Give the exam a title.")
    await expect(page.locator("#opens_at-error")).to_have_text(
        "Enter a date and a time, such as 2026-06-01 09:00."
    )
    await audit(page, "exam-new-errors")
    opens = (datetime.now(ZoneInfo(ZONE)) + timedelta(days=2)).replace(
        hour=9, minute=0, second=0, microsecond=0
    )
    closes = opens + timedelta(days=5, hours=8)
    await page.get_by_label("Title").fill("Algebra midterm")
    await page.get_by_label("Opens", exact=True).fill(opens.strftime("%Y-%m-%dT%H:%M"))
    await page.get_by_label("Closes", exact=True).fill(closes.strftime("%Y-%m-%dT%H:%M"))
    await page.get_by_label("Time allowed (minutes)").fill("45")
    await page.get_by_label("Students see their results").select_option("after_close")
    await page.get_by_label("Ask students to stay in full screen").check()
    await page.get_by_role("button", name="Create exam").click()
    await expect(page.get_by_role("heading", name="Algebra midterm", level=1)).to_be_visible()
    exam = (
        await rows(db, "SELECT id, opens_at, closes_at, duration_minutes, integrity FROM exams")
    )[0]
    assert exam.opens_at == opens.astimezone(UTC)
    assert exam.closes_at == closes.astimezone(UTC)
    assert exam.duration_minutes == 45 and exam.integrity["require_fullscreen"] is True
    # Shown back in the same zone it was typed in.
    await expect(page.get_by_label("Opens", exact=True)).to_have_value(
        opens.strftime("%Y-%m-%dT%H:%M")
    )
    await audit(page, "builder-new")

    # A question from the bank, a draw from a tag; reorder; points.
    await page.get_by_label("Words in the question").fill("France")
    await page.get_by_role("button", name="Search").click()
    await audit(page, "builder-bank-search")
    await page.get_by_role("button", name="Add “What is the capital of France?”").click()
    await page.get_by_label("Tag to draw from").fill("algebra")
    await page.get_by_label("How many questions").fill("3")
    await page.get_by_label("Points each").fill("2")
    await page.get_by_role("button", name="Add draw").click()
    await audit(page)
    assert [(r[1], r[2]) for r in await _items(db, exam.id)] == [
        ("What is the capital of France?", None),
        (None, "algebra"),
    ]
    await page.get_by_role("button", name="Move item 2 up").click()
    await audit(page)
    await page.get_by_label("Points for item 2").fill("5")
    await page.get_by_role("button", name="Save points and counts").click()
    assert await _items(db, exam.id) == [
        (0, None, "algebra", 3, 2.0),
        (1, "What is the capital of France?", None, None, 5.0),
    ]
    await expect(
        page.get_by_text("Each student gets 4 questions, worth 11 points in all.")
    ).to_be_visible()
    await audit(page, "builder-items")

    # Two students by CSV upload; the bad row is refused and says why.
    roster = (
        f"email,extra_minutes\n{first.email.upper()},15\n{second.email},\nthird@college.edu,lots\n"
    )
    await page.get_by_label("Or upload a CSV file").set_input_files(
        {"name": "roster.csv", "mimeType": "text/csv", "buffer": roster.encode()}
    )
    await page.get_by_role("button", name="Enrol students").click()
    report = page.locator("#roster-report")
    await expect(report).to_have_text("2 students enrolled; 1 row refused and left out.")
    refused = page.get_by_role("table", name="Rows refused")
    await expect(refused).to_contain_text(
        "Extra minutes must be a whole number from 0 to 10000, not “lots”."
    )
    await expect(page.get_by_label("Paste students")).to_have_value("third@college.edu,lots")
    enrolled = page.get_by_role("table", name="Enrolled students")
    await expect(enrolled.get_by_role("row", name=re.compile(first.email))).to_contain_text(
        "15 minutes more"
    )
    await audit(page, "builder-roster-report")
    assert sorted(
        (r.email, r.extra_minutes)
        for r in await rows(db, "SELECT email, extra_minutes FROM enrollments")
    ) == sorted([(first.email, 15), (second.email, 0)])

    # Publishing shows what stands in the way, in words.
    await page.get_by_role("button", name="Publish exam").click()
    await expect(page.locator("#publish-problems")).to_contain_text(
        "Item 1 (draw from “algebra”) draws 3 questions tagged “algebra”, but only 2 active "
        "questions carry that tag: lower the count, or tag more active questions."
    )
    await audit(page, "builder-publish-problem")
    assert (await rows(db, "SELECT status FROM exams"))[0].status == "draft"

    # Fixed: the draw takes 2 instead of 3, and the exam is published.
    await page.get_by_label("Questions drawn for item 1").fill("2")
    await page.get_by_role("button", name="Save points and counts").click()
    await audit(page)
    assert (await _items(db, exam.id))[0] == (0, None, "algebra", 2, 2.0)
    await page.get_by_role("button", name="Publish exam").click()
    published = page.locator("#published")
    await expect(published).to_contain_text("Enrolled students (2 now) find “Algebra midterm”")
    await expect(published).to_contain_text("have 45 minutes each")
    await expect(published).to_contain_text(
        "Your score is shown once the exam has closed for everyone."
    )
    await expect(page.get_by_label("Opens", exact=True)).to_be_disabled()
    await audit(page, "builder-published")
    assert (await rows(db, "SELECT status FROM exams"))[0].status == "published"

    await page.get_by_role("link", name="Exams", exact=True).first.click()
    scheduled = page.get_by_role("table", name="Scheduled")
    await expect(scheduled.get_by_role("link", name="Monitor Algebra midterm")).to_have_attribute(
        "href", f"/educator/exams/{exam.id}/monitor"
    )
    await expect(scheduled.get_by_role("link", name="Results of Algebra midterm")).to_be_visible()
    await audit(page, "educator-exams")
    await context.close()
    check_context(context)


# ---------------------------------------------------------------- without a browser


async def test_students_and_other_educators_cannot_use_the_builder(
    make_client: Any, db: AsyncSession
) -> None:
    owner = await make_user(db, "educator")
    other = await make_user(db, "educator")
    student = await make_user(db, "student")
    question = await make_question(db, owner)
    exam = await make_exam(db, owner, [question], status="draft")

    as_student = await make_client()
    await login(as_student, student.email)
    page = await as_student.get("/educator/exams", headers=PAGE)
    assert page.status_code == 403 and "This page is for educators." in page.text
    api = await as_student.post(
        f"/api/v1/exams/{exam.id}/enrollments/import", json={"text": student.email}
    )
    assert api.status_code == 403

    as_other = await make_client()
    await login(as_other, other.email)
    page = await as_other.get(f"/educator/exams/{exam.id}", headers=PAGE)
    assert page.status_code == 404 and "belongs to another account" in page.text
    listing = await as_other.get("/educator/exams", headers=PAGE)
    assert listing.status_code == 200 and exam.title not in listing.text
    api = await as_other.post(
        f"/api/v1/exams/{exam.id}/enrollments/import", json={"text": student.email}
    )
    assert api.status_code == 404
    assert await rows(db, "SELECT 1 FROM enrollments") == []


async def test_a_roster_with_bad_rows_enrols_the_good_ones_and_reports_every_other(
    client: Any, db: AsyncSession
) -> None:
    owner = await make_user(db, "educator")
    colleague = await make_user(db, "educator")
    student = await make_user(db, "student")
    exam = await make_exam(db, owner, [await make_question(db, owner)], status="draft")
    await login(client, owner.email)
    url = f"/api/v1/exams/{exam.id}/enrollments/import"

    roster = "\n".join(
        [
            f"{student.email}; x1.5",
            "new.person@college.edu;20",
            f"{colleague.email};5",
            "not-an-email;5",
            f"{student.email.upper()};10",
            "late@college.edu;-3",
            "slow@college.edu;x20",
            "",
        ]
    )
    response = await client.post(url, json={"text": roster})
    assert response.status_code == 200, response.text
    report = response.json()
    assert [(r["line"], r["email"], r["has_account"]) for r in report["enrolled"]] == [
        (1, student.email, True),
        (2, "new.person@college.edu", False),
    ]
    assert [(r["line"], r["code"]) for r in report["refused"]] == [
        (3, "not_a_student"),
        (4, "bad_email"),
        (5, "duplicate"),
        (6, "bad_extra_minutes"),
        (7, "bad_multiplier"),
    ]
    assert report["refused"][0]["reason"] == (
        f"{colleague.email} belongs to an educator account, not a student."
    )
    assert report["refused"][2]["reason"] == f"{student.email} is already on line 1."
    enrolled = await rows(
        db, "SELECT email, extra_minutes, time_multiplier FROM enrollments ORDER BY email"
    )
    assert [tuple(r) for r in enrolled] == sorted(
        [(student.email, 0, 1.5), ("new.person@college.edu", 20, 1.0)]
    )
    audit_rows = await rows(db, "SELECT action, details FROM audit_events")
    assert [(r.action, r.details) for r in audit_rows] == [
        ("enrollments_imported", {"enrolled": 2, "refused": 5})
    ]

    # A roster that cannot be read as a whole changes nothing.
    unreadable = f"email,extra_minutes,room\n{colleague.email},5,B12\nfresh@college.edu,5,B13\n"
    response = await client.post(url, json={"text": unreadable})
    assert response.status_code == 422
    assert response.json()["error"]["details"][0]["field"] == "text"
    assert "'room'" in response.json()["error"]["message"]
    assert len(await rows(db, "SELECT 1 FROM enrollments")) == 2

    # A header in another order, and an accommodation left out keeps its value.
    response = await client.post(url, json={"text": f"multiplier,email\n,{student.email}\n"})
    assert response.status_code == 200 and response.json()["refused"] == []
    kept = await rows(
        db, "SELECT time_multiplier FROM enrollments WHERE email = :e", e=student.email
    )
    assert kept[0].time_multiplier == 1.5


async def test_the_window_is_stored_in_utc_from_the_zone_it_was_typed_in(
    client: Any, db: AsyncSession
) -> None:
    educator = await make_user(db, "educator")
    await login(client, educator.email)
    form = await client.get("/educator/exams/new", headers=PAGE)
    token = re.search(r'name="_csrf_token" value="([^"]+)"', form.text)
    assert token
    fields = {
        "_csrf_token": token.group(1),
        "title": "Paris exam",
        "opens_at": "2031-07-01T09:00",
        "closes_at": "2031-07-01T08:00",
        "tz": "Europe/Paris",
        "duration_minutes": "30",
        "attempts_allowed": "1",
        "release_policy": "manual",
    }
    refused = await client.post("/educator/exams/new", data=fields, headers=PAGE)
    assert refused.status_code == 422
    assert 'id="closes_at-error">The exam must close after it opens.</p>' in refused.text
    # What was typed is shown again, in the zone it was typed in.
    assert 'value="2031-07-01T08:00"' in refused.text and 'value="Europe/Paris"' in refused.text

    created = await client.post(
        "/educator/exams/new",
        data={**fields, "closes_at": "2031-07-01T11:30"},
        headers=PAGE,
        follow_redirects=False,
    )
    assert created.status_code == 303, created.text
    stored = (await rows(db, "SELECT id, opens_at, closes_at FROM exams"))[0]
    assert created.headers["location"] == f"/educator/exams/{stored.id}"
    assert stored.opens_at == datetime(2031, 7, 1, 7, 0, tzinfo=UTC)
    assert stored.closes_at == datetime(2031, 7, 1, 9, 30, tzinfo=UTC)


async def _token(client: Any, path: str) -> str:
    found = re.search(
        r'name="_csrf_token" value="([^"]+)"', (await client.get(path, headers=PAGE)).text
    )
    assert found
    return found.group(1)


async def test_items_enrolments_and_a_published_window_from_the_forms(
    client: Any, db: AsyncSession
) -> None:
    educator = await make_user(db, "educator")
    student = await make_user(db, "student")
    first = await make_question(db, educator, prompt="First question")
    second = await make_question(db, educator, prompt="Second question")
    draft = await make_exam(db, educator, [first, second], status="draft")
    await login(client, educator.email)
    url = f"/educator/exams/{draft.id}"
    token = await _token(client, url)

    # Points that are not a number are refused beside the field, and nothing changes.
    bad = await client.post(
        f"{url}/items",
        data={"_csrf_token": token, "action": "points", "points-2": "lots"},
        headers=PAGE,
    )
    assert bad.status_code == 422
    assert 'id="points-2-error">Points must be a number, not “lots”.</p>' in bad.text
    removed = await client.post(
        f"{url}/items",
        data={"_csrf_token": token, "action": "remove:0", "points-2": "3"},
        headers=PAGE,
        follow_redirects=False,
    )
    assert removed.status_code == 303 and removed.headers["location"] == f"{url}#items"
    assert await _items(db, draft.id) == [(0, "Second question", None, None, 3.0)]

    # Enrolled from the text box, then removed with the list's button.
    pasted = await client.post(
        f"{url}/enrollments", data={"_csrf_token": token, "roster": student.email}, headers=PAGE
    )
    assert pasted.status_code == 200 and "1 student enrolled." in pasted.text
    gone = await client.post(
        f"{url}/enrollments/remove",
        data={"_csrf_token": token, "email": student.email},
        headers=PAGE,
        follow_redirects=False,
    )
    assert gone.status_code == 303
    assert await rows(db, "SELECT 1 FROM enrollments") == []

    # A published exam's window may only grow: the refusal is a sentence beside Closes.
    published = await make_exam(db, educator, [first], status="published")
    fields = {
        "_csrf_token": token,
        "title": "Still published",
        "closes_at": (published.closes_at - timedelta(minutes=30)).strftime("%Y-%m-%dT%H:%M"),
        "tz": "UTC",
        "release_policy": "manual",
    }
    refused = await client.post(f"/educator/exams/{published.id}", data=fields, headers=PAGE)
    assert refused.status_code == 409
    assert 'id="closes_at-error">A published exam can close later, never earlier.</p>' in (
        refused.text
    )
    later = (published.closes_at + timedelta(hours=1)).replace(second=0, microsecond=0)
    saved = await client.post(
        f"/educator/exams/{published.id}",
        data={**fields, "closes_at": later.strftime("%Y-%m-%dT%H:%M")},
        headers=PAGE,
        follow_redirects=False,
    )
    assert saved.status_code == 303
    stored = (await rows(db, "SELECT title, closes_at FROM exams WHERE id = :e", e=published.id))[0]
    assert (stored.title, stored.closes_at) == ("Still published", later)


async def test_publish_problems_and_unreadable_files_are_told_in_words(
    client: Any, db: AsyncSession
) -> None:
    educator = await make_user(db, "educator")
    draft = await make_exam(
        db, educator, [], status="draft", closes_at=datetime.now(UTC) - timedelta(minutes=1)
    )
    await login(client, educator.email)
    url = f"/educator/exams/{draft.id}"
    token = await _token(client, url)

    refused = await client.post(f"{url}/publish", data={"_csrf_token": token}, headers=PAGE)
    assert refused.status_code == 422
    assert "The exam has no questions yet: add a question from the bank" in refused.text
    assert "The exam&#39;s window has already closed: move “Closes” to a later time." in (
        refused.text
    )
    assert (await rows(db, "SELECT status FROM exams"))[0].status == "draft"

    not_text = await client.post(
        f"{url}/enrollments",
        data={"_csrf_token": token},
        files={"roster_file": ("roster.csv", b"\xff\xfe\x00bad", "text/csv")},
        headers=PAGE,
    )
    assert not_text.status_code == 422
    assert "The file is not text: save it as CSV (UTF-8) and try again." in not_text.text
    empty = await client.post(
        f"{url}/enrollments", data={"_csrf_token": token, "roster": "  \n"}, headers=PAGE
    )
    assert empty.status_code == 422 and "The roster has no students in it." in empty.text
    assert await rows(db, "SELECT 1 FROM enrollments") == []
