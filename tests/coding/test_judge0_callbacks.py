"""Judge0 callback mode end to end: the real API, PostgreSQL and Redis; Judge0 replayed.

Judge0 itself is the scripted ``FakeJudge0`` (httpx.MockTransport, Judge0 CE
1.13.1's documented bodies). Its callbacks are what Judge0 would PUT: the
documented submission fields, base64-encoded, to the ``callback_url`` we
gave it, here sent through the app's test client. The judge and fallback
jobs run in-process exactly as the ``judge`` worker runs them: ``run_job``
claiming the real job rows.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
import msgspec
import pytest
from redis.asyncio import Redis
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from safexam.coding.backends import build_runner, callback_config
from safexam.coding.callbacks import collect_judge0_results
from safexam.coding.execution import RunnerUnavailable
from safexam.coding.judge0 import (
    CALLBACK_PATH,
    CallbackConfig,
    Judge0Runner,
    sign_callback_token,
    verify_callback_token,
)
from safexam.coding.judging import coding_body as judged_body
from safexam.coding.judging import judge_limits, judge_submission, judge_tests
from safexam.coding.models import CodingSubmission, Judge0Test
from safexam.core.broker import RetryLater
from safexam.core.db import utcnow
from safexam.core.events import submission_channel
from safexam.core.settings import Settings
from safexam.jobs import outbox
from safexam.jobs.models import Job
from safexam.jobs.runner import Done, TransientError, run_job
from safexam.jobs.service import Claim
from tests.coding.test_judge0 import FakeJudge0, ruby_b64
from tests.factories import (
    ADD_TEMPLATE,
    coding_body,
    coding_limits,
    exam_with_questions,
    make_session,
    paper_for,
)
from tests.helpers import login, make_user

SOURCE = "def add(a, b):\n    return a + b\n"
PUBLIC_URL = "https://exam.college.test"


def add_off_by_one_on_big_numbers(stdin: str) -> dict[str, Any]:
    """Judge0 running a program that gets test t1 (10 + 11) wrong and every other test right."""
    a, b = map(int, stdin.split())
    return {"status_id": 3, "stdout": f"{a + b + (1 if a == 10 else 0)}\n"}


def numbered_tests(count: int) -> list[dict[str, Any]]:
    """``count`` tests of ``add``, the odd ones hidden; t1 adds 10 and 11."""
    return [
        {
            "name": f"t{i}",
            "stdin": f"{i * 10} {i * 10 + 1}\n" if i else "1 2\n",
            "expected_output": f"{i * 20 + 1}\n" if i else "3\n",
            "points": 5,
            "hidden": i % 2 == 1,
        }
        for i in range(count)
    ]


def judge0_body(tests: int = 2) -> dict[str, Any]:
    return coding_body(
        starter_code=None, tests=numbered_tests(tests), limits=coding_limits(memory_mb=128)
    )


def judge0_settings(settings: Settings, **extra: Any) -> Settings:
    values: dict[str, Any] = {
        "code_runner": "judge0",
        "judge0_url": "http://judge0.test",
        "judge0_token": "secret-token",
        "judge0_callback_url": PUBLIC_URL,
    }
    return msgspec.structs.replace(settings, **{**values, **extra})


class Setup:
    """A student's submission in callback mode, and the means to play worker and Judge0."""

    def __init__(
        self,
        settings: Settings,
        sessionmaker: async_sessionmaker[AsyncSession],
        redis: Redis,
        fake: FakeJudge0,
        judge0: Any,
        student: Any,
        submission_id: str,
    ) -> None:
        self.settings = settings
        self.sessionmaker = sessionmaker
        self.redis = redis
        self.fake = fake
        self.judge0 = judge0  # a client with no cookie and no CSRF token, as Judge0 is
        self.student = student
        self.id = submission_id
        runner = build_runner(settings, transport=fake.transport())
        assert isinstance(runner, Judge0Runner)
        runner.poll_initial_s = runner.poll_max_s = 0.001
        self.runner = runner
        callbacks = callback_config(settings)
        assert callbacks is not None
        self.callbacks = callbacks

    async def job(self, kind: str) -> Job:
        async with self.sessionmaker() as db:
            job = (
                await db.execute(
                    select(Job).where(Job.kind == kind, Job.args["submission_id"].astext == self.id)
                )
            ).scalar_one()
            return job

    async def run_judge_job(self) -> Claim | None:
        """What the ``judge_submission`` actor does."""

        async def work(db: AsyncSession, claim: Claim) -> Done:
            try:
                return await judge_submission(
                    db,
                    uuid.UUID(self.id),
                    self.runner,
                    sessionmaker=self.sessionmaker,
                    redis=self.redis,
                    final_attempt=claim.attempt >= claim.max_attempts,
                    callbacks=self.callbacks,
                    job_id=claim.id,
                )
            except RunnerUnavailable as exc:
                raise TransientError(str(exc)) from exc

        job = await self.job("judge")
        claim = await run_job(job.id, work, sessionmaker=self.sessionmaker, redis=self.redis)
        # The fallback job's message leaves after commit on this loop; let it go now
        # rather than make the app's shutdown wait for it.
        await outbox.drain()
        return claim

    async def run_collect_job(self) -> Claim | None:
        """What the ``collect_judge0_results`` actor does when the callback wait is over."""

        async def work(db: AsyncSession, claim: Claim) -> Done:
            try:
                return await collect_judge0_results(
                    db,
                    uuid.UUID(self.id),
                    self.runner,
                    final_attempt=claim.attempt >= claim.max_attempts,
                )
            except RunnerUnavailable as exc:
                raise TransientError(str(exc)) from exc

        job = await self.job("judge0_collect")
        return await run_job(job.id, work, sessionmaker=self.sessionmaker, redis=self.redis)

    def created(self) -> list[dict[str, Any]]:
        """Every submission Judge0 was asked to create, in order."""
        return [
            item
            for request in self.fake.requests
            if request.method == "POST"
            for item in json.loads(request.content)["submissions"]
        ]

    def tokens(self) -> list[str]:
        """Judge0's tokens, in the order it handed them out."""
        return list(self.fake.submissions)

    async def deliver(self, token: str, body: dict[str, Any] | None = None) -> httpx.Response:
        """Judge0 PUTting the result of one of its submissions to the callback_url it got."""
        url = self.fake.submissions[token]["callback_url"]
        response: httpx.Response = await self.judge0.put(
            urlsplit(url).path, json=body if body is not None else self.fake.callback_body(token)
        )
        return response

    async def row(self) -> CodingSubmission:
        async with self.sessionmaker() as db:
            submission = await db.get(CodingSubmission, uuid.UUID(self.id))
            assert submission is not None
            return submission

    async def results(self) -> list[Judge0Test]:
        async with self.sessionmaker() as db:
            return list(
                (
                    await db.execute(
                        select(Judge0Test)
                        .where(Judge0Test.submission_id == uuid.UUID(self.id))
                        .order_by(Judge0Test.test_index)
                    )
                ).scalars()
            )

    async def view(self) -> dict[str, Any]:
        response = await self.student.get(f"/api/v1/submissions/{self.id}")
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body


@pytest.fixture
async def make_setup(
    db: AsyncSession,
    make_client: Any,
    settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    redis: Redis,
) -> Any:
    async def factory(
        tests: int = 2,
        outcome: Any = add_off_by_one_on_big_numbers,
        **settings_extra: Any,
    ) -> Setup:
        educator = await make_user(db, "educator")
        student = await make_user(db, "student")
        exam, (question,) = await exam_with_questions(
            db, educator, [(("coding", judge0_body(tests)), 10)]
        )
        session = await make_session(
            db, exam, student, paper_for([question], [10]), {}, status="active"
        )
        browser = await make_client()
        await login(browser, student.email)
        response = await browser.post(
            f"/api/v1/sessions/{session.id}/submissions",
            json={"question_id": str(question.id), "language": "python", "source": SOURCE},
        )
        assert response.status_code == 202, response.text
        return Setup(
            judge0_settings(settings, **settings_extra),
            sessionmaker,
            redis,
            FakeJudge0(outcome),
            await make_client(),
            browser,
            response.json()["id"],
        )

    return factory


async def test_callback_mode_creates_the_batch_with_signed_per_test_callback_urls(
    make_setup: Any,
) -> None:
    setup: Setup = await make_setup(tests=23, judge0_language_ids=(("python", 92),))
    before = utcnow()
    assert await setup.run_judge_job() is not None

    created = setup.created()
    assert setup.fake.batches == [20, 3]
    assert [item["language_id"] for item in created] == [92] * 23  # the configured map
    for index, item in enumerate(created):
        url = urlsplit(item["callback_url"])
        assert f"{url.scheme}://{url.netloc}" == PUBLIC_URL
        prefix, token = url.path.rsplit("/", 1)
        assert prefix == CALLBACK_PATH
        assert verify_callback_token(setup.settings.secret_key, token) == (setup.id, index)
        assert "expected_output" not in item
    assert not [r for r in setup.fake.requests if r.method == "GET"]  # nobody polls

    judge = await setup.job("judge")
    assert judge.status == "succeeded"
    assert judge.result is not None and judge.result["mode"] == "callback"
    rows = await setup.results()
    assert [r.judge0_token for r in rows] == setup.tokens()
    assert all(r.result is None for r in rows)
    # The fallback poll is a job of its own, due after the configured wait.
    collect = await setup.job("judge0_collect")
    assert collect.queue == "judge" and collect.status in ("pending", "queued")
    assert collect.run_at is not None
    wait = timedelta(seconds=setup.settings.judge0_callback_wait_seconds)
    assert before + wait <= collect.run_at <= utcnow() + wait
    view = await setup.view()
    assert (view["status"], view["tests_done"], view["tests_total"]) == ("running", 0, 23)


async def test_callbacks_complete_the_submission_through_the_api(
    make_setup: Any, redis: Redis
) -> None:
    setup: Setup = await make_setup(tests=3)
    await setup.run_judge_job()
    first, second, last = setup.tokens()

    assert (await setup.deliver(last)).status_code == 204
    view = await setup.view()
    assert (view["status"], view["tests_done"], view["verdict"]) == ("running", 1, None)
    assert view["tests"] == []  # no half-filled list for clients to trip over
    assert (await setup.deliver(first)).status_code == 204

    listener = redis.pubsub()
    await listener.subscribe(submission_channel(setup.id))
    try:
        assert (await setup.deliver(second)).status_code == 204
        published: dict[str, Any] = {}
        deadline = time.monotonic() + 5
        while published.get("status") != "done" and time.monotonic() < deadline:
            message = await listener.get_message(ignore_subscribe_messages=True, timeout=1)
            if message is not None:
                published = json.loads(message["data"])
    finally:
        await listener.aclose()
    assert published["status"] == "done" and published["score"] == 10.0

    view = await setup.view()
    assert (view["status"], view["verdict"], view["score"], view["max_score"]) == (
        "done",
        "wrong_answer",
        10.0,
        15.0,
    )
    assert [(t["name"], t["verdict"]) for t in view["tests"]] == [
        ("t0", "accepted"),
        ("t1", "wrong_answer"),
        ("t2", "accepted"),
    ]
    assert view["tests"][0]["stdout"] == "3\n"
    # A hidden test: its verdict only (no time before the results are released).
    assert set(view["tests"][1]) == {"name", "hidden", "verdict"}
    assert view["finished_at"] is not None
    assert (await setup.row()).executor == "judge0"
    assert [r.via for r in await setup.results()] == ["callback"] * 3

    # The polling path, given the same Judge0 answers, finishes the row the same way.
    spec = judged_body(judge0_body(3))
    polled = await setup.runner.judge(
        "python",
        ADD_TEMPLATE.replace("{{ SOURCE }}", SOURCE),
        judge_tests(spec, "submit", None),
        judge_limits(spec),
    )
    row = await setup.row()
    # Judge0's callback body carries no exit code or signal (not among its default fields).
    unsent = {"exit_code", "signal"}
    assert [{k: v for k, v in t.items() if k not in unsent} for t in row.tests] == [
        {k: v for k, v in t.items() if k not in unsent} for t in msgspec.to_builtins(polled.tests)
    ]
    assert (row.verdict, row.score, row.max_score) == (polled.verdict, polled.score, 15.0)

    # The fallback poll, when its time comes, finds nothing to do and asks Judge0 nothing.
    gets = len([r for r in setup.fake.requests if r.method == "GET"])
    assert await setup.run_collect_job() is not None
    assert len([r for r in setup.fake.requests if r.method == "GET"]) == gets
    assert (await setup.job("judge0_collect")).result == {
        "submission_id": setup.id,
        "polled": 0,
    }


async def test_bad_signatures_and_expired_tokens_are_refused_and_change_nothing(
    make_setup: Any,
) -> None:
    setup: Setup = await make_setup()
    await setup.run_judge_job()
    token = setup.tokens()[0]
    body = setup.fake.callback_body(token)
    key = setup.settings.secret_key
    good = sign_callback_token(key, setup.id, 0)
    expired = sign_callback_token(key, setup.id, 0, expires_at=time.time() - 1)
    refused = {
        "forged": sign_callback_token("an-attackers-own-key-0123456789", setup.id, 0),
        "another test": good.replace(f"{setup.id}.0.", f"{setup.id}.1.", 1),
        "no signature": good.rsplit(".", 1)[0] + ".",
        "truncated": good.rsplit(".", 1)[0],
        "garbage": "not-a-token",
        "longer expiry": expired.replace(
            f".{expired.split('.')[2]}.", f".{int(time.time()) + 10**6}.", 1
        ),
    }
    for name, bad in refused.items():
        response = await setup.judge0.put(f"{CALLBACK_PATH}/{bad}", json=body)
        assert response.status_code == 403, (name, response.text)
        error = response.json()["error"]
        assert error["code"] == "invalid_callback" and error["message"], name
    response = await setup.judge0.put(f"{CALLBACK_PATH}/{expired}", json=body)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "callback_expired"
    # A valid token with a body that is not Judge0's submission shape.
    for junk in (b"not json", json.dumps({**body, "stdout": "!!!"}).encode(), b'{"x": 1}'):
        response = await setup.judge0.put(f"{CALLBACK_PATH}/{good}", content=junk)
        assert response.status_code == 422, response.text
        assert response.json()["error"]["code"] == "invalid_callback_body"

    assert all(r.result is None for r in await setup.results())
    view = await setup.view()
    assert (view["status"], view["tests_done"], view["verdict"]) == ("running", 0, None)


async def test_replayed_and_duplicate_callbacks_are_idempotent(make_setup: Any) -> None:
    setup: Setup = await make_setup()
    await setup.run_judge_job()
    small, big = setup.tokens()

    assert (await setup.deliver(small)).status_code == 204
    first = (await setup.results())[0]
    assert first.result is not None and first.received_at is not None
    # The same delivery again, and a replay of the URL with a different body.
    assert (await setup.deliver(small)).status_code == 204
    forged = {**setup.fake.callback_body(small), "stdout": ruby_b64("999\n")}
    assert (await setup.deliver(small, forged)).status_code == 204
    again = (await setup.results())[0]
    assert (again.result, again.received_at) == (first.result, first.received_at)
    assert (await setup.view())["tests_done"] == 1

    # Judge0 delivering the last result twice at once: one finishes, both are 204.
    responses = await asyncio.gather(setup.deliver(big), setup.deliver(big))
    assert [r.status_code for r in responses] == [204, 204]
    done = await setup.row()
    assert (done.status, done.verdict, done.score) == ("done", "wrong_answer", 5.0)

    # Replays after the end change nothing, whatever they carry.
    good_big = {**setup.fake.callback_body(big), "stdout": ruby_b64("21\n")}
    for token, body in ((big, good_big), (small, None)):
        assert (await setup.deliver(token, body)).status_code == 204
    after = await setup.row()
    assert (after.verdict, after.score, after.tests, after.finished_at) == (
        done.verdict,
        done.score,
        done.tests,
        done.finished_at,
    )


async def test_a_callback_for_a_judge0_submission_we_no_longer_wait_for_is_refused(
    make_setup: Any,
) -> None:
    setup: Setup = await make_setup()
    await setup.run_judge_job()
    small = setup.tokens()[0]
    stale = {**setup.fake.callback_body(small), "token": str(uuid.uuid4())}
    response = await setup.deliver(small, stale)
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "stale_callback"
    assert all(r.result is None for r in await setup.results())


async def test_missing_callbacks_fall_back_to_polling_the_batch(make_setup: Any) -> None:
    setup: Setup = await make_setup(tests=3)
    setup.fake.pending_polls = 2  # Judge0 still busy with them when we first ask
    await setup.run_judge_job()
    tokens = setup.tokens()
    assert (await setup.deliver(tokens[1])).status_code == 204  # the only callback that came

    assert await setup.run_collect_job() is not None
    gets = [r for r in setup.fake.requests if r.method == "GET"]
    assert len(gets) == 3  # In Queue, Processing, finished: backoff until done
    for request in gets:
        assert request.url.path == "/submissions/batch"
        assert request.url.params["tokens"].split(",") == [tokens[0], tokens[2]]
        assert request.url.params["base64_encoded"] == "true"
    view = await setup.view()
    assert (view["status"], view["verdict"], view["score"]) == ("done", "wrong_answer", 10.0)
    assert [r.via for r in await setup.results()] == ["poll", "callback", "poll"]
    collect = await setup.job("judge0_collect")
    assert collect.status == "succeeded" and collect.result is not None
    assert collect.result["polled"] == 2

    # A callback that turns up after the poll finished the submission is harmless.
    assert (await setup.deliver(tokens[0])).status_code == 204
    assert (await setup.view())["score"] == 10.0


async def test_fallback_poll_retries_an_unreachable_judge0_then_ends_the_submission(
    make_setup: Any,
) -> None:
    setup: Setup = await make_setup()
    await setup.run_judge_job()
    # From now on Judge0 answers every request with 503, as it does when its queue is full.
    setup.runner.transport = httpx.MockTransport(
        lambda request: httpx.Response(503, json={"error": "queue is full"})
    )
    with pytest.raises(RetryLater, match="queue is full"):
        await setup.run_collect_job()  # run_job asks Dramatiq to deliver it again later
    collect = await setup.job("judge0_collect")
    assert collect.status == "queued" and "queue is full" in (collect.error or "")
    assert (await setup.row()).status == "running"  # still waiting, not a wrong answer

    async with setup.sessionmaker() as db:
        with pytest.raises(RunnerUnavailable, match="queue is full"):
            await collect_judge0_results(db, uuid.UUID(setup.id), setup.runner)
    async with setup.sessionmaker() as db:
        outcome = await collect_judge0_results(
            db, uuid.UUID(setup.id), setup.runner, final_attempt=True
        )
        await db.commit()
    assert outcome.result is not None and outcome.result["status"] == "error"
    view = await setup.view()
    assert (view["status"], view["verdict"], view["score"]) == ("error", "internal_error", 0.0)


async def test_fallback_poll_answered_with_a_page_that_is_not_json_ends_the_submission(
    make_setup: Any,
) -> None:
    """A proxy's HTML page where Judge0's JSON should be: the submission ends, it never hangs."""
    setup: Setup = await make_setup()
    await setup.run_judge_job()
    setup.runner.transport = httpx.MockTransport(
        lambda request: httpx.Response(200, text="<html>Bad gateway</html>")
    )
    assert await setup.run_collect_job() is not None
    collect = await setup.job("judge0_collect")
    assert collect.status == "succeeded"
    view = await setup.view()
    assert (view["status"], view["verdict"], view["score"]) == ("error", "internal_error", 0.0)


async def test_a_worker_dying_after_creating_the_batch_loses_no_result(make_setup: Any) -> None:
    setup: Setup = await make_setup()
    # First attempt: the batch is created, then the worker dies before committing.
    async with setup.sessionmaker() as db:
        await judge_submission(
            db,
            uuid.UUID(setup.id),
            setup.runner,
            sessionmaker=setup.sessionmaker,
            callbacks=setup.callbacks,
        )
        await db.rollback()
    assert await setup.results() == []
    old_small, old_big = setup.tokens()
    # Judge0 calls back for the first batch anyway: the result is kept.
    assert (await setup.deliver(old_small)).status_code == 204

    # The job is retried (the sweep re-sends it) and creates a second batch.
    assert await setup.run_judge_job() is not None
    new_small, new_big = setup.tokens()[2:]
    rows = await setup.results()
    assert [r.judge0_token for r in rows] == [new_small, new_big]
    assert rows[0].result is not None and rows[0].via == "callback"

    # The first batch's other callback is not the one this test waits for now.
    assert (await setup.deliver(old_big)).status_code == 409
    assert (await setup.deliver(new_big)).status_code == 204
    assert (await setup.deliver(new_small)).status_code == 204  # replay of a filled test
    done = await setup.row()
    assert (done.status, done.verdict, done.score) == ("done", "wrong_answer", 5.0)


def test_callback_mode_follows_the_settings(settings: Settings) -> None:
    assert callback_config(judge0_settings(settings, judge0_callback_url=None)) is None
    assert callback_config(settings) is None  # the sandbox runner never uses callbacks
    config = callback_config(judge0_settings(settings, judge0_callback_wait_seconds=7))
    assert config == CallbackConfig(
        base_url=PUBLIC_URL, secret_key=settings.secret_key, wait=timedelta(seconds=7)
    )


async def test_fallback_poll_ends_the_submission_when_judge0_is_no_longer_configured(
    make_setup: Any,
) -> None:
    setup: Setup = await make_setup()
    await setup.run_judge_job()
    assert (await setup.deliver(setup.tokens()[0])).status_code == 204
    async with setup.sessionmaker() as db:
        outcome = await collect_judge0_results(db, uuid.UUID(setup.id), None)
        await db.commit()
    assert outcome.result is not None and outcome.result["status"] == "error"
    view = await setup.view()
    assert (view["status"], view["verdict"]) == ("error", "internal_error")
    # Nothing was asked of Judge0 beyond creating the batch.
    assert [r.method for r in setup.fake.requests] == ["POST"]
