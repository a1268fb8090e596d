"""Each test's outcome reaches the student while the rest still run, redacted like the end."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from safexam.coding import judging
from safexam.coding.execution import TestResult
from safexam.coding.judging import JudgeTask, ProgressReport, judge, load, record
from safexam.coding.sandbox import SandboxConfig, SandboxRunner, bwrap_path
from tests.factories import ADD_TEMPLATE, coding_body, exam_with_questions, make_session, paper_for
from tests.helpers import login, make_user

pytestmark = pytest.mark.skipif(bwrap_path() is None, reason="bubblewrap is not installed")

# The harness fails for this source, and a traceback quotes the harness's line.
HARNESS = "assert add(2, 2) == 4, 'harness'  # secret_harness_check\n"
SOURCE = "def add(a, b):\n    return 3\n"
TESTS = [
    {"name": "first", "stdin": "1 2\n", "expected_output": "3\n", "points": 1},
    {"name": "secret", "stdin": "5 5\n", "expected_output": "10\n", "points": 1, "hidden": True},
    {"name": "last", "stdin": "2 2\n", "expected_output": "4\n", "points": 1},
]


async def test_results_so_far_are_shown_while_judging_runs(
    db: AsyncSession,
    make_client: Any,
    sessionmaker: async_sessionmaker[AsyncSession],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Every test reports (the rate limit is tested in test_api).
    monkeypatch.setattr(judging, "PROGRESS_INTERVAL_S", 0.0)
    educator = await make_user(db, "educator")
    student = await make_user(db, "student")
    template = {"python": "{{ SOURCE }}\n" + HARNESS + ADD_TEMPLATE.split("\n", 1)[1]}
    body = coding_body(languages=["python"], template=template, tests=TESTS)
    exam, (question,) = await exam_with_questions(db, educator, [(("coding", body), 3)])
    session = await make_session(db, exam, student, paper_for([question], [3]), {}, status="active")
    client = await make_client()
    await login(client, student.email)
    response = await client.post(
        f"/api/v1/sessions/{session.id}/submissions",
        json={"question_id": str(question.id), "language": "python", "source": SOURCE},
    )
    sid = response.json()["id"]
    seen: list[dict[str, Any]] = []

    class Watched(ProgressReport):
        """What the student is shown after each report."""

        async def __call__(self, done: int, total: int, results: Sequence[TestResult] = ()) -> None:
            await super().__call__(done, total, results)
            seen.append((await client.get(f"/api/v1/submissions/{sid}")).json())

    async with sessionmaker() as work:
        task = await load(work, uuid.UUID(sid))
        await work.rollback()
        assert isinstance(task, JudgeTask)
        progress = Watched(
            sessionmaker, None, task.submission_id, template=task.template, source=task.source
        )
        await progress.started(len(task.tests))
        outcome = await judge(task, SandboxRunner(SandboxConfig()), progress)
        await record(work, task, outcome)
        await work.commit()

    assert [(v["status"], v["tests_done"], len(v["tests"])) for v in seen] == [
        ("running", 1, 1),
        ("running", 2, 2),
        ("running", 3, 3),
    ]
    first = seen[0]["tests"][0]
    assert (first["name"], first["verdict"]) == ("first", "runtime_error")
    assert first["time_ms"] >= 0 and "memory_kb" in first
    assert "AssertionError" in first["stderr"]
    # The hidden test as it will be at the end: name and verdict only.
    assert set(seen[1]["tests"][1]) == {"name", "hidden", "verdict"}
    assert all("secret_harness_check" not in json.dumps(view) for view in seen)
    done = (await client.get(f"/api/v1/submissions/{sid}")).json()
    assert done["status"] == "done" and done["tests"] == seen[-1]["tests"]
