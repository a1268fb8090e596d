"""The judge step alone: a function of the loaded task and a runner, with no database."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import timedelta

from safexam.coding.execution import (
    Judgement,
    Limits,
    Progress,
    RunnerError,
    TestCase,
    TestResult,
)
from safexam.coding.judge0 import CallbackConfig, Judge0Runner, verify_callback_token
from safexam.coding.judging import BatchCreated, Failed, Judged, JudgeTask, judge
from tests.coding.test_judge0 import FakeJudge0

TESTS = (
    TestCase(name="small", stdin="1 2\n", expected_output="3\n", points=5),
    TestCase(name="big", stdin="10 20\n", expected_output="30\n", points=5, hidden=True),
)


def task(**changes: object) -> JudgeTask:
    values: dict[str, object] = {
        "submission_id": uuid.uuid4(),
        "session_id": uuid.uuid4(),
        "language": "python",
        "source": "print(sum(map(int, input().split())))\n",
        "template": None,
        "tests": TESTS,
        "limits": Limits(),
        "comparison": "trimmed",
        **changes,
    }
    return JudgeTask(**values)  # type: ignore[arg-type]


class ScriptedRunner:
    """Accepts every test, reporting progress after each; or fails as told."""

    name = "scripted"

    def __init__(self, error: Exception | None = None) -> None:
        self.error = error
        self.programs: list[str] = []

    async def judge(
        self,
        language: str,
        program: str,
        tests: Sequence[TestCase],
        limits: Limits,
        comparison: str = "trimmed",
        progress: Progress | None = None,
    ) -> Judgement:
        self.programs.append(program)
        if self.error is not None:
            raise self.error
        results = []
        for done, test in enumerate(tests, 1):
            results.append(
                TestResult(
                    name=test.name,
                    hidden=test.hidden,
                    verdict="accepted",
                    time_ms=1,
                    points=test.points,
                    max_points=test.points,
                )
            )
            if progress is not None:
                await progress(done, len(tests))
        return Judgement(
            verdict="accepted",
            compile_output="",
            tests=results,
            score=10.0,
            max_score=10.0,
            executor=self.name,
        )


async def test_the_judge_runs_the_templated_program_and_reports_progress() -> None:
    reported: list[tuple[int, int]] = []

    async def progress(done: int, total: int) -> None:
        reported.append((done, total))

    runner = ScriptedRunner()
    outcome = await judge(
        task(template="import sys\n{{ SOURCE }}\n", source="print(1)"), runner, progress
    )
    assert isinstance(outcome, Judged)
    assert outcome.judgement.score == 10.0
    assert runner.programs == ["import sys\nprint(1)\n"]
    assert reported == [(1, 2), (2, 2)]


async def test_what_the_judge_cannot_use_is_a_failure_not_an_exception() -> None:
    for broken, runner in (
        (task(comparison="fuzzy"), ScriptedRunner()),
        (task(template="no placeholder"), ScriptedRunner()),
        (task(), ScriptedRunner(RunnerError("no compiler"))),
    ):
        outcome = await judge(broken, runner)
        assert isinstance(outcome, Failed), outcome
    assert "no compiler" in outcome.error


async def test_callback_mode_only_creates_the_batch() -> None:
    fake = FakeJudge0(lambda stdin: {"status_id": 3, "stdout": "3\n"})
    runner = Judge0Runner("http://judge0.test", token="secret-token", transport=fake.transport())
    runner.poll_initial_s = runner.poll_max_s = 0.001
    callbacks = CallbackConfig(
        base_url="https://exam.test", secret_key="k" * 32, wait=timedelta(seconds=7)
    )
    job = task()
    outcome = await judge(job, runner, callbacks=callbacks)
    assert isinstance(outcome, BatchCreated)
    assert outcome.tokens == tuple(fake.submissions) and len(outcome.tokens) == 2
    assert outcome.collect_after == timedelta(seconds=7)
    assert [r.method for r in fake.requests] == ["POST"]
    url = fake.submissions[outcome.tokens[1]]["callback_url"]
    assert verify_callback_token("k" * 32, url.rsplit("/", 1)[1]) == (str(job.submission_id), 1)
    # Without callbacks the same runner polls: the batch is judged in place.
    polled = await judge(job, runner)
    assert isinstance(polled, Judged) and polled.judgement.executor == "judge0"
