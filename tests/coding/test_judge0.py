"""Judge0 CE contract tests: its documented responses replayed through httpx.MockTransport.

No Judge0 can run here, so a small scripted server stands in at the HTTP
boundary (the only stand-in allowed); everything above httpx is the real
runner. Response shapes follow Judge0 CE 1.13.1's API documentation: batch
create answers a list of ``{"token"}``, batch GET answers
``{"submissions": [...]}`` with base64 text fields (wrapped at 60 columns,
as Ruby's encoder does), 503 ``{"error": "queue is full"}``.
"""

from __future__ import annotations

import base64
import itertools
import json
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from safexam.coding.backends import build_runner
from safexam.coding.execution import Limits, RunnerError, RunnerUnavailable, TestCase
from safexam.coding.judge0 import (
    BATCH_SIZE,
    STATUS_VERDICTS,
    InvalidCallback,
    Judge0Runner,
    parse_callback,
    sign_callback_token,
    verify_callback_token,
)
from safexam.core.settings import load_settings

LIMITS = Limits(cpu_time_s=1, wall_time_s=2, memory_mb=64, output_kb=1)
DESCRIPTIONS = {
    1: "In Queue",
    2: "Processing",
    3: "Accepted",
    4: "Wrong Answer",
    5: "Time Limit Exceeded",
    6: "Compilation Error",
    7: "Runtime Error (SIGSEGV)",
    8: "Runtime Error (SIGXFSZ)",
    9: "Runtime Error (SIGFPE)",
    10: "Runtime Error (SIGABRT)",
    11: "Runtime Error (NZEC)",
    12: "Runtime Error (Other)",
    13: "Internal Error",
    14: "Exec Format Error",
}


@pytest.fixture(autouse=True)
def _clean_state() -> None:
    """These tests touch neither PostgreSQL nor Redis (overrides the database cleanup)."""


def ruby_b64(text: str | None) -> str | None:
    """Base64 as Judge0 sends it: 60-column lines, each ending in a newline."""
    if text is None:
        return None
    raw = base64.b64encode(text.encode()).decode()
    return "".join(raw[i : i + 60] + "\n" for i in range(0, len(raw), 60))


class FakeJudge0:
    """Scripted Judge0: each submission's outcome comes from ``outcome(stdin)``."""

    def __init__(
        self,
        outcome: Callable[[str], dict[str, Any]],
        *,
        pending_polls: int = 1,
        create_failures: int = 0,
        token: str | None = "secret-token",
    ) -> None:
        self.outcome = outcome
        self.pending_polls = pending_polls
        self.create_failures = create_failures
        self.token = token
        self.submissions: dict[str, dict[str, Any]] = {}
        self.polls: dict[str, int] = {}
        self.batches: list[int] = []
        self.requests: list[httpx.Request] = []

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.token is not None and request.headers.get("X-Auth-Token") != self.token:
            return httpx.Response(401, json={"error": "authentication failed"})
        if request.url.path == "/submissions/batch" and request.method == "POST":
            if self.create_failures > 0:
                self.create_failures -= 1
                return httpx.Response(503, json={"error": "queue is full"})
            assert request.url.params["base64_encoded"] == "true"
            items = json.loads(request.content)["submissions"]
            if len(items) > 20:
                return httpx.Response(422, json={"error": "number of submissions is too big"})
            self.batches.append(len(items))
            answer = []
            for item in items:
                if item["language_id"] == 9999:
                    answer.append({"language_id": ["language with id 9999 doesn't exist"]})
                    continue
                token = str(uuid.uuid4())
                self.submissions[token] = item
                self.polls[token] = 0
                answer.append({"token": token})
            return httpx.Response(201, json=answer)
        if request.url.path == "/submissions/batch" and request.method == "GET":
            tokens = request.url.params["tokens"].split(",")
            assert request.url.params["base64_encoded"] == "true"
            out = []
            for token in tokens:
                self.polls[token] += 1
                if self.polls[token] <= self.pending_polls:
                    status = 1 if self.polls[token] == 1 else 2
                    out.append({"token": token, "status": {"id": status, "description": ""}})
                    continue
                out.append(self.finished(token))
            return httpx.Response(200, json={"submissions": out})
        return httpx.Response(404, json={"error": "not found"})

    def finished(self, token: str) -> dict[str, Any]:
        """A finished submission as GET answers it with base64_encoded=true."""
        stdin = base64.b64decode(self.submissions[token]["stdin"]).decode()
        result = {
            "token": token,
            "stdout": None,
            "stderr": None,
            "compile_output": None,
            "message": None,
            "time": "0.012",
            "memory": 3300,
            "exit_code": 0,
            "exit_signal": None,
            **self.outcome(stdin),
        }
        sid = result.pop("status_id")
        result["status"] = {"id": sid, "description": DESCRIPTIONS[sid]}
        for field in ("stdout", "stderr", "compile_output", "message"):
            result[field] = ruby_b64(result[field])
        return result

    def callback_body(self, token: str) -> dict[str, Any]:
        """The body of Judge0's callback PUT: the documented fields, always base64-encoded."""
        finished = self.finished(token)
        fields = ("stdout", "time", "memory", "stderr", "token", "compile_output", "message")
        return {**{name: finished[name] for name in fields}, "status": finished["status"]}


def make_runner(fake: FakeJudge0, **kwargs: Any) -> Judge0Runner:
    kwargs.setdefault("poll_initial_s", 0.001)
    kwargs.setdefault("poll_max_s", 0.005)
    return Judge0Runner(
        "http://judge0.test", token="secret-token", transport=fake.transport(), **kwargs
    )


def echo_sum(stdin: str) -> dict[str, Any]:
    a, b = map(int, stdin.split())
    return {"status_id": 3, "stdout": f"{a + b}\n"}


async def test_batches_of_twenty_base64_and_auth_header() -> None:
    fake = FakeJudge0(echo_sum)
    runner = make_runner(fake)
    tests = [
        TestCase(name=f"t{i}", stdin=f"{i} {i}\n", expected_output=f"{2 * i}\n", points=1)
        for i in range(45)
    ]
    tests[7] = TestCase(name="t7", stdin="7 7\n", expected_output="15\n", points=1, hidden=True)
    result = await runner.judge("python", "print(sum(map(int, input().split())))", tests, LIMITS)
    assert fake.batches == [BATCH_SIZE, BATCH_SIZE, 5]
    assert result.verdict == "wrong_answer"
    assert result.score == 44 and result.max_score == 45
    assert result.tests[7].verdict == "wrong_answer" and result.tests[7].hidden
    assert result.executor == "judge0"
    first = json.loads(fake.requests[0].content)["submissions"][0]
    assert base64.b64decode(first["source_code"]).decode().startswith("print(sum(")
    assert first["language_id"] == 71
    assert first["enable_network"] is False
    assert first["memory_limit"] == 64 * 1024
    assert "expected_output" not in first
    assert all(r.headers["X-Auth-Token"] == "secret-token" for r in fake.requests)


async def test_polls_with_backoff_until_every_submission_finishes() -> None:
    fake = FakeJudge0(echo_sum, pending_polls=3)
    runner = make_runner(fake)
    seen: list[tuple[int, int]] = []

    async def progress(done: int, total: int) -> None:
        seen.append((done, total))

    tests = [TestCase(name="a", stdin="1 2\n", expected_output="3\n", points=1)] * 3
    result = await runner.judge("c", "int main(){}", tests, LIMITS, progress=progress)
    assert result.verdict == "accepted"
    gets = [r for r in fake.requests if r.method == "GET"]
    assert len(gets) == 4  # In Queue, Processing, Processing, done
    assert "status" in gets[0].url.params["fields"]
    assert seen == [(3, 3)]
    assert json.loads(fake.requests[0].content)["submissions"][0]["language_id"] == 50


async def test_a_batch_that_never_finishes_is_an_infrastructure_fault() -> None:
    fake = FakeJudge0(echo_sum, pending_polls=10**6)
    runner = make_runner(fake, max_wait_s=0.05)
    with pytest.raises(RunnerUnavailable):
        await runner.judge("python", "x", [TestCase(name="a", stdin="1 1\n")], LIMITS)


async def test_queue_full_is_retried_then_succeeds() -> None:
    fake = FakeJudge0(echo_sum, create_failures=2)
    runner = make_runner(fake, create_attempts=3)
    tests = [TestCase(name="a", stdin="1 2\n", expected_output="3\n", points=1)]
    result = await runner.judge("python", "x", tests, LIMITS)
    assert result.verdict == "accepted"
    posts = [r for r in fake.requests if r.method == "POST"]
    assert len(posts) == 3


async def test_queue_full_that_persists_means_retry_later_never_wrong_answer() -> None:
    fake = FakeJudge0(echo_sum, create_failures=100)
    runner = make_runner(fake, create_attempts=2)
    with pytest.raises(RunnerUnavailable, match="queue is full"):
        await runner.judge("python", "x", [TestCase(name="a", stdin="1 2\n")], LIMITS)


@pytest.mark.parametrize(
    "error", [httpx.ReadTimeout("slow"), httpx.ConnectError("refused"), httpx.ConnectTimeout("x")]
)
async def test_timeouts_and_connection_errors_are_infrastructure_faults(error: Exception) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise error

    runner = Judge0Runner(
        "http://judge0.test", transport=httpx.MockTransport(handler), poll_initial_s=0.001
    )
    with pytest.raises(RunnerUnavailable):
        await runner.judge("python", "x", [TestCase(name="a")], LIMITS)


async def test_bad_credentials_and_rejected_submissions_are_runner_errors() -> None:
    fake = FakeJudge0(echo_sum)
    wrong = Judge0Runner("http://judge0.test", token="nope", transport=fake.transport())
    with pytest.raises(RunnerError, match="credentials"):
        await wrong.judge("python", "x", [TestCase(name="a")], LIMITS)
    unknown = make_runner(fake, language_ids={"python": 9999})
    with pytest.raises(RunnerError, match="rejected a submission"):
        await unknown.judge("python", "x", [TestCase(name="a")], LIMITS)


async def test_language_id_map_is_configurable() -> None:
    fake = FakeJudge0(echo_sum)
    runner = make_runner(fake, language_ids={"python": 92, "java": 91})
    await runner.judge("python", "x", [TestCase(name="a", stdin="1 1\n")], LIMITS)
    await runner.judge("javascript", "x", [TestCase(name="a", stdin="1 1\n")], LIMITS)
    ids = [
        json.loads(r.content)["submissions"][0]["language_id"]
        for r in fake.requests
        if r.method == "POST"
    ]
    assert ids == [92, 63]


async def test_language_id_override_from_settings_reaches_the_created_submissions() -> None:
    settings = load_settings(
        {
            "SAFEXAM_CODE_RUNNER": "judge0",
            "SAFEXAM_JUDGE0_URL": "http://judge0.test",
            "SAFEXAM_JUDGE0_TOKEN": "secret-token",
            "SAFEXAM_JUDGE0_LANGUAGE_IDS": "python=92,cpp=76",
        }
    )
    fake = FakeJudge0(echo_sum)
    runner = build_runner(settings, transport=fake.transport())
    assert isinstance(runner, Judge0Runner)
    runner.poll_initial_s = runner.poll_max_s = 0.001
    for language in ("python", "cpp", "c"):
        await runner.judge(language, "x", [TestCase(name="a", stdin="1 1\n")], LIMITS)
    ids = [
        json.loads(r.content)["submissions"][0]["language_id"]
        for r in fake.requests
        if r.method == "POST"
    ]
    assert ids == [92, 76, 50]  # overridden, overridden, the built-in id of C


STATUS_CASES: dict[int, tuple[dict[str, Any], str]] = {
    3: ({"stdout": "3\n"}, "accepted"),
    4: ({"stdout": "4\n"}, "wrong_answer"),
    5: ({"time": "1.001"}, "time_limit"),
    6: ({"compile_output": "main.c:1: error: expected ';'", "exit_code": None}, "compile_error"),
    7: ({"exit_signal": 11, "exit_code": None}, "runtime_error"),
    8: ({"exit_signal": 25, "exit_code": None}, "output_limit"),
    9: ({"exit_signal": 8, "exit_code": None}, "runtime_error"),
    10: ({"exit_signal": 6, "exit_code": None}, "runtime_error"),
    11: ({"exit_code": 1, "stderr": "Traceback ...\nZeroDivisionError"}, "runtime_error"),
    12: ({"exit_code": None, "message": "killed"}, "runtime_error"),
    13: ({"message": "No such file or directory @ rb_sysopen"}, "internal_error"),
    14: ({"message": "Exec format error"}, "internal_error"),
}


@pytest.mark.parametrize("status_id", sorted(STATUS_CASES))
async def test_every_final_status_id_maps_to_a_verdict(status_id: int) -> None:
    extra, verdict = STATUS_CASES[status_id]
    fake = FakeJudge0(lambda _stdin: {"status_id": status_id, **extra})
    runner = make_runner(fake)
    result = await runner.judge(
        "c",
        "int main(){}",
        [TestCase(name="a", stdin="1 2\n", expected_output="3\n", points=2)],
        LIMITS,
    )
    assert STATUS_VERDICTS[status_id] == (verdict if status_id != 3 else "accepted")
    assert result.tests[0].verdict == verdict
    assert result.verdict == verdict
    assert result.score == (2 if verdict == "accepted" else 0)
    if status_id == 6:
        assert "expected ';'" in result.compile_output


async def test_statuses_one_and_two_are_never_final() -> None:
    fake = FakeJudge0(echo_sum, pending_polls=2)
    runner = make_runner(fake)
    result = await runner.judge(
        "c", "x", [TestCase(name="a", stdin="2 2\n", expected_output="4")], LIMITS
    )
    assert result.verdict == "accepted"


async def test_runtime_error_near_the_memory_cap_is_a_memory_limit() -> None:
    fake = FakeJudge0(lambda _s: {"status_id": 7, "memory": 64 * 1024, "exit_signal": 11})
    result = await make_runner(fake).judge("c", "x", [TestCase(name="a")], LIMITS)
    assert result.verdict == "memory_limit"
    java = FakeJudge0(
        lambda _s: {
            "status_id": 11,
            "memory": 1000,
            "stderr": "java.lang.OutOfMemoryError: Java heap space",
        }
    )
    result = await make_runner(java).judge("java", "x", [TestCase(name="a")], LIMITS)
    assert result.verdict == "memory_limit"


async def test_output_over_the_cap_is_an_output_limit_and_bad_utf8_is_kept_safe() -> None:
    fake = FakeJudge0(lambda _s: {"status_id": 3, "stdout": "y" * 5000})
    result = await make_runner(fake).judge(
        "python", "x", [TestCase(name="a", expected_output="y")], LIMITS
    )
    assert result.verdict == "output_limit"


# --- callbacks -----------------------------------------------------------------

SECRET = "k" * 32


def test_callback_token_round_trip() -> None:
    sid = str(uuid.uuid4())
    token = sign_callback_token(SECRET, sid, 7)
    assert verify_callback_token(SECRET, token) == (sid, 7)


@pytest.mark.parametrize(
    "tamper",
    [
        lambda t: t[:-2] + ("AA" if not t.endswith("AA") else "BB"),  # forged signature
        lambda t: t.replace(".7.", ".8.", 1),  # another test of the same submission
        lambda t: str(uuid.uuid4()) + t[36:],  # another submission
        lambda t: t.rsplit(".", 1)[0],  # signature stripped
        lambda t: "garbage",
    ],
)
def test_callback_with_a_bad_signature_is_rejected(tamper: Callable[[str], str]) -> None:
    token = sign_callback_token(SECRET, str(uuid.uuid4()), 7)
    with pytest.raises(InvalidCallback):
        verify_callback_token(SECRET, tamper(token))
    with pytest.raises(InvalidCallback):
        verify_callback_token("another-secret-key-xxxxxxxxxxxxxx", token)


def test_callback_body_is_decoded_from_base64() -> None:
    body = {
        "stdout": ruby_b64("hello\n" * 20),
        "time": "0.001",
        "memory": 380,
        "stderr": None,
        "token": "2e02a2ad-0f38-4c6f-a5b4-5a5d3e7aa8f1",
        "compile_output": None,
        "message": None,
        "status": {"id": 3, "description": "Accepted"},
    }
    result = parse_callback(json.dumps(body).encode())
    assert result.stdout == "hello\n" * 20
    assert result.status.id == 3
    with pytest.raises(InvalidCallback):
        parse_callback(b"not json")
    with pytest.raises(InvalidCallback):
        parse_callback(json.dumps({**body, "stdout": "!!!not base64!!!"}).encode())


async def test_submit_with_callbacks_puts_a_signed_url_on_each_submission() -> None:
    fake = FakeJudge0(echo_sum)
    runner = make_runner(fake)
    sid = str(uuid.uuid4())
    tests = [TestCase(name=f"t{i}", stdin="1 1\n") for i in range(25)]
    tokens = await runner.submit_with_callbacks(
        "python",
        "x",
        tests,
        LIMITS,
        lambda i: (
            f"https://exam.test/api/v1/judge0/callbacks/{sign_callback_token(SECRET, sid, i)}"
        ),
    )
    assert len(tokens) == 25 and fake.batches == [20, 5]
    urls = list(
        itertools.chain.from_iterable(
            (s["callback_url"] for s in json.loads(r.content)["submissions"])
            for r in fake.requests
            if r.method == "POST"
        )
    )
    for index, url in enumerate(urls):
        assert verify_callback_token(SECRET, url.rsplit("/", 1)[1]) == (sid, index)
    assert not [r for r in fake.requests if r.method == "GET"]  # no polling in callback mode
