"""The question bank's pages without a browser: who may see them, what the forms
store, errors beside their fields, and the API routes the pages share."""

from __future__ import annotations

import html
import re
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from safexam.exams.kinds.registry import KINDS
from safexam.web.educator.questions import kind_template, nested_form
from safexam.web.layout import TEMPLATES_DIR
from tests.factories import make_question, make_user
from tests.helpers import login, rows, signed_in

PAGE = {"Accept": "text/html,application/xhtml+xml"}


async def token_of(client: Any, path: str) -> str:
    page = await client.get(path, headers=PAGE)
    assert page.status_code == 200, page.text
    found = re.search(r'name="_csrf_token" value="([^"]+)"', page.text)
    assert found, page.text
    return found.group(1)


def test_every_kind_has_a_form_template() -> None:
    """A kind added to the registry without its form fields could not be authored here."""
    for kind in KINDS:
        assert (TEMPLATES_DIR / kind_template(kind)).is_file(), kind


def test_form_names_spell_the_body() -> None:
    fields = [
        ("_csrf_token", "x"),
        ("prompt", "P"),
        ("body.choices[0].id", "a"),
        ("body.choices[0].text", "One"),
        ("body.choices[1].id", "b"),
        ("body.choices[1].text", "Two"),
        ("body.answer[]", "b"),
        ("body.limits.cpu_time_s", "2"),
        ("body.starter_code.python", "x = 1\r\n"),
        ("body.parameters[0].values:list", "2, 3.5, red,"),
    ]
    assert nested_form(fields) == {
        "prompt": "P",
        "body": {
            "choices": [{"id": "a", "text": "One"}, {"id": "b", "text": "Two"}],
            "answer": ["b"],
            "limits": {"cpu_time_s": "2"},
            "starter_code": {"python": "x = 1\n"},
            "parameters": [{"values": [2, 3.5, "red"]}],
        },
    }


async def test_students_are_refused_and_others_questions_are_missing(
    make_client: Any, db: AsyncSession
) -> None:
    student, _ = await signed_in(make_client, db, "student")
    for path in ("/educator/questions", "/educator/questions/new"):
        response = await student.get(path, headers=PAGE)
        assert response.status_code == 403, path
        assert "text/html" in response.headers["content-type"]

    owner = await make_user(db, "educator")
    theirs = await make_question(db, owner, "coding", prompt="Their secret question")
    other, _ = await signed_in(make_client, db, "educator")
    for path in (
        f"/educator/questions/{theirs.id}",
        f"/educator/questions/{theirs.id}/preview",
        f"/api/v1/questions/{theirs.id}/student-view",
        f"/api/v1/questions/{theirs.id}/variants",
    ):
        response = await other.get(path, headers=PAGE if "/api/" not in path else {})
        assert response.status_code == 404, path
        assert "Their secret question" not in response.text
    listing = await other.get("/educator/questions", headers=PAGE)
    assert "Their secret question" not in listing.text
    token = await token_of(other, "/educator/questions/new?kind=mcq_single")
    changed = await other.post(
        f"/educator/questions/{theirs.id}",
        data={"_csrf_token": token, "prompt": "Taken over"},
        headers=PAGE,
    )
    assert changed.status_code == 404
    assert await rows(db, "SELECT prompt FROM questions WHERE id = :id", id=theirs.id) == [
        ("Their secret question",)
    ]


async def test_a_form_error_is_told_beside_its_field_and_a_good_form_is_stored(
    client: Any, db: AsyncSession
) -> None:
    educator = await make_user(db, "educator")
    await login(client, educator.email)
    token = await token_of(client, "/educator/questions/new?kind=mcq_single")
    form = {
        "_csrf_token": token,
        "prompt": "What is **2 + 2**?",
        "points": "2",
        "tags": "Arithmetic, week 1",
        "status": "active",
        "body.choices[0].id": "a",
        "body.choices[0].text": "4",
        "body.choices[1].id": "b",
        "body.choices[1].text": "4",
        "body.choices[2].id": "c",
        "body.choices[2].text": "",
        "body.answer[]": "a",
    }
    response = await client.post("/educator/questions/new?kind=mcq_single", data=form, headers=PAGE)
    assert response.status_code == 422
    page = html.unescape(response.text)
    assert 'id="body.choices-error"' in page
    assert re.search(
        r'<p class="field-error" id="body.choices-error">Two choices have the same text.</p>', page
    )
    # What was typed is kept.
    assert 'value="4"' in page and "What is **2 + 2**?" in page
    assert await rows(db, "SELECT 1 FROM questions WHERE owner_id = :o", o=educator.id) == []

    form["body.choices[1].text"] = "5"
    response = await client.post(
        "/educator/questions/new?kind=mcq_single",
        data=form,
        headers=PAGE,
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    stored = await rows(
        db,
        "SELECT kind, body, points, tags, status FROM questions WHERE owner_id = :o",
        o=educator.id,
    )
    assert stored == [
        (
            "mcq_single",
            {
                "choices": [{"id": "a", "text": "4"}, {"id": "b", "text": "5"}],
                "answer": ["a"],
                "parameters": None,
            },
            2.0,
            ["arithmetic", "week 1"],
            "active",
        )
    ]


async def test_markdown_preview_and_student_view(client: Any, db: AsyncSession) -> None:
    educator = await make_user(db, "educator")
    await login(client, educator.email)
    token = await token_of(client, "/educator/questions/new?kind=numeric")
    preview = await client.post(
        "/educator/questions/markdown",
        data={"prompt": "Say **hi** <script>alert(1)</script>"},
        headers={"X-CSRF-Token": token},
    )
    assert preview.status_code == 200
    assert "<strong>hi</strong>" in preview.text
    assert "<script>" not in preview.text

    question = await make_question(
        db,
        educator,
        "numeric",
        prompt="What is {{ a }} times 3?",
        body={
            "tolerance": 0,
            "parameters": [{"name": "a", "min": 2, "max": 9, "step": 1}],
            "answer_expression": "a * 3",
        },
    )
    variants = (await client.get(f"/api/v1/questions/{question.id}/variants?count=4")).json()
    assert len(variants) == 4
    assert len({v["values"]["a"] for v in variants}) == 4
    for variant in variants:
        a = variant["values"]["a"]
        assert variant["prompt"] == f"What is {a} times 3?"
        assert variant["answer"]["value"] == a * 3
    view = (await client.get(f"/api/v1/questions/{question.id}/student-view")).json()
    assert re.fullmatch(r"What is \d times 3\?", view["prompt"])
    assert "answer" not in view and "parameters" not in str(view)

    edit = await client.get(f"/educator/questions/{question.id}", headers=PAGE)
    assert "Sample variants" in edit.text
    assert edit.text.count("Variant ") >= 3


async def test_a_trial_is_the_authors_and_one_at_a_time(client: Any, db: AsyncSession) -> None:
    educator = await make_user(db, "educator")
    await login(client, educator.email)
    coding = await make_question(db, educator, "coding")
    mcq = await make_question(db, educator, "mcq_single")
    solution = {"language": "python", "source": "print(1)"}

    refused = await client.post(f"/api/v1/questions/{mcq.id}/trials", json=solution)
    assert refused.status_code == 422
    wrong_language = {"language": "java", "source": "class Main {}"}
    refused = await client.post(f"/api/v1/questions/{coding.id}/trials", json=wrong_language)
    assert refused.status_code == 422
    assert refused.json()["error"]["details"][0]["field"] == "language"

    started = await client.post(f"/api/v1/questions/{coding.id}/trials", json=solution)
    assert started.status_code == 202, started.text
    trial = started.json()
    assert trial["status"] == "queued" and trial["tests"] == []
    again = await client.post(f"/api/v1/questions/{coding.id}/trials", json=solution)
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "trial_in_progress"
    # The job is on the judge's queue, with the solution for the worker.
    assert await rows(
        db, "SELECT kind, queue, args->>'source' FROM jobs WHERE id = :id", id=trial["id"]
    ) == [("try_coding", "judge", "print(1)")]
    read = await client.get(f"/api/v1/questions/{coding.id}/trials/{trial['id']}")
    assert read.status_code == 200 and read.json()["status"] == "queued"
    # Under another question of the same author, the trial is not found.
    elsewhere = await client.get(f"/api/v1/questions/{mcq.id}/trials/{trial['id']}")
    assert elsewhere.status_code == 404


async def test_the_list_pages_and_filters_as_the_api(client: Any, db: AsyncSession) -> None:
    educator = await make_user(db, "educator")
    await login(client, educator.email)
    for n in range(21):
        await make_question(db, educator, "numeric", prompt=f"Sum number {n:02d}", tags=["sums"])
    await make_question(db, educator, "short_text", prompt="A word", status="draft")

    first = await client.get("/educator/questions?tag=sums", headers=PAGE)
    assert "21 questions match the filters." in first.text
    assert "Page 1 of 2" in first.text and 'rel="next"' in first.text
    second = await client.get("/educator/questions?tag=sums&page=2", headers=PAGE)
    assert second.text.count("Sum number") == 1
    assert 'rel="prev"' in second.text and 'rel="next"' not in second.text
    api = (await client.get("/api/v1/questions?tag=sums&limit=20&offset=20")).json()
    assert [q["prompt"] for q in api["items"]] == [
        p for p in re.findall(r"Sum number \d\d", second.text)
    ]

    drafts = await client.get("/educator/questions?status=draft&kind=short_text", headers=PAGE)
    assert "1 question matches the filters." in drafts.text and "A word" in drafts.text
    # An unknown filter value is no filter, not an error page.
    odd = await client.get("/educator/questions?kind=essay&status=lost", headers=PAGE)
    assert odd.status_code == 200 and "22 questions." in odd.text


async def test_add_a_row_without_scripts_keeps_what_was_typed(
    client: Any, db: AsyncSession
) -> None:
    educator = await make_user(db, "educator")
    await login(client, educator.email)
    token = await token_of(client, "/educator/questions/new?kind=short_text")
    form = {
        "_csrf_token": token,
        "_spare": "1",
        "_action": "add-row",
        "prompt": "Name a colour.",
        "body.answers[0]": "red",
        "body.answers[1]": "",
    }
    response = await client.post("/educator/questions/new?kind=short_text", data=form, headers=PAGE)
    assert response.status_code == 200
    page = html.unescape(response.text)
    assert 'id="body.answers[0]" name="body.answers[0]" value="red"' in page
    # The blank row, and the one asked for.
    assert 'id="body.answers[2]" name="body.answers[2]" value=""' in page
    assert 'name="_spare" value="2"' in page and "Name a colour." in page
    # Asked again, one more again.
    form["_spare"] = "2"
    again = await client.post("/educator/questions/new?kind=short_text", data=form, headers=PAGE)
    assert 'id="body.answers[3]"' in again.text and 'name="_spare" value="3"' in again.text
    assert await rows(db, "SELECT 1 FROM questions WHERE owner_id = :o", o=educator.id) == []


async def test_the_decoders_words_become_plain_sentences(client: Any, db: AsyncSession) -> None:
    educator = await make_user(db, "educator")
    await login(client, educator.email)
    token = await token_of(client, "/educator/questions/new?kind=mcq_single")
    unmarked = {
        "_csrf_token": token,
        "prompt": "Pick one.",
        "body.choices[0].id": "a",
        "body.choices[0].text": "One",
        "body.choices[1].id": "b",
        "body.choices[1].text": "Two",
    }
    response = await client.post(
        "/educator/questions/new?kind=mcq_single", data=unmarked, headers=PAGE
    )
    assert response.status_code == 422
    assert '<p class="field-error" id="body.answer-error">Mark the correct answer.</p>' in (
        response.text
    )
    not_a_number = {
        "_csrf_token": token,
        "prompt": "How much?",
        "body.answer": "12",
        "body.tolerance": "a little",
    }
    response = await client.post(
        "/educator/questions/new?kind=numeric", data=not_a_number, headers=PAGE
    )
    assert response.status_code == 422
    assert '<p class="field-error" id="body.tolerance-error">Enter a number.</p>' in response.text
    assert 'aria-invalid="true"' in response.text
