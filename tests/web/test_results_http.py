"""The results pages and their API at the HTTP level: who may see them, the CSV
export's quoting, the ids an override needs, and overrides that say why."""

from __future__ import annotations

import csv
import io
import re
import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from safexam.grading.service import grade_session
from safexam.sessions.results import results_csv
from safexam.sessions.schemas import ResultRow, ResultsOut
from tests.factories import enroll, make_exam, make_question, make_session, make_user, paper_for
from tests.helpers import one, signed_in

QUOTED_LINE = re.compile(r'^"(?:[^"]|"")*"(?:,"(?:[^"]|"")*")*$')
HOSTILE_NAMES = ['=HYPERLINK("http://evil.example","x")', "+1+2", "-2+3", "@SUM(A1)", " =1"]


async def graded_exam(
    db: AsyncSession, sessionmaker: async_sessionmaker[AsyncSession], educator: Any
) -> tuple[Any, list[Any], list[Any]]:
    questions = [
        await make_question(db, educator, "mcq_single", prompt="=1+1 which?"),
        await make_question(db, educator, "numeric", prompt="How many?"),
    ]
    exam = await make_exam(db, educator, [(questions[0], 2.0), (questions[1], 3.0)])
    sessions = []
    for n, name in enumerate(HOSTILE_NAMES):
        student = await make_user(db, "student", name=name)
        await enroll(db, exam, student)
        sessions.append(
            await make_session(
                db,
                exam,
                student,
                paper_for(questions, [2.0, 3.0]),
                {questions[0].id: {"choice": "b" if n % 2 else "a"}},
            )
        )
    async with sessionmaker() as worker_db:
        for s in sessions:
            await grade_session(worker_db, s.id)
        await worker_db.commit()
    return exam, questions, sessions


async def test_csv_quotes_every_cell_and_neutralises_formulas(
    make_client: Any, db: AsyncSession, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    client, educator = await signed_in(make_client, db, "educator")
    exam, _, _ = await graded_exam(db, sessionmaker, educator)
    export = await client.get(f"/api/v1/exams/{exam.id}/results?format=csv")
    assert export.status_code == 200, export.text
    lines = export.text.split("\r\n")
    assert lines[-1] == ""
    for line in lines[:-1]:
        assert QUOTED_LINE.match(line), line
    table = list(csv.reader(io.StringIO(export.text)))
    assert table[0][9] == "'Q1 =1+1 which?"[1:]  # a header starts with its label, never "="
    names = {row[1] for row in table[1:]}
    assert names == {"'" + name.strip() for name in HOSTILE_NAMES}
    for row in table[1:]:
        for cell in row:
            assert cell.lstrip(" ")[:1] not in ("=", "+", "-", "@") or cell[:1] == "'", row
        # Numbers stay numbers.
        assert float(row[7]) == 5.0


async def test_results_expose_the_response_ids_an_override_needs(
    make_client: Any, db: AsyncSession, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    client, educator = await signed_in(make_client, db, "educator")
    exam, questions, sessions = await graded_exam(db, sessionmaker, educator)
    body = (await client.get(f"/api/v1/exams/{exam.id}/results")).json()
    assert [c["points"] for c in body["columns"]] == [2.0, 3.0]
    row = next(r for r in body["rows"] if r["session_id"] == str(sessions[0].id))
    ids = row["response_ids"]
    assert set(ids) == {str(q.id) for q in questions}
    response_id = ids[str(questions[0].id)]

    url = f"/api/v1/responses/{response_id}/override"
    missing = await client.put(url, json={"score": 1.0})
    assert missing.status_code == 422, missing.text
    assert missing.json()["error"]["details"][0]["field"] == "reason"
    blank = await client.put(url, json={"score": 1.0, "reason": "   "})
    assert blank.status_code == 422 and blank.json()["error"]["details"][0]["field"] == "reason"
    assert await one(db, "SELECT 1 FROM audit_events") is None

    ok = await client.put(url, json={"score": 1.0, "reason": "Rubric allows half"})
    assert ok.status_code == 200, ok.text
    audit = await one(db, "SELECT action, actor_id, subject_id, exam_id, reason FROM audit_events")
    assert (audit.action, audit.actor_id, str(audit.subject_id), audit.exam_id) == (
        "response.override",
        educator.id,
        response_id,
        exam.id,
    )
    assert audit.reason == "Rubric allows half"

    # The drill-down API names the same response, with both scores.
    one_student = await client.get(f"/api/v1/exams/{exam.id}/results/{sessions[0].id}")
    assert one_student.status_code == 200, one_student.text
    item = one_student.json()["items"][0]
    assert item["response_id"] == response_id
    assert (item["auto_score"], item["override_score"], item["score"]) == (0.0, 1.0, 1.0)


async def test_pages_are_the_owners_only(
    make_client: Any, db: AsyncSession, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    owner, educator = await signed_in(make_client, db, "educator")
    rival, _ = await signed_in(make_client, db, "educator")
    student, _ = await signed_in(make_client, db, "student")
    exam, _, sessions = await graded_exam(db, sessionmaker, educator)
    other_exam = await make_exam(db, educator, [await make_question(db, educator)])
    base = f"/educator/exams/{exam.id}"
    pages = [
        f"{base}/results",
        f"{base}/results/{sessions[0].id}",
        f"{base}/regrade",
        f"{base}/release",
    ]
    for path in pages:
        assert (await owner.get(path)).status_code == 200, path
        page = await rival.get(path)
        assert page.status_code == 404, path
        assert page.headers["content-type"].startswith("text/html")
        assert "Page not found" in page.text
        # Students are refused by role before any exam is looked up.
        assert (await student.get(path)).status_code == 403, path
    posts = [
        (f"{base}/release", {}),
        (f"{base}/release/policy", {"release_policy": "immediate"}),
        (f"{base}/regrade", {}),
        (f"{base}/results/{sessions[0].id}/override", {"response_id": str(uuid.uuid4())}),
    ]
    for path, form in posts:
        assert (await rival.post(path, data=form)).status_code == 404, path
    assert await one(db, "SELECT 1 FROM audit_events") is None
    assert await one(db, "SELECT 1 FROM jobs WHERE kind = 'regrade'") is None
    # An exam nobody has taken yet has empty pictures, not an error.
    for path in ("results", "regrade", "release"):
        empty = await owner.get(f"/educator/exams/{other_exam.id}/{path}")
        assert empty.status_code == 200, (path, empty.text[:300])
    # A session of another exam, under this exam's address, is not found either.
    assert (
        await owner.get(f"/educator/exams/{other_exam.id}/results/{sessions[0].id}")
    ).status_code == 404
    assert (await owner.get(f"{base}/regrade?job={uuid.uuid4()}")).status_code == 404


async def test_an_override_without_a_reason_is_refused_beside_the_field(
    make_client: Any, db: AsyncSession, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    owner, educator = await signed_in(make_client, db, "educator")
    exam, _, sessions = await graded_exam(db, sessionmaker, educator)
    body = (await owner.get(f"/api/v1/exams/{exam.id}/results/{sessions[0].id}")).json()
    response_id = body["items"][0]["response_id"]
    path = f"/educator/exams/{exam.id}/results/{sessions[0].id}/override"
    refused = await owner.post(path, data={"response_id": response_id, "score": "1"})
    assert refused.status_code == 422
    assert 'id="q1-reason-error"' in refused.text and "Say why the score changes" in refused.text
    too_much = await owner.post(
        path, data={"response_id": response_id, "score": "9", "reason": "Generous"}
    )
    assert too_much.status_code == 422 and 'id="q1-score-error"' in too_much.text
    saved = await owner.post(
        path,
        data={"response_id": response_id, "score": "1", "reason": "Generous"},
        follow_redirects=False,
    )
    assert saved.status_code == 303
    assert saved.headers["location"].endswith("?saved=Q1#Q1")
    assert (await one(db, "SELECT reason FROM audit_events")).reason == "Generous"

    # A policy change and a release are audited too.
    policy = await owner.post(
        f"/educator/exams/{exam.id}/release/policy",
        data={"release_policy": "immediate"},
        follow_redirects=False,
    )
    assert policy.status_code == 303
    released = await owner.post(
        f"/educator/exams/{exam.id}/release", data={}, follow_redirects=False
    )
    assert released.status_code == 303
    actions = await one(db, "SELECT array_agg(action ORDER BY at) AS a FROM audit_events")
    assert actions.a == ["response.override", "exam.release_policy", "exam.release"]


def test_csv_cells_that_only_look_like_formulas_after_a_space_or_in_full_width() -> None:
    table = ResultsOut(
        exam_id=uuid.uuid4(),
        columns=[],
        rows=[
            ResultRow(
                session_id=None,
                user_id=None,
                email=email,
                name=name,
                status="not_started",
                attempt=None,
                started_at=None,
                submitted_at=None,
                score=-1.5,
                max_score=None,
                percent=None,
                questions={},
            )
            for email, name in (
                ("a@x.edu", "  =1+1"),
                ("b@x.edu", "\uff1dSUM(A1)"),
                ("c@x.edu", "-"),
            )
        ],
    )
    rows = list(csv.reader(io.StringIO(results_csv(table))))[1:]
    assert [r[1] for r in rows] == ["'  =1+1", "'\uff1dSUM(A1)", "'-"]
    # A negative number of ours is a number, not a formula.
    assert [r[6] for r in rows] == ["-1.5"] * 3
