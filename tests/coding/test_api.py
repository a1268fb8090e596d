"""Runs and submissions through the API, the real judge service and the real sandbox."""

from __future__ import annotations

import asyncio
import base64
import json
import time
import uuid
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from safexam.coding import judging, submissions
from safexam.coding.execution import Limits
from safexam.coding.judge0 import Judge0Runner, sign_callback_token
from safexam.coding.judging import judge_submission
from safexam.coding.models import CodingSubmission
from safexam.coding.sandbox import SandboxConfig, SandboxRunner, bwrap_path
from safexam.coding.submissions import SubmitLimits
from safexam.core.events import submission_channel
from safexam.core.settings import Settings
from safexam.grading.service import grade_session
from safexam.jobs.models import Job
from safexam.sessions.models import Response
from tests.factories import (
    ADD_TEMPLATE,
    coding_body,
    coding_limits,
    exam_with_questions,
    make_session,
    mcq_single,
    paper_for,
)
from tests.helpers import ServiceUrls, login, make_user
from tests.live import live_server, sse_events
from tests.workers_helper import running_worker

pytestmark = pytest.mark.skipif(bwrap_path() is None, reason="bubblewrap is not installed")

GOOD = "def add(a, b):\n    return a + b\n"
HALF = "def add(a, b):\n    return 3\n"
LIMITS = coding_limits(memory_mb=128)


async def setup_exam(db: AsyncSession, **body: Any) -> tuple[Any, Any, Any, Any]:
    """An educator's exam with one coding question (10 points) and a student's active session."""
    educator = await make_user(db, "educator")
    student = await make_user(db, "student")
    exam, (question, mcq) = await exam_with_questions(
        db, educator, [(("coding", coding_body(limits=LIMITS, **body)), 10), (mcq_single("b"), 1)]
    )
    session = await make_session(
        db, exam, student, paper_for([question, mcq], [10, 1]), {}, status="active"
    )
    return educator, student, question, session


async def student_client(make_client: Any, student: Any) -> Any:
    client = await make_client()
    await login(client, student.email)
    return client


def sandbox() -> SandboxRunner:
    return SandboxRunner(SandboxConfig())


async def judge(
    sessionmaker: async_sessionmaker[AsyncSession], submission_id: str, runner: Any = None
) -> dict[str, Any]:
    """What the judge worker does for one job: judge, then commit."""
    async with sessionmaker() as db:
        done = await judge_submission(
            db, uuid.UUID(submission_id), runner or sandbox(), sessionmaker=sessionmaker
        )
        await db.commit()
    assert done.result is not None
    return done.result


async def test_submit_is_queued_judged_and_hidden_tests_redacted(
    db: AsyncSession, make_client: Any, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    educator, student, question, session = await setup_exam(db)
    client = await student_client(make_client, student)
    response = await client.post(
        f"/api/v1/sessions/{session.id}/submissions",
        json={"question_id": str(question.id), "language": "python", "source": HALF},
    )
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["status"] == "queued"
    sid = body["id"]
    queued = (await client.get(f"/api/v1/submissions/{sid}")).json()
    assert queued["status"] == "queued" and queued["tests_total"] == 2
    job = (await db.execute(select(Job).where(Job.kind == "judge"))).scalar_one()
    assert job.queue == "judge" and job.args["submission_id"] == sid

    await judge(sessionmaker, sid)
    done = (await client.get(f"/api/v1/submissions/{sid}")).json()
    assert done["status"] == "done"
    assert done["verdict"] == "wrong_answer"
    assert (done["score"], done["max_score"]) == (5.0, 10.0)
    small, big = done["tests"]
    assert small == {
        "name": "small",
        "hidden": False,
        "verdict": "accepted",
        "time_ms": small["time_ms"],
        "memory_kb": small["memory_kb"],
        "stdout": "3\n",
        "stderr": "",
    }
    # The hidden test: name and verdict, nothing of its data, of the output, or
    # of its time (which would carry its input out): the results are not released.
    assert set(big) == {"name", "hidden", "verdict"}
    assert big["verdict"] == "wrong_answer"
    raw = json.dumps(done)
    # Neither the hidden input, nor its expected output, nor what the program printed.
    assert "10 20\\n" not in raw and "30\\n" not in raw and '"3\\n"' in raw

    # The exam's educator can read it too; another student cannot.
    teacher = await make_client()
    await login(teacher, educator.email)
    seen_by_teacher = await teacher.get(f"/api/v1/submissions/{sid}")
    assert seen_by_teacher.status_code == 200
    # The educator sees the hidden test's time and memory, still not its data.
    assert set(seen_by_teacher.json()["tests"][1]) == {
        "name",
        "hidden",
        "verdict",
        "time_ms",
        "memory_kb",
    }
    other = await make_user(db, "student")
    stranger = await make_client()
    await login(stranger, other.email)
    assert (await stranger.get(f"/api/v1/submissions/{sid}")).status_code == 404


async def test_run_with_own_input_shows_its_output_and_is_not_graded(
    db: AsyncSession, make_client: Any, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    _, student, question, session = await setup_exam(db)
    client = await student_client(make_client, student)
    response = await client.post(
        f"/api/v1/sessions/{session.id}/runs",
        json={
            "question_id": str(question.id),
            "language": "python",
            "source": GOOD,
            "stdin": "40 2\n",
        },
    )
    assert response.status_code == 202, response.text
    await judge(sessionmaker, response.json()["id"])
    run = (await client.get(f"/api/v1/submissions/{response.json()['id']}")).json()
    assert run["kind"] == "run" and run["verdict"] == "accepted"
    assert run["tests"][0]["stdout"] == "42\n"
    # Visible tests only when no input is given.
    response = await client.post(
        f"/api/v1/sessions/{session.id}/runs",
        json={"question_id": str(question.id), "language": "python", "source": GOOD},
    )
    await judge(sessionmaker, response.json()["id"])
    run = (await client.get(f"/api/v1/submissions/{response.json()['id']}")).json()
    assert [t["name"] for t in run["tests"]] == ["small"]


async def test_the_last_submission_before_the_deadline_counts_in_grading(
    db: AsyncSession, make_client: Any, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    _, student, question, session = await setup_exam(db)
    client = await student_client(make_client, student)
    for source in (GOOD, HALF):
        response = await client.post(
            f"/api/v1/sessions/{session.id}/submissions",
            json={"question_id": str(question.id), "language": "python", "source": source},
        )
        assert response.status_code == 202, response.text
        await judge(sessionmaker, response.json()["id"])
    session.status = "submitted"
    await db.commit()
    async with sessionmaker() as grading:
        await grade_session(grading, session.id)
        await grading.commit()
    async with sessionmaker() as check:
        score = (
            await check.execute(
                select(Response.score).where(
                    Response.session_id == session.id, Response.question_id == question.id
                )
            )
        ).scalar_one()
    assert score == 5.0  # the last one (half marks), not the best


async def test_bad_requests_name_the_field(db: AsyncSession, make_client: Any) -> None:
    _, student, question, session = await setup_exam(db)
    client = await student_client(make_client, student)
    url = f"/api/v1/sessions/{session.id}/submissions"
    cases = [
        ({"question_id": str(question.id), "language": "java", "source": "x"}, "language"),
        ({"question_id": str(question.id), "language": "python", "source": "x" * 64_001}, "source"),
        (
            {"question_id": str(question.id), "language": "python", "source": "x", "extra": 1},
            "extra",
        ),
    ]
    for payload, field in cases:
        response = await client.post(url, json=payload)
        assert response.status_code == 422, response.text
        fields = [d.get("field") for d in response.json()["error"]["details"] or []]
        assert field in fields, response.json()
    response = await client.post(
        url, json={"question_id": str(uuid.uuid4()), "language": "python", "source": "x"}
    )
    assert response.status_code == 404
    assert (await db.execute(select(CodingSubmission))).first() is None


async def test_one_in_flight_per_question_and_a_rate_limit(
    db: AsyncSession, make_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, student, question, session = await setup_exam(db)
    client = await student_client(make_client, student)
    url = f"/api/v1/sessions/{session.id}/submissions"
    payload = {"question_id": str(question.id), "language": "python", "source": GOOD}
    first, second = await asyncio.gather(
        client.post(url, json=payload), client.post(url, json=payload)
    )
    codes = sorted([first.status_code, second.status_code])
    assert codes == [202, 429], (first.text, second.text)
    refused = first if first.status_code == 429 else second
    assert refused.headers["Retry-After"] == "2"

    monkeypatch.setattr(submissions, "SUBMIT_LIMITS", SubmitLimits(submissions_per_minute=2))
    for _ in range(2):
        await db.execute(
            CodingSubmission.__table__.update().values(status="done")  # type: ignore[attr-defined]
        )
        await db.commit()
        response = await client.post(url, json=payload)
        if response.status_code == 429:
            break
    assert response.status_code == 429
    assert response.json()["error"]["code"] == "rate_limited"
    assert int(response.headers["Retry-After"]) >= 1


async def test_closed_sessions_and_other_students_sessions(
    db: AsyncSession, make_client: Any
) -> None:
    _, student, question, session = await setup_exam(db)
    other = await make_user(db, "student")
    stranger = await make_client()
    await login(stranger, other.email)
    payload = {"question_id": str(question.id), "language": "python", "source": GOOD}
    response = await stranger.post(f"/api/v1/sessions/{session.id}/submissions", json=payload)
    assert response.status_code == 404
    session.status = "submitted"
    await db.commit()
    client = await student_client(make_client, student)
    response = await client.post(f"/api/v1/sessions/{session.id}/runs", json=payload)
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "session_closed"


async def test_an_unavailable_runner_requeues_then_gives_up_on_the_last_attempt(
    db: AsyncSession, make_client: Any, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    _, student, question, session = await setup_exam(db)
    client = await student_client(make_client, student)
    response = await client.post(
        f"/api/v1/sessions/{session.id}/submissions",
        json={"question_id": str(question.id), "language": "python", "source": GOOD},
    )
    sid = uuid.UUID(response.json()["id"])
    full = Judge0Runner(
        "http://judge0.test",
        transport=httpx.MockTransport(
            lambda r: httpx.Response(503, json={"error": "queue is full"})
        ),
        create_attempts=1,
    )
    from safexam.coding.execution import RunnerUnavailable

    with pytest.raises(RunnerUnavailable):
        async with sessionmaker() as work:
            await judge_submission(work, sid, full, sessionmaker=sessionmaker)
    async with sessionmaker() as check:
        row = await check.get(CodingSubmission, sid)
        assert row is not None and row.status == "queued" and row.verdict is None
    async with sessionmaker() as work:
        await judge_submission(work, sid, full, sessionmaker=sessionmaker, final_attempt=True)
        await work.commit()
    final = (await client.get(f"/api/v1/submissions/{sid}")).json()
    assert (final["status"], final["verdict"]) == ("error", "internal_error")


async def test_judge0_callbacks_are_verified_and_fill_the_submission(
    db: AsyncSession, make_client: Any, settings: Settings
) -> None:
    _, student, question, session = await setup_exam(db)
    client = await student_client(make_client, student)
    response = await client.post(
        f"/api/v1/sessions/{session.id}/submissions",
        json={"question_id": str(question.id), "language": "python", "source": GOOD},
    )
    sid = response.json()["id"]

    def body(stdout: str) -> dict[str, Any]:
        return {
            "stdout": base64.b64encode(stdout.encode()).decode() + "\n",
            "stderr": None,
            "compile_output": None,
            "message": None,
            "time": "0.015",
            "memory": 3200,
            "token": str(uuid.uuid4()),
            "status": {"id": 3, "description": "Accepted"},
        }

    judge0 = await make_client()  # no cookie, no CSRF token: Judge0 is not a browser
    forged = sign_callback_token("not-the-server-secret-key-000000", sid, 0)
    response = await judge0.put(f"/api/v1/judge0/callbacks/{forged}", json=body("3\n"))
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "invalid_callback"
    wrong_index = sign_callback_token(settings.secret_key, sid, 0).replace(".0.", ".1.", 1)
    assert (
        await judge0.put(f"/api/v1/judge0/callbacks/{wrong_index}", json=body("30\n"))
    ).status_code == 403
    async with AsyncSession(db.bind) as check:
        row = await check.get(CodingSubmission, uuid.UUID(sid))
        assert row is not None and row.tests == [] and row.status == "queued"

    for index, stdout in ((1, "30\n"), (0, "3\n")):
        token = sign_callback_token(settings.secret_key, sid, index)
        response = await judge0.put(f"/api/v1/judge0/callbacks/{token}", json=body(stdout))
        assert response.status_code == 204, response.text
    done = (await client.get(f"/api/v1/submissions/{sid}")).json()
    assert (done["status"], done["verdict"], done["score"]) == ("done", "accepted", 10.0)
    assert [t["name"] for t in done["tests"]] == ["small", "big"]


async def test_submission_events_stream_queued_running_done_through_a_real_worker(
    db: AsyncSession,
    settings: Settings,
    services: ServiceUrls,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    tests = [
        {
            "name": f"t{i}",
            "stdin": f"{i} {i}\n",
            "expected_output": f"{2 * i}\n",
            "points": 1,
            "hidden": i % 2 == 0,
        }
        for i in range(4)
    ]
    _, student, question, session = await setup_exam(db, tests=tests)
    with running_worker(services, ("judge",), threads=1) as worker:
        async with (
            live_server(settings) as base,
            httpx.AsyncClient(base_url=base, timeout=30) as browser,
        ):
            await login(browser, student.email)
            response = await browser.post(
                f"/api/v1/sessions/{session.id}/submissions",
                json={"question_id": str(question.id), "language": "python", "source": GOOD},
            )
            assert response.status_code == 202, response.text
            sid = response.json()["id"]
            try:
                events = await sse_events(
                    browser,
                    f"/api/v1/submissions/{sid}/events",
                    until=lambda e: (e.get("data") or {}).get("status") in ("done", "error"),
                    timeout=60,
                )
            except Exception:
                print(worker.log()[-5000:])
                raise
    states = [e["data"] for e in events if e.get("event") == "submission"]
    assert states[0]["status"] in ("queued", "running")
    final = states[-1]
    assert final["status"] == "done", worker.log()[-3000:]
    assert (final["verdict"], final["score"], final["max_score"]) == ("accepted", 4.0, 4.0)
    assert final["tests_done"] == final["tests_total"] == 4
    for test in final["tests"]:
        if test["hidden"]:
            assert set(test) == {"name", "hidden", "verdict"}
    async with sessionmaker() as check:
        job = (await check.execute(select(Job).where(Job.kind == "judge"))).scalar_one()
        assert job.status == "succeeded"


def test_limits_struct_matches_question_limits() -> None:
    limits = judging.judge_limits(judging.coding_body(coding_body(limits=LIMITS)))
    assert limits == Limits(cpu_time_s=2, wall_time_s=5, memory_mb=128, output_kb=64)


async def test_template_lines_never_reach_the_student(
    db: AsyncSession, make_client: Any, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    """A traceback through the template's harness shows the error, not the harness."""
    harness = "assert add(2, 2) == 4, 'harness'  # secret_harness_check\n"
    _, student, question, session = await setup_exam(
        db, template={"python": "{{ SOURCE }}\n" + harness + ADD_TEMPLATE.split("\n", 1)[1]}
    )
    client = await student_client(make_client, student)
    response = await client.post(
        f"/api/v1/sessions/{session.id}/submissions",
        json={"question_id": str(question.id), "language": "python", "source": HALF},
    )
    sid = response.json()["id"]
    await judge(sessionmaker, sid)
    done = (await client.get(f"/api/v1/submissions/{sid}")).json()
    small = done["tests"][0]
    assert small["verdict"] == "runtime_error"
    assert "AssertionError" in small["stderr"]
    assert "secret_harness_check" not in json.dumps(done)
    # It was there to hide: the stored row, before the view, has no trace of it either.
    stored = await db.get(CodingSubmission, uuid.UUID(sid))
    assert stored is not None
    await db.refresh(stored)
    assert "secret_harness_check" not in json.dumps(stored.tests)


async def test_progress_is_reported_at_a_bounded_rate_and_always_at_the_end(
    db: AsyncSession,
    make_client: Any,
    sessionmaker: async_sessionmaker[AsyncSession],
    redis: Redis,
) -> None:
    """Fast tests must not each cost a database write and a notification."""
    count = 20
    tests = [
        {"name": f"t{i}", "stdin": f"{i} {i}\n", "expected_output": f"{2 * i}\n", "points": 1}
        for i in range(count)
    ]
    _, student, question, session = await setup_exam(db, tests=tests)
    client = await student_client(make_client, student)
    response = await client.post(
        f"/api/v1/sessions/{session.id}/submissions",
        json={"question_id": str(question.id), "language": "python", "source": GOOD},
    )
    sid = response.json()["id"]
    listener = redis.pubsub()
    await listener.subscribe(submission_channel(sid))
    try:
        started = time.monotonic()
        async with sessionmaker() as work:
            done = await judge_submission(
                work, uuid.UUID(sid), sandbox(), sessionmaker=sessionmaker, redis=redis
            )
            await work.commit()
        elapsed = time.monotonic() - started
        reported: list[int] = []
        deadline = time.monotonic() + 5
        # (The subscription's own confirmation also reads as None.)
        while time.monotonic() < deadline and (not reported or reported[-1] < count):
            message = await listener.get_message(ignore_subscribe_messages=True, timeout=0.2)
            data = json.loads(message["data"]) if message is not None else {}
            if "tests_done" in data and "status" not in data:
                reported.append(data["tests_done"])
    finally:
        await listener.aclose()
    assert done.result is not None and done.result["verdict"] == "accepted"
    assert reported and reported[-1] == count
    assert reported == sorted(reported)
    assert len(reported) <= elapsed / judging.PROGRESS_INTERVAL_S + 2, (reported, elapsed)
    async with sessionmaker() as check:
        row = await check.get(CodingSubmission, uuid.UUID(sid))
        assert row is not None and row.tests_done == row.tests_total == count
