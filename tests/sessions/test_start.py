"""Starting and resuming a session: enrollment, window, attempts, paper, deadline, races."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from safexam.auth.guards import Principal
from safexam.sessions.paper import ItemSpec, QuestionSpec, build_paper
from safexam.sessions.service import start_session
from tests.factories import enroll, make_exam, make_question, move_deadline
from tests.helpers import one, rows, signed_in


def parse(ts: str) -> datetime:
    return datetime.fromisoformat(ts.replace("Z", "+00:00"))


async def test_start_then_resume_returns_the_same_session(
    make_client: Any, db: AsyncSession
) -> None:
    client, student = await signed_in(make_client, db, "student")
    _, educator = await signed_in(make_client, db, "educator")
    q1 = await make_question(db, educator, "mcq_single")
    q2 = await make_question(db, educator, "numeric")
    exam = await make_exam(db, educator, [(q1, 2.0), q2])
    await enroll(db, exam, student)

    first = await client.post(f"/api/v1/exams/{exam.id}/sessions")
    assert first.status_code == 201, first.text
    body = first.json()
    for field in (
        "id",
        "exam_id",
        "status",
        "started_at",
        "deadline_at",
        "server_time",
        "remaining_seconds",
        "questions",
        "responses",
    ):
        assert field in body, field
    assert body["status"] == "active" and body["exam_id"] == str(exam.id)
    assert [q["id"] for q in body["questions"]] == [str(q1.id), str(q2.id)]
    assert body["questions"][0]["points"] == 2.0
    assert [c["id"] for c in body["questions"][0]["choices"]] == ["a", "b", "c", "d"]
    assert 3590 <= body["remaining_seconds"] <= 3600
    assert body["responses"] == {} and body["result"] is None

    again = await client.post(f"/api/v1/exams/{exam.id}/sessions")
    assert again.status_code == 200, again.text
    assert again.json()["id"] == body["id"]
    assert again.json()["deadline_at"] == body["deadline_at"]
    count = await one(db, "SELECT count(*) FROM exam_sessions WHERE exam_id = :e", e=exam.id)
    assert count[0] == 1

    row = await one(db, "SELECT ip_address, user_agent, seed, paper FROM exam_sessions")
    assert row.ip_address and row.user_agent  # recorded at start
    assert row.seed > 0 and len(row.paper) == 2
    # Auto-submit is scheduled at start, on the maintenance queue, after the deadline.
    job = await one(db, "SELECT kind, queue, actor, args, session_id, run_at FROM jobs")
    assert (job.kind, job.queue, job.actor) == ("autosubmit", "maintenance", "autosubmit_session")
    assert job.args["session_id"] == body["id"] and str(job.session_id) == body["id"]
    # Not before the deadline plus the grace (30 s by default).
    due = (job.run_at - parse(body["deadline_at"])).total_seconds()
    assert 25 <= due <= 35, due


async def test_not_enrolled_or_unpublished_is_404(make_client: Any, db: AsyncSession) -> None:
    client, student = await signed_in(make_client, db, "student")
    _, educator = await signed_in(make_client, db, "educator")
    q = await make_question(db, educator)
    other = await make_exam(db, educator, [q])
    draft = await make_exam(db, educator, [q], status="draft")
    await enroll(db, draft, student)
    for exam in (other, draft):
        response = await client.post(f"/api/v1/exams/{exam.id}/sessions")
        assert response.status_code == 404, response.text
        assert response.json()["error"]["code"] == "not_found"
    missing = await client.post(f"/api/v1/exams/{uuid.uuid4()}/sessions")
    assert missing.status_code == 404
    # Educators do not take exams.
    edu_client, _ = await signed_in(make_client, db, "educator")
    assert (await edu_client.post(f"/api/v1/exams/{other.id}/sessions")).status_code == 403


async def test_pre_enrolled_email_can_start(make_client: Any, db: AsyncSession) -> None:
    _, educator = await signed_in(make_client, db, "educator")
    q = await make_question(db, educator)
    exam = await make_exam(db, educator, [q])
    await enroll(db, exam, "Late.Comer@college.edu")
    client, _ = await signed_in(make_client, db, "student", email="late.comer@college.edu")
    response = await client.post(f"/api/v1/exams/{exam.id}/sessions")
    assert response.status_code == 201, response.text


async def test_concurrent_double_start_creates_one_session(
    make_client: Any, db: AsyncSession, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    """Two starts at once on separate connections (as two API replicas would run them)."""
    _, educator = await signed_in(make_client, db, "educator")
    q = await make_question(db, educator)
    exam = await make_exam(db, educator, [q], attempts_allowed=3)
    for _ in range(5):
        client, student = await signed_in(make_client, db, "student")
        await enroll(db, exam, student)
        principal = Principal(
            id=student.id,
            email=student.email,
            name=student.name,
            role="student",
            organization_id=student.organization_id,
        )

        async def start(who: Principal = principal) -> tuple[Any, bool]:
            async with sessionmaker() as own_db:
                return await start_session(
                    own_db, exam.id, who, ip="10.0.0.1", user_agent="ua", grace_seconds=30
                )

        (first, created1), (second, created2) = await asyncio.gather(start(), start())
        assert sorted([created1, created2]) == [False, True]
        assert first.id == second.id
        count = await one(
            db,
            "SELECT count(*) FROM exam_sessions WHERE exam_id = :e AND user_id = :u",
            e=exam.id,
            u=student.id,
        )
        assert count[0] == 1
        autosubmits = await one(
            db,
            "SELECT count(*) FROM jobs WHERE kind = 'autosubmit' AND session_id = :s",
            s=first.id,
        )
        assert autosubmits[0] == 1
        # Over HTTP, a repeated start resumes that same session.
        again = await client.post(f"/api/v1/exams/{exam.id}/sessions")
        assert again.status_code == 200 and again.json()["id"] == str(first.id)


async def test_losing_the_insert_race_resumes_the_winner(
    make_client: Any, db: AsyncSession, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    """Deterministic: the winner's insert is uncommitted while the loser inserts."""
    _, educator = await signed_in(make_client, db, "educator")
    _, student = await signed_in(make_client, db, "student")
    q = await make_question(db, educator)
    exam = await make_exam(db, educator, [q])
    await enroll(db, exam, student)
    principal = Principal(
        id=student.id,
        email=student.email,
        name=student.name,
        role="student",
        organization_id=student.organization_id,
    )
    winner_id = uuid.uuid4()
    async with sessionmaker() as winner:
        await winner.execute(
            text(
                "INSERT INTO exam_sessions (id, exam_id, user_id, attempt, status, started_at,"
                " deadline_at, seed, paper) VALUES (:id, :e, :u, 1, 'active', now(),"
                " now() + interval '1 hour', 1, '[]')"
            ),
            {"id": winner_id, "e": exam.id, "u": student.id},
        )
        async with sessionmaker() as loser_db:
            loser = asyncio.create_task(
                start_session(
                    loser_db, exam.id, principal, ip="1.2.3.4", user_agent="x", grace_seconds=30
                )
            )
            await asyncio.sleep(0.3)
            assert not loser.done()  # blocked on the unique index
            await winner.commit()
            view, created = await asyncio.wait_for(loser, 10)
    assert created is False and view.id == winner_id


async def test_attempt_limit(make_client: Any, db: AsyncSession) -> None:
    client, student = await signed_in(make_client, db, "student")
    _, educator = await signed_in(make_client, db, "educator")
    q = await make_question(db, educator)
    single = await make_exam(db, educator, [q])
    double = await make_exam(db, educator, [q], attempts_allowed=2)
    for exam in (single, double):
        await enroll(db, exam, student)

    s1 = (await client.post(f"/api/v1/exams/{single.id}/sessions")).json()
    assert (await client.post(f"/api/v1/sessions/{s1['id']}/submit")).status_code == 202
    refused = await client.post(f"/api/v1/exams/{single.id}/sessions")
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "no_attempts_left"

    a1 = (await client.post(f"/api/v1/exams/{double.id}/sessions")).json()
    assert a1["attempt"] == 1
    await client.post(f"/api/v1/sessions/{a1['id']}/submit")
    a2 = await client.post(f"/api/v1/exams/{double.id}/sessions")
    assert a2.status_code == 201 and a2.json()["attempt"] == 2 and a2.json()["id"] != a1["id"]
    await client.post(f"/api/v1/sessions/{a2.json()['id']}/submit")
    third = await client.post(f"/api/v1/exams/{double.id}/sessions")
    assert third.status_code == 409 and third.json()["error"]["code"] == "no_attempts_left"
    # The database itself refuses a second row for the same attempt number.
    count = await one(db, "SELECT count(*) FROM exam_sessions WHERE exam_id = :e", e=double.id)
    assert count[0] == 2


async def test_window_is_enforced(make_client: Any, db: AsyncSession) -> None:
    client, student = await signed_in(make_client, db, "student")
    _, educator = await signed_in(make_client, db, "educator")
    q = await make_question(db, educator)
    now = datetime.now(UTC)
    early = await make_exam(
        db, educator, [q], opens_at=now + timedelta(hours=1), closes_at=now + timedelta(hours=2)
    )
    late = await make_exam(
        db, educator, [q], opens_at=now - timedelta(hours=2), closes_at=now - timedelta(minutes=1)
    )
    for exam, code in ((early, "exam_not_open"), (late, "exam_closed")):
        await enroll(db, exam, student)
        response = await client.post(f"/api/v1/exams/{exam.id}/sessions")
        assert response.status_code == 409, response.text
        assert response.json()["error"]["code"] == code
    assert (await one(db, "SELECT count(*) FROM exam_sessions"))[0] == 0


async def test_accommodations_and_close_cap_the_deadline(
    make_client: Any, db: AsyncSession
) -> None:
    _, educator = await signed_in(make_client, db, "educator")
    q = await make_question(db, educator)
    now = datetime.now(UTC)
    exam = await make_exam(
        db, educator, [q], duration_minutes=60, closes_at=now + timedelta(hours=5)
    )
    short = await make_exam(
        db, educator, [q], duration_minutes=60, closes_at=now + timedelta(minutes=20)
    )
    plain, s_plain = await signed_in(make_client, db, "student")
    extra, s_extra = await signed_in(make_client, db, "student")
    await enroll(db, exam, s_plain)
    await enroll(db, exam, s_extra, extra_minutes=15, time_multiplier=1.5)
    await enroll(db, short, s_extra, extra_minutes=15, time_multiplier=1.5)

    def minutes(body: dict[str, Any]) -> float:
        return (parse(body["deadline_at"]) - parse(body["started_at"])).total_seconds() / 60

    assert minutes((await plain.post(f"/api/v1/exams/{exam.id}/sessions")).json()) == 60
    assert minutes((await extra.post(f"/api/v1/exams/{exam.id}/sessions")).json()) == 105
    capped = (await extra.post(f"/api/v1/exams/{short.id}/sessions")).json()
    assert parse(capped["deadline_at"]) == short.closes_at


async def test_paper_is_seeded_reproducible_and_shuffled(
    make_client: Any, db: AsyncSession
) -> None:
    _, educator = await signed_in(make_client, db, "educator")
    _, rival = await signed_in(make_client, db, "educator")
    fixed = [
        await make_question(
            db,
            educator,
            "mcq_single",
            body={"choices": [{"id": c, "text": f"t{c}"} for c in "abcdef"], "answer": ["a"]},
        )
        for _ in range(6)
    ]
    pool = [await make_question(db, educator, "numeric", tags=["alg"]) for _ in range(8)]
    # Never drawn: a draft, another educator's question, a question with another tag.
    draft = await make_question(db, educator, "numeric", tags=["alg"], status="draft")
    foreign = await make_question(db, rival, "numeric", tags=["alg"])
    exam = await make_exam(
        db,
        educator,
        [*fixed, {"tag": "alg", "count": 3, "points": 2.0}],
        shuffle_questions=True,
        shuffle_choices=True,
    )
    papers = []
    for _ in range(4):
        client, student = await signed_in(make_client, db, "student")
        await enroll(db, exam, student)
        body = (await client.post(f"/api/v1/exams/{exam.id}/sessions")).json()
        papers.append(body)
        ids = [q["id"] for q in body["questions"]]
        assert len(ids) == 9 and len(set(ids)) == 9
        drawn = set(ids) - {str(q.id) for q in fixed}
        assert len(drawn) == 3 and drawn <= {str(q.id) for q in pool}
        assert str(draft.id) not in ids and str(foreign.id) not in ids
        assert all(q["points"] == 2.0 for q in body["questions"] if q["id"] in drawn)
    orders = {tuple(q["id"] for q in p["questions"]) for p in papers}
    assert len(orders) > 1, "four students got the same question order"
    choice_orders = {
        tuple(c["id"] for c in q["choices"])
        for p in papers
        for q in p["questions"]
        if "choices" in q
    }
    assert len(choice_orders) > 1, "choices were never shuffled"

    # Same seed, same inputs, same paper: the stored paper can be rebuilt.
    stored = await rows(db, "SELECT seed, paper FROM exam_sessions")
    items = [ItemSpec(position=i, points=1.0, question_id=q.id) for i, q in enumerate(fixed, 1)]
    items.append(ItemSpec(position=7, points=2.0, draw_tag="alg", draw_count=3))
    specs = {
        q.id: QuestionSpec(id=q.id, kind="mcq_single", choice_ids=tuple("abcdef")) for q in fixed
    }
    specs.update({q.id: QuestionSpec(id=q.id, kind="numeric") for q in pool})
    for seed, paper in stored:
        rebuilt = build_paper(
            seed,
            items,
            specs,
            {"alg": [q.id for q in pool]},
            shuffle_questions=True,
            shuffle_choices=True,
        )
        assert rebuilt == paper


async def test_expired_running_session_is_finalized_before_the_next_attempt(
    make_client: Any, db: AsyncSession
) -> None:
    client, student = await signed_in(make_client, db, "student")
    _, educator = await signed_in(make_client, db, "educator")
    q = await make_question(db, educator)
    exam = await make_exam(db, educator, [q], attempts_allowed=2)
    await enroll(db, exam, student)
    first = (await client.post(f"/api/v1/exams/{exam.id}/sessions")).json()
    await move_deadline(db, first["id"], -120)  # the auto-submit message was lost
    second = await client.post(f"/api/v1/exams/{exam.id}/sessions")
    assert second.status_code == 201 and second.json()["attempt"] == 2
    old = await one(db, "SELECT status FROM exam_sessions WHERE id = :i", i=uuid.UUID(first["id"]))
    assert old.status == "expired"
    graded = await one(
        db,
        "SELECT count(*) FROM jobs WHERE kind = 'grade_session' AND session_id = :i",
        i=uuid.UUID(first["id"]),
    )
    assert graded[0] == 1
