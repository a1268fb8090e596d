"""The integrity review API: the owner's view and decisions, thresholds, 404 for anyone else."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from safexam.core.audit import record_audit
from safexam.integrity.cohort import run_similarity
from safexam.integrity.models import ActivityLog
from safexam.sessions.models import Announcement
from tests.helpers import login, one
from tests.integrity.world import CohortWorld, cohort_world


async def _evidence(db: AsyncSession, world: CohortWorld) -> None:
    """Ada left the window for 40 s and pasted 500 characters; Cy pasted 5."""
    ada = world.sessions["ada"]
    start = ada.started_at
    db.add_all(
        [
            ActivityLog(
                session_id=ada.id, kind="focus_lost", server_at=start + timedelta(minutes=5)
            ),
            ActivityLog(
                session_id=ada.id,
                kind="focus_gained",
                server_at=start + timedelta(minutes=5, seconds=40),
            ),
            ActivityLog(
                session_id=ada.id,
                kind="paste",
                server_at=start + timedelta(minutes=6),
                details={"length": 500},
            ),
            ActivityLog(
                session_id=world.sessions["cy"].id,
                kind="paste",
                server_at=start + timedelta(minutes=7),
                details={"length": 5},
            ),
            Announcement(
                exam_id=world.exam.id,
                author_id=world.owner.id,
                message="Question 1: ignore trailing spaces",
                created_at=start + timedelta(minutes=8),
            ),
        ]
    )
    record_audit(
        db,
        actor_id=world.owner.id,
        action="session.extend",
        subject_type="session",
        subject_id=ada.id,
        exam_id=world.exam.id,
        reason="Accommodation",
        details={"minutes": 15},
    )
    await db.commit()


async def test_the_owner_reviews_pairs_and_sessions_and_every_decision_is_audited(
    db: AsyncSession, make_client: Any
) -> None:
    world = await cohort_world(db)
    await run_similarity(db, world.exam.id, world.question.id)
    await db.commit()
    await _evidence(db, world)
    client = await make_client()
    await login(client, world.owner.email)
    base = f"/api/v1/exams/{world.exam.id}/integrity"

    overview = (await client.get(base)).json()
    assert [(p["a"]["email"], p["b"]["email"]) for p in overview["pairs"]] in (
        [(world.students["ada"].email, world.students["ben"].email)],
        [(world.students["ben"].email, world.students["ada"].email)],
    )
    flagged = {s["student"]["email"]: s["counts"] for s in overview["sessions"]}
    assert flagged == {
        world.students["ada"].email: {"focus_lost": 1, "paste": 1},
        world.students["cy"].email: {"paste": 1},
    }

    # Thresholds per exam: a 5-character paste and a 40 s absence stop counting.
    put = await client.put(
        f"{base}/thresholds",
        json={"similarity_threshold": 0.5, "focus_lost_min_seconds": 60, "paste_min_chars": 100},
    )
    assert put.status_code == 200, put.text
    flagged = {
        s["student"]["email"]: s["counts"] for s in (await client.get(base)).json()["sessions"]
    }
    assert flagged == {world.students["ada"].email: {"paste": 1}}
    # Editing the exam's own integrity settings keeps the review's thresholds beside them.
    patched = await client.patch(
        f"/api/v1/exams/{world.exam.id}",
        json={"integrity": {"require_fullscreen": True, "flag_kinds": ["paste", "focus_lost"]}},
    )
    assert patched.status_code == 200, patched.text
    again = (await client.get(base)).json()
    assert again["thresholds"]["paste_min_chars"] == 100
    assert again["flag_kinds"] == ["focus_lost", "paste"]

    pair_id = overview["pairs"][0]["id"]
    pair = (await client.get(f"{base}/pairs/{pair_id}")).json()
    assert "def encode" in pair["a_source"] and "def encode" in pair["b_source"]
    assert pair["regions"] and all(r["a_first"] <= r["a_last"] for r in pair["regions"])

    decided = await client.post(
        f"{base}/pairs/{pair_id}/decision",
        json={"decision": "escalated", "note": "Same structure, renamed"},
    )
    assert decided.status_code == 200, decided.text
    assert decided.json()["decision"] == "escalated"
    audit = await one(
        db,
        "SELECT actor_id, reason, details->>'decision' AS d FROM audit_events"
        " WHERE action = 'similarity.decide' AND subject_id = :id",
        id=pair_id,
    )
    assert audit is not None and (audit.actor_id, audit.reason, audit.d) == (
        world.owner.id,
        "Same structure, renamed",
        "escalated",
    )

    ada = world.sessions["ada"].id
    timeline = (await client.get(f"{base}/sessions/{ada}")).json()
    texts = [i["text"] for i in timeline["items"]]
    assert "The exam window lost focus for 40 seconds" in texts
    assert "Pasted 500 characters" in texts
    assert "Time extended by 15 min for this student" in texts
    assert "Announcement: Question 1: ignore trailing spaces" in texts
    assert any(t.startswith("Last saved the answer to") for t in texts)
    assert [i["at"] for i in timeline["items"]] == sorted(i["at"] for i in timeline["items"])

    reviewed = await client.post(
        f"{base}/sessions/{ada}/decision", json={"decision": "dismissed", "note": "Approved"}
    )
    assert reviewed.status_code == 200 and reviewed.json()["decision"] == "dismissed"
    assert await one(
        db,
        "SELECT 1 FROM audit_events WHERE action = 'session.integrity_review' AND subject_id = :id",
        id=ada,
    )
    # Nothing here scores anything.
    scores = await one(
        db,
        "SELECT count(*) AS n FROM responses WHERE score IS NOT NULL OR override_score IS NOT NULL",
    )
    assert scores.n == 0

    bad = await client.post(f"{base}/pairs/{pair_id}/decision", json={"decision": "guilty"})
    assert bad.status_code in (400, 422) and "decision" in bad.text


async def test_students_and_other_educators_are_told_none_of_it_exists(
    db: AsyncSession, make_client: Any
) -> None:
    world = await cohort_world(db)
    await run_similarity(db, world.exam.id, world.question.id)
    await db.commit()
    pair = await one(db, "SELECT id FROM similarity_pairs WHERE exam_id = :e", e=world.exam.id)
    base = f"/api/v1/exams/{world.exam.id}/integrity"
    ada = world.sessions["ada"].id
    calls = [
        ("GET", base, None),
        ("GET", f"{base}/pairs/{pair.id}", None),
        ("POST", f"{base}/pairs/{pair.id}/decision", {"decision": "dismissed"}),
        ("GET", f"{base}/sessions/{ada}", None),
        ("POST", f"{base}/sessions/{ada}/decision", {"decision": "dismissed"}),
        ("POST", f"{base}/similarity", None),
        ("PUT", f"{base}/thresholds", {"paste_min_chars": 1}),
        ("GET", f"/educator/exams/{world.exam.id}/integrity", None),
        ("GET", f"/educator/exams/{world.exam.id}/integrity/pairs/{pair.id}", None),
        ("GET", f"/educator/exams/{world.exam.id}/integrity/sessions/{ada}", None),
    ]
    for who in (world.students["ada"], world.students["ben"], world.other_educator):
        client = await make_client()
        await login(client, who.email)
        for method, url, body in calls:
            response = await client.request(method, url, json=body)
            assert response.status_code == 404, (who.role, method, url, response.status_code)
    untouched = await one(db, "SELECT decision FROM similarity_pairs WHERE id = :id", id=pair.id)
    assert untouched.decision == "open"


async def test_the_owners_pages_render_the_pair_with_its_regions_marked(
    db: AsyncSession, make_client: Any
) -> None:
    world = await cohort_world(db)
    await run_similarity(db, world.exam.id, world.question.id)
    await db.commit()
    await _evidence(db, world)
    pair = await one(db, "SELECT id FROM similarity_pairs WHERE exam_id = :e", e=world.exam.id)
    client = await make_client()
    await login(client, world.owner.email)
    base = f"/educator/exams/{world.exam.id}/integrity"
    overview = await client.get(base)
    assert overview.status_code == 200, overview.text
    assert f"{base}/pairs/{pair.id}" in overview.text
    shown = await client.get(f"{base}/pairs/{pair.id}")
    assert shown.status_code == 200, shown.text
    assert shown.text.count("<mark>") >= 10 and "Region 1: lines" in shown.text
    timeline = await client.get(f"{base}/sessions/{world.sessions['ada'].id}")
    assert timeline.status_code == 200, timeline.text
    assert "Pasted 500 characters" in timeline.text
    # An event with no save near it says so, in words.
    assert "No answer was saved within 2 min of it." in timeline.text
    # A form without a decision comes back in words, not as a 500.
    refused = await client.post(f"{base}/pairs/{pair.id}", data={"note": "hm"})
    assert refused.status_code == 422 and "Choose a decision" in refused.text
    compared = await client.post(f"{base}/compare", data={}, follow_redirects=False)
    assert compared.status_code == 303
    assert compared.headers["location"].endswith("saved=compare")
    queued = await one(
        db,
        "SELECT count(*) AS n FROM jobs WHERE kind = 'similarity' AND exam_id = :e",
        e=world.exam.id,
    )
    assert queued.n == 1
    bad = await client.post(f"{base}/thresholds", data={"paste_min_chars": "lots"})
    assert bad.status_code == 422 and "paste_min_chars" in bad.text
