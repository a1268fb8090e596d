"""Autosave: upsert by client_seq, answer validation, refusals after the deadline and submit."""

from __future__ import annotations

import asyncio
import random
import uuid
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from tests.factories import enroll, make_exam, make_question, move_deadline
from tests.helpers import one, rows, signed_in


async def _started(
    make_client: Any, db: AsyncSession, **exam_kwargs: Any
) -> tuple[Any, Any, dict[str, Any]]:
    client, student = await signed_in(make_client, db, "student")
    _, educator = await signed_in(make_client, db, "educator")
    mcq = await make_question(db, educator, "mcq_single")
    multi = await make_question(db, educator, "mcq_multi")
    num = await make_question(db, educator, "numeric")
    text_q = await make_question(db, educator, "short_text")
    code = await make_question(db, educator, "coding")
    exam = await make_exam(db, educator, [mcq, multi, num, text_q, code], **exam_kwargs)
    await enroll(db, exam, student)
    response = await client.post(f"/api/v1/exams/{exam.id}/sessions")
    assert response.status_code == 201, response.text
    return client, student, response.json()


def qid(session: dict[str, Any], kind: str) -> str:
    return next(q["id"] for q in session["questions"] if q["kind"] == kind)


async def test_save_and_restore_every_kind(make_client: Any, db: AsyncSession) -> None:
    client, _, session = await _started(make_client, db)
    answers = {
        "mcq_single": {"choice": "c"},
        "mcq_multi": {"choices": ["a", "b"]},
        "numeric": {"value": 3.5},
        "short_text": {"text": "photosynthesis"},
        "coding": {"language": "python", "source": "def add(a, b):\n    return a + b\n"},
    }
    for kind, answer in answers.items():
        response = await client.put(
            f"/api/v1/sessions/{session['id']}/responses/{qid(session, kind)}",
            json={"answer": answer, "client_seq": 1},
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert body == {
            "question_id": qid(session, kind),
            "client_seq": 1,
            "applied": True,
            "saved_at": body["saved_at"],
        }
    # A reloaded page gets every answer back.
    restored = (await client.get(f"/api/v1/sessions/{session['id']}")).json()
    assert restored["status"] == "active" and restored["remaining_seconds"] > 0
    assert {k: v["answer"] for k, v in restored["responses"].items()} == {
        qid(session, kind): answer for kind, answer in answers.items()
    }
    resumed = (await client.post(f"/api/v1/exams/{session['exam_id']}/sessions")).json()
    assert resumed["responses"] == restored["responses"]


async def test_older_client_seq_never_overwrites_newer(make_client: Any, db: AsyncSession) -> None:
    client, _, session = await _started(make_client, db)
    url = f"/api/v1/sessions/{session['id']}/responses/{qid(session, 'short_text')}"
    newer = await client.put(url, json={"answer": {"text": "seven"}, "client_seq": 7})
    assert newer.json()["applied"] is True
    older = await client.put(url, json={"answer": {"text": "three"}, "client_seq": 3})
    assert older.status_code == 200
    assert older.json()["applied"] is False and older.json()["client_seq"] == 7
    # The same save retried is acknowledged, not reported as lost.
    retry = await client.put(url, json={"answer": {"text": "seven"}, "client_seq": 7})
    assert retry.json()["applied"] is True and retry.json()["client_seq"] == 7
    stored = await one(db, "SELECT answer, client_seq FROM responses")
    assert stored.answer == {"text": "seven"} and stored.client_seq == 7


async def test_every_applied_save_is_kept_in_the_history_and_only_those(
    make_client: Any, db: AsyncSession
) -> None:
    client, _, session = await _started(make_client, db)
    url = f"/api/v1/sessions/{session['id']}/responses/{qid(session, 'mcq_single')}"

    async def save(choice: str, seq: int) -> bool:
        response = await client.put(url, json={"answer": {"choice": choice}, "client_seq": seq})
        assert response.status_code == 200, response.text
        return bool(response.json()["applied"])

    assert await save("a", 1) and await save("b", 2)
    assert not await save("c", 1)  # stale: an older client_seq
    assert await save("b", 2)  # the same save retried: acknowledged, not saved again
    assert await save("d", 3)
    history = await rows(
        db,
        "SELECT h.client_seq, h.answer, h.saved_at, h.question_id = CAST(:q AS uuid) AS same_q"
        " FROM response_history h WHERE h.session_id = CAST(:s AS uuid) ORDER BY h.id",
        q=qid(session, "mcq_single"),
        s=session["id"],
    )
    # The upsert kept only the last answer; the history kept every applied one, in order.
    assert [(h.client_seq, h.answer["choice"]) for h in history] == [(1, "a"), (2, "b"), (3, "d")]
    assert all(h.same_q for h in history)
    assert [h.saved_at for h in history] == sorted(h.saved_at for h in history)
    last = await one(db, "SELECT answer, client_seq, saved_at FROM responses")
    assert (last.answer, last.client_seq, last.saved_at) == (
        {"choice": "d"},
        3,
        history[-1].saved_at,
    )

    # A refused save (the session submitted) writes nothing either.
    assert (await client.post(f"/api/v1/sessions/{session['id']}/submit")).status_code == 202
    refused = await client.put(url, json={"answer": {"choice": "a"}, "client_seq": 9})
    assert refused.status_code == 409
    assert (await one(db, "SELECT count(*) FROM response_history"))[0] == 3

    # Deleting the session (or its exam) takes its history with it.
    await db.execute(
        text("DELETE FROM exams WHERE id = CAST(:e AS uuid)"), {"e": session["exam_id"]}
    )
    await db.commit()
    assert (await one(db, "SELECT count(*) FROM response_history"))[0] == 0


async def test_out_of_order_concurrent_saves_keep_the_highest(
    make_client: Any, db: AsyncSession
) -> None:
    client, _, session = await _started(make_client, db)
    url = f"/api/v1/sessions/{session['id']}/responses/{qid(session, 'numeric')}"
    seqs = list(range(1, 31))
    random.Random(7).shuffle(seqs)
    results = await asyncio.gather(
        *(client.put(url, json={"answer": {"value": float(s)}, "client_seq": s}) for s in seqs)
    )
    assert all(r.status_code == 200 for r in results), [r.text for r in results]
    assert any(r.json()["applied"] for r in results)
    stored = await one(db, "SELECT answer, client_seq FROM responses")
    assert stored.client_seq == 30 and stored.answer == {"value": 30.0}


async def test_answer_shape_is_validated_against_the_kind(
    make_client: Any, db: AsyncSession
) -> None:
    client, _, session = await _started(make_client, db)
    base = f"/api/v1/sessions/{session['id']}/responses/"
    cases = [
        ("mcq_single", {"choice": "z"}, "answer.choice"),
        ("mcq_single", {"value": 3}, "answer"),
        ("mcq_multi", {"choices": ["a", "a"]}, "answer.choices"),
        ("numeric", {"value": "many"}, "answer.value"),
        ("coding", {"language": "java", "source": "x"}, "answer.language"),
        ("short_text", {"text": "x", "extra": 1}, "answer"),
    ]
    for kind, answer, field in cases:
        response = await client.put(
            base + qid(session, kind), json={"answer": answer, "client_seq": 1}
        )
        assert response.status_code == 422, (kind, response.text)
        fields = [d.get("field") for d in response.json()["error"]["details"]]
        assert any(f and f.startswith(field) for f in fields), (kind, fields)
    bad_seq = await client.put(
        base + qid(session, "numeric"), json={"answer": {"value": 1}, "client_seq": -1}
    )
    assert bad_seq.status_code == 422
    assert (await one(db, "SELECT count(*) FROM responses"))[0] == 0


async def test_question_not_on_paper_and_foreign_session_are_404(
    make_client: Any, db: AsyncSession
) -> None:
    client, _, session = await _started(make_client, db)
    _, _, other_session = await _started(make_client, db)
    elsewhere = qid(other_session, "numeric")
    response = await client.put(
        f"/api/v1/sessions/{session['id']}/responses/{elsewhere}",
        json={"answer": {"value": 1}, "client_seq": 1},
    )
    assert response.status_code == 404
    foreign = await client.put(
        f"/api/v1/sessions/{other_session['id']}/responses/{elsewhere}",
        json={"answer": {"value": 1}, "client_seq": 1},
    )
    assert foreign.status_code == 404
    assert (await client.get(f"/api/v1/sessions/{other_session['id']}")).status_code == 404
    assert (await client.post(f"/api/v1/sessions/{other_session['id']}/submit")).status_code == 404
    assert (await client.get(f"/api/v1/sessions/{uuid.uuid4()}")).status_code == 404
    assert (await one(db, "SELECT count(*) FROM responses"))[0] == 0
    still = await one(
        db, "SELECT status FROM exam_sessions WHERE id = :i", i=uuid.UUID(other_session["id"])
    )
    assert still.status == "active"


async def test_save_after_deadline_is_refused_and_changes_nothing(
    make_client: Any, db: AsyncSession
) -> None:
    client, _, session = await _started(make_client, db)
    url = f"/api/v1/sessions/{session['id']}/responses/{qid(session, 'numeric')}"
    assert (await client.put(url, json={"answer": {"value": 1.0}, "client_seq": 1})).json()[
        "applied"
    ]
    before = await one(db, "SELECT answer, client_seq, saved_at FROM responses")
    await move_deadline(db, session["id"], -1)
    late = await client.put(url, json={"answer": {"value": 2.0}, "client_seq": 2})
    assert late.status_code == 409 and late.json()["error"]["code"] == "session_closed"
    other = f"/api/v1/sessions/{session['id']}/responses/{qid(session, 'mcq_single')}"
    late_new = await client.put(other, json={"answer": {"choice": "a"}, "client_seq": 1})
    assert late_new.status_code == 409
    assert await rows(db, "SELECT answer, client_seq, saved_at FROM responses") == [tuple(before)]
    view = (await client.get(f"/api/v1/sessions/{session['id']}")).json()
    assert view["remaining_seconds"] == 0


async def test_save_after_submit_is_refused_and_changes_nothing(
    make_client: Any, db: AsyncSession
) -> None:
    client, _, session = await _started(make_client, db)
    url = f"/api/v1/sessions/{session['id']}/responses/{qid(session, 'short_text')}"
    await client.put(url, json={"answer": {"text": "final"}, "client_seq": 4})
    assert (await client.post(f"/api/v1/sessions/{session['id']}/submit")).status_code == 202
    late = await client.put(url, json={"answer": {"text": "changed"}, "client_seq": 5})
    assert late.status_code == 409 and late.json()["error"]["code"] == "session_closed"
    stored = await one(db, "SELECT answer, client_seq FROM responses")
    assert stored.answer == {"text": "final"} and stored.client_seq == 4


async def test_save_from_another_browser_is_logged_and_saved(
    make_client: Any, db: AsyncSession
) -> None:
    """The autosave path itself records ``ip_changed`` (once) and still saves."""
    client, _, session = await _started(make_client, db)
    url = f"/api/v1/sessions/{session['id']}/responses/{qid(session, 'mcq_single')}"
    moved = {"User-Agent": "Other Browser/2.0"}
    for seq in (1, 2):
        response = await client.put(
            url, json={"answer": {"choice": "b"}, "client_seq": seq}, headers=moved
        )
        assert response.status_code == 200, response.text
        assert response.json()["applied"] is True
    changes = await rows(db, "SELECT details FROM activity_logs WHERE kind = 'ip_changed'")
    assert [c.details["user_agent"] for c in changes] == ["Other Browser/2.0"]
    saved = await one(db, "SELECT answer, client_seq FROM responses")
    assert (saved.answer, saved.client_seq) == ({"choice": "b"}, 2)
