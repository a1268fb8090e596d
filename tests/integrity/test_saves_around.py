"""The session timeline shows the answers saved around each integrity event, from the history."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from safexam.integrity.models import ActivityLog
from safexam.integrity.saves import event_times
from safexam.integrity.schemas import TimelineQuestion
from safexam.web.educator.integrity import answer_words
from tests.factories import enroll, make_exam, make_question
from tests.helpers import signed_in

STARTER = "def add(a, b):\n    pass\n"
SOLVED = "def add(a, b):\n    total = a + b\n    return total\n"


async def test_an_answer_changed_after_a_paste_shows_both_values_in_order(
    db: AsyncSession, make_client: Any
) -> None:
    student_client, student = await signed_in(make_client, db, "student")
    owner_client, owner = await signed_in(make_client, db, "educator")
    mcq = await make_question(db, owner, "mcq_single", prompt="Which is largest?")
    code = await make_question(db, owner, "coding")
    exam = await make_exam(db, owner, [mcq, code])
    await enroll(db, exam, student)
    started = await student_client.post(f"/api/v1/exams/{exam.id}/sessions")
    assert started.status_code == 201, started.text
    sid = started.json()["id"]

    async def save(question_id: Any, answer: dict[str, Any], seq: int) -> None:
        response = await student_client.put(
            f"/api/v1/sessions/{sid}/responses/{question_id}",
            json={"answer": answer, "client_seq": seq},
        )
        assert response.status_code == 200 and response.json()["applied"], response.text

    await save(mcq.id, {"choice": "a"}, 1)
    await save(code.id, {"language": "python", "source": STARTER}, 1)
    # The student's clock is two hours slow; the paste is still placed between the saves.
    slow = datetime.now(UTC) - timedelta(hours=2)
    sent = await student_client.post(
        f"/api/v1/sessions/{sid}/events",
        json={"events": [{"kind": "paste", "at": slow.isoformat(), "details": {"length": 60}}]},
    )
    assert sent.status_code == 202, sent.text
    await save(mcq.id, {"choice": "c"}, 2)
    await save(code.id, {"language": "python", "source": SOLVED}, 2)
    # A stale save and a retry add nothing to the history, so nothing to the timeline.
    stale = await student_client.put(
        f"/api/v1/sessions/{sid}/responses/{mcq.id}",
        json={"answer": {"choice": "d"}, "client_seq": 1},
    )
    assert stale.json()["applied"] is False
    await save(mcq.id, {"choice": "c"}, 2)

    url = f"/api/v1/exams/{exam.id}/integrity/sessions/{sid}"
    timeline = await owner_client.get(url)
    assert timeline.status_code == 200, timeline.text
    body = timeline.json()
    assert body["save_window_seconds"] == 120
    assert [(q["label"], q["kind"]) for q in body["questions"]] == [
        ("Q1", "mcq_single"),
        ("Q2", "coding"),
    ]
    paste = next(i for i in body["items"] if i["kind"] == "paste")
    assert paste["happened_at"] is not None and paste["saves_listed"] is True

    def seen(saves: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
        return [
            (s["label"], s["client_seq"], s["answer"].get("choice") or s["answer"].get("source"))
            for s in saves
        ]

    assert seen(paste["saves_before"]) == [("Q1", 1, "a"), ("Q2", 1, STARTER)]
    assert seen(paste["saves_after"]) == [("Q1", 2, "c"), ("Q2", 2, SOLVED)]
    # Each save says what it replaced: the change reads as a change.
    assert [s["replaced"] for s in paste["saves_before"]] == [None, None]
    assert paste["saves_after"][0]["replaced"] == {"choice": "a"}
    assert paste["saves_after"][1]["replaced"]["source"] == STARTER
    assert all(s["seconds"] < 0 for s in paste["saves_before"])
    assert all(s["seconds"] >= 0 for s in paste["saves_after"])
    assert (paste["more_before"], paste["more_after"]) == (0, 0)

    # The page reads it in words: choice letters and texts, the code's size and change.
    page = await owner_client.get(f"/educator/exams/{exam.id}/integrity/sessions/{sid}")
    assert page.status_code == 200, page.text
    text = page.text
    before, after = text.index("Before it"), text.index("After it")
    assert before < text.index("A. choice a") < after < text.index("C. choice c")
    assert "was: A. choice a" in text
    assert "2 lines of code" in text[before:after]
    assert "3 lines of code (2 added, 1 removed since the save before)" in text[after:]
    assert "total = a + b" in text[after:]

    # Anyone but the owner is told the session's timeline does not exist.
    other_client, _ = await signed_in(make_client, db, "educator")
    for client in (student_client, other_client):
        for path in (url, f"/educator/exams/{exam.id}/integrity/sessions/{sid}"):
            assert (await client.get(path)).status_code == 404, path


def test_events_are_placed_on_the_servers_clock_despite_batches_and_a_wrong_clock() -> None:
    at = datetime(2026, 12, 4, 10, 0, tzinfo=UTC)
    slow = timedelta(hours=-2)
    events = [
        # Sent at once: arrived 0.2 s after it happened.
        ActivityLog(
            id=1, kind="focus_lost", client_at=at + slow, server_at=at + timedelta(seconds=0.2)
        ),
        # Held 4 s in the browser's queue before its batch left.
        ActivityLog(
            id=2,
            kind="paste",
            client_at=at + slow + timedelta(seconds=30),
            server_at=at + timedelta(seconds=34),
        ),
        # Noted by the server itself.
        ActivityLog(id=3, kind="ip_changed", client_at=None, server_at=at + timedelta(seconds=50)),
    ]
    assert event_times(events) == {
        1: at + timedelta(seconds=0.2),
        2: at + timedelta(seconds=30.2),
        3: at + timedelta(seconds=50),
    }
    # Without the student's clock, arrival is all there is.
    alone = [ActivityLog(id=4, kind="ip_changed", client_at=None, server_at=at)]
    assert event_times(alone) == {4: at}


def test_saved_answers_read_in_words() -> None:
    def question(kind: str, choices: list[dict[str, str]] | None = None) -> TimelineQuestion:
        return TimelineQuestion(
            question_id=uuid.uuid4(), label="Q1", kind=kind, prompt="?", choices=choices
        )

    # The choices in the order this student saw them: letters follow that order.
    seen = [{"id": "c", "text": "7"}, {"id": "a", "text": "5"}]
    assert answer_words(question("mcq_single", seen), {"choice": "a"}) == "B. 5"
    assert answer_words(question("mcq_multi", seen), {"choices": ["a", "c"]}) == "A. 7; B. 5"
    assert answer_words(question("mcq_multi", seen), {"choices": []}) == "No choice"
    assert answer_words(question("mcq_single", seen), {"choice": "z"}) == "z (no longer a choice)"
    assert answer_words(question("numeric"), {"value": 2.50}) == "2.5"
    assert answer_words(question("short_text"), {"text": "mitosis"}) == "mitosis"
    assert answer_words(question("short_text"), {"text": "  "}) == "No answer"
    code = {"language": "python", "source": "a = 1\nprint(a)\n"}
    assert answer_words(question("coding"), code) == "2 lines of code"
