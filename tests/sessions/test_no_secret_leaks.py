"""Walk every student-facing endpoint and fail if a secret or another student's data appears.

Secrets are planted as unique values (answer keys, hidden test input and
output, templates, numeric answers, accepted short answers) and the raw text
of every response is searched for them, not just for field names.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from tests.factories import enroll, make_exam, make_question, secret, secret_coding_body
from tests.helpers import signed_in

# Fields of a question body a student may see before release (the allow-list).
QUESTION_FIELDS = {
    "id",
    "kind",
    "prompt",
    "points",
    "choices",
    "multiple",
    "languages",
    "starter_code",
    "visible_tests",
    "limits",
}
KEY_NAMES = (
    '"answer_expression"',
    '"template"',
    '"tolerance"',
    '"answers"',
    '"case_sensitive"',
    '"partial_credit"',
    '"correct_answer"',
    '"answer_key"',
)
# A submission's per-test results are part of its contract (hidden ones show name and verdict).
SUBMISSION_ONLY = ('"tests"', '"hidden"')


async def test_no_secret_reaches_a_student(make_client: Any, db: AsyncSession) -> None:
    _, educator = await signed_in(make_client, db, "educator")
    numeric_answer = 31337.271828
    mcq_key = secret("choice").lower().replace("secret-", "k")
    mcq = await make_question(
        db,
        educator,
        "mcq_single",
        body={
            "choices": [
                {"id": "visible1", "text": "a"},
                {"id": mcq_key, "text": "b"},
                {"id": "visible2", "text": "c"},
            ],
            "answer": [mcq_key],
        },
    )
    short_answer = secret("short")
    short = await make_question(
        db, educator, "short_text", body={"answers": [short_answer], "case_sensitive": True}
    )
    numeric = await make_question(
        db, educator, "numeric", body={"answer": numeric_answer, "tolerance": 0.000123}
    )
    code_body = secret_coding_body()
    code = await make_question(db, educator, "coding", body=code_body)
    exam = await make_exam(
        db, educator, [mcq, short, numeric, code], release_policy="manual", shuffle_choices=True
    )
    secrets_ = [
        short_answer,
        str(numeric_answer),
        "0.000123",
        code_body["template"]["python"],
        code_body["tests"][1]["stdin"].strip(),
        code_body["tests"][1]["expected_output"].strip(),
    ]

    me, me_user = await signed_in(make_client, db, "student")
    them, them_user = await signed_in(make_client, db, "student")
    for student in (me_user, them_user):
        await enroll(db, exam, student)

    # The other student works first, with answers nobody else may see.
    their = (await them.post(f"/api/v1/exams/{exam.id}/sessions")).json()
    their_text = secret("their-answer")
    their_q = next(q["id"] for q in their["questions"] if q["kind"] == "short_text")
    await them.put(
        f"/api/v1/sessions/{their['id']}/responses/{their_q}",
        json={"answer": {"text": their_text}, "client_seq": 1},
    )
    await them.post(
        f"/api/v1/sessions/{their['id']}/events",
        json={
            "events": [
                {"kind": "paste", "at": "2026-11-25T10:00:00Z", "details": {"note": their_text}}
            ]
        },
    )
    foreign = [their_text, their["id"], them_user.email]

    seen: list[tuple[str, int, str]] = []

    async def call(method: str, path: str, body: Any = None) -> Any:
        response = await me.request(method, path, json=body)
        seen.append((f"{method} {path}", response.status_code, response.text))
        return response

    await call("GET", "/api/v1/exams")
    started = (await call("POST", f"/api/v1/exams/{exam.id}/sessions")).json()
    sid = started["id"]
    await call("POST", f"/api/v1/exams/{exam.id}/sessions")  # resume
    questions = {q["kind"]: q for q in started["questions"]}
    for kind, answer in (
        ("mcq_single", {"choice": "visible1"}),
        ("short_text", {"text": "guess"}),
        ("numeric", {"value": 1.0}),
        ("coding", {"language": "python", "source": "print(1)"}),
    ):
        await call(
            "PUT",
            f"/api/v1/sessions/{sid}/responses/{questions[kind]['id']}",
            {"answer": answer, "client_seq": 1},
        )
    await call(
        "PUT",
        f"/api/v1/sessions/{sid}/responses/{questions['mcq_single']['id']}",
        {"answer": {"choice": "nope"}, "client_seq": 2},
    )  # a 422 must not list the key
    await call(
        "POST",
        f"/api/v1/sessions/{sid}/events",
        {"events": [{"kind": "copy", "at": "2026-11-25T10:01:00Z"}]},
    )
    await call("GET", f"/api/v1/sessions/{sid}")
    await call("GET", f"/api/v1/sessions/{sid}/review")  # before release
    # Code runs and submissions, where the code-execution routes exist.
    run = await call(
        "POST",
        f"/api/v1/sessions/{sid}/runs",
        {"question_id": questions["coding"]["id"], "language": "python", "source": "print(3)"},
    )
    sub = await call(
        "POST",
        f"/api/v1/sessions/{sid}/submissions",
        {"question_id": questions["coding"]["id"], "language": "python", "source": "print(3)"},
    )
    for created in (run, sub):
        if created.status_code == 202:
            await call("GET", f"/api/v1/submissions/{created.json()['id']}")
    await call("POST", f"/api/v1/sessions/{sid}/submit")
    await call("GET", f"/api/v1/sessions/{sid}")
    await call("GET", f"/api/v1/sessions/{sid}/review")
    # Poking at the other student's things.
    await call("GET", f"/api/v1/sessions/{their['id']}")
    await call("GET", f"/api/v1/sessions/{their['id']}/review")
    await call("GET", f"/api/v1/sessions/{their['id']}/activity")
    await call(
        "PUT",
        f"/api/v1/sessions/{their['id']}/responses/{their_q}",
        {"answer": {"text": "x"}, "client_seq": 9},
    )
    await call("GET", f"/api/v1/exams/{exam.id}/results")
    await call("GET", f"/api/v1/exams/{exam.id}/sessions")

    assert all(status < 500 for _, status, _ in seen), [s for s in seen if s[1] >= 500]
    assert len(seen) >= 20
    for where, _, body in seen:
        for value in secrets_ + foreign:
            assert value not in body, f"{where} leaked {value!r}"
        names = KEY_NAMES if "/submissions/" in where else KEY_NAMES + SUBMISSION_ONLY
        for name in names:
            assert name not in body, f"{where} has field {name}"
    # The correct choice id is visible only as one choice among others, never marked.
    for where, status, body in seen:
        if status in (200, 201) and '"questions"' in body:
            for q in json.loads(body)["questions"]:
                assert set(q) <= QUESTION_FIELDS, (where, set(q) - QUESTION_FIELDS)
                if q["kind"] == "coding":
                    assert [t["name"] for t in q["visible_tests"]] == ["small"]
                    assert q["starter_code"] == code_body["starter_code"]
    # The walk really went through the session (not a row of 404s).
    statuses = {
        where.split(" ")[0] + " " + where.split("/")[3]: status for where, status, _ in seen
    }
    assert statuses["POST exams"] in (200, 201) and uuid.UUID(sid)
    assert any(w.startswith("PUT") and st == 200 for w, st, _ in seen)
