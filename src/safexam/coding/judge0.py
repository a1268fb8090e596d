"""The Judge0 CE runner: batches over its REST API, polling with backoff or signed callbacks.

Judge0 compiles per submission, so one of our tests is one Judge0
submission; a batch holds at most 20. We never send ``expected_output``:
Judge0 only knows exact comparison, ours has four modes, so status 3
("Accepted") means "ran cleanly" and we compare stdout ourselves.

Infrastructure faults (503 "queue is full", timeouts, connection errors, a
batch that never finishes) raise :class:`RunnerUnavailable` so the job is
retried later; nothing Judge0 fails to do is ever recorded as a wrong answer.

Callback mode: each submission carries a ``callback_url`` ending in a token
that names our submission and test, carries an expiry and is signed with
HMAC-SHA256 under the server's secret key; the endpoint that receives
Judge0's PUT verifies it before believing a single byte of the body.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import msgspec
import structlog

from safexam.coding.execution import (
    Judgement,
    Limits,
    Progress,
    RunnerError,
    RunnerUnavailable,
    TestCase,
    TestResult,
    Verdict,
    clean_text,
    grade_output,
    overall_verdict,
    score_of,
)
from safexam.coding.languages import Language, get_language
from safexam.core.http import API_PREFIX

__all__ = [
    "BATCH_SIZE",
    "CALLBACK_PATH",
    "CALLBACK_ROUTE",
    "CALLBACK_TOKEN_TTL",
    "STATUS_VERDICTS",
    "CallbackConfig",
    "InvalidCallback",
    "Judge0Result",
    "Judge0Runner",
    "clean_compile_output",
    "fold_judgement",
    "parse_callback",
    "sign_callback_token",
    "test_result_from_judge0",
    "verify_callback_token",
]

log = structlog.get_logger(__name__)

BATCH_SIZE = 20
_FIELDS = "token,stdout,stderr,compile_output,message,status,time,memory,exit_code,exit_signal"

# Judge0 CE status ids. 3 means "ran and exited 0" (we compare ourselves);
# 1 and 2 are not final. There is no memory status: a heap exhaustion shows up
# as a signal or a non-zero exit, told apart by the memory used.
STATUS_VERDICTS: dict[int, Verdict] = {
    3: "accepted",
    4: "wrong_answer",
    5: "time_limit",
    6: "compile_error",
    7: "runtime_error",  # SIGSEGV
    8: "output_limit",  # SIGXFSZ: file size limit
    9: "runtime_error",  # SIGFPE
    10: "runtime_error",  # SIGABRT
    11: "runtime_error",  # NZEC
    12: "runtime_error",  # other
    13: "internal_error",
    14: "internal_error",  # Exec Format Error: a broken language setup, not the student's fault
}
_PENDING = {1, 2}


#: Where Judge0 PUTs a result, below the public base URL; the token follows.
#: (The route is declared inside the API's router, which adds the prefix.)
CALLBACK_ROUTE = "/judge0/callbacks"
CALLBACK_PATH = f"{API_PREFIX}{CALLBACK_ROUTE}"

#: How long a callback URL stays valid. Well beyond the callback wait and the
#: fallback poll that follows it, so no honest callback is refused; bounded, so
#: a URL that leaks (Judge0's logs, a proxy's) stops being accepted at all.
CALLBACK_TOKEN_TTL = timedelta(hours=2)


class InvalidCallback(Exception):
    """A callback token that we did not sign, that expired, or a body we cannot read."""

    def __init__(self, message: str, *, code: str = "invalid_callback") -> None:
        super().__init__(message)
        self.code = code


class Judge0Status(msgspec.Struct):
    id: int
    description: str = ""


class Judge0Result(msgspec.Struct, kw_only=True):
    """One submission as Judge0 reports it (text fields already base64-decoded)."""

    token: str | None = None
    status: Judge0Status
    stdout: str | None = None
    stderr: str | None = None
    compile_output: str | None = None
    message: str | None = None
    time: str | float | None = None
    memory: int | float | None = None
    exit_code: int | None = None
    exit_signal: int | None = None


_TEXT_FIELDS = ("stdout", "stderr", "compile_output", "message")


def _b64(text: str) -> str:
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


def _unb64(value: Any) -> str | None:
    if value is None:
        return None
    # Judge0 (Ruby) wraps base64 at 60 columns: drop the line breaks, then decode
    # strictly, so that text which is not base64 is an error rather than
    # quietly decoded to whatever its base64-looking characters spell.
    raw = base64.b64decode("".join(str(value).split()), validate=True)
    return raw.decode("utf-8", errors="replace")


def _decode_result(item: Mapping[str, Any]) -> Judge0Result:
    data = dict(item)
    for name in _TEXT_FIELDS:
        try:
            data[name] = _unb64(data.get(name))
        except ValueError:
            raise RunnerError(f"Judge0 sent a {name} that is not base64") from None
    try:
        return msgspec.convert(data, Judge0Result)
    except msgspec.ValidationError as exc:
        raise RunnerError(f"unexpected Judge0 submission shape: {exc}") from None


def _json_body(response: httpx.Response) -> Any:
    # A 200 that is not JSON (a proxy's page in front of Judge0) is an unexpected
    # answer like any other: as a bare ValueError it failed the fallback poll's
    # job and left its submission running for good.
    try:
        return response.json()
    except ValueError:
        raise RunnerError(
            f"Judge0 answered with something that is not JSON: {response.text[:200]!r}"
        ) from None


def parse_callback(body: bytes) -> Judge0Result:
    """Decode the body of Judge0's callback PUT (always base64-encoded)."""
    try:
        item = msgspec.json.decode(body, type=dict[str, Any])
    except msgspec.DecodeError as exc:
        raise InvalidCallback(f"callback body is not JSON: {exc}") from None
    try:
        return _decode_result(item)
    except RunnerError as exc:
        raise InvalidCallback(str(exc)) from None


def _signature(secret: str, payload: str) -> str:
    mac = hmac.new(secret.encode(), f"judge0-callback:{payload}".encode(), hashlib.sha256)
    return base64.urlsafe_b64encode(mac.digest()).decode().rstrip("=")


def sign_callback_token(
    secret: str, submission_id: str, index: int, *, expires_at: float | None = None
) -> str:
    """A URL-safe token naming (submission, test index) until ``expires_at``, signed.

    ``expires_at`` is a Unix time; by default :data:`CALLBACK_TOKEN_TTL` from now.
    """
    if expires_at is None:
        expires_at = time.time() + CALLBACK_TOKEN_TTL.total_seconds()
    payload = f"{submission_id}.{index}.{int(expires_at)}"
    return f"{payload}.{_signature(secret, payload)}"


def verify_callback_token(secret: str, token: str, *, now: float | None = None) -> tuple[str, int]:
    """(submission id, test index) of an unexpired token we signed; :class:`InvalidCallback` else.

    The signature is checked first, so an expiry is only ever reported for a
    token we really issued.
    """
    parts = token.split(".")
    if len(parts) != 4 or not parts[1].isdigit() or not parts[2].isdigit():
        raise InvalidCallback("malformed callback token")
    submission_id, index, expires_at, signature = parts
    expected = _signature(secret, f"{submission_id}.{index}.{expires_at}")
    if not hmac.compare_digest(expected.encode(), signature.encode()):
        raise InvalidCallback("bad callback signature")
    if int(expires_at) < (time.time() if now is None else now):
        raise InvalidCallback("callback token expired", code="callback_expired")
    return submission_id, int(index)


@dataclass(frozen=True)
class CallbackConfig:
    """Callback mode: where Judge0 reaches our API, the signing key, how long to wait."""

    base_url: str
    secret_key: str
    # After this, the batch is polled: Judge0 retries a callback only on
    # connection errors, so one lost PUT (a 5xx, a restart) would otherwise be lost.
    wait: timedelta = timedelta(seconds=60)
    ttl: timedelta = CALLBACK_TOKEN_TTL

    def url(self, submission_id: str, index: int) -> str:
        """The signed URL Judge0 PUTs test ``index`` of ``submission_id`` to."""
        expires_at = time.time() + self.ttl.total_seconds()
        token = sign_callback_token(self.secret_key, submission_id, index, expires_at=expires_at)
        return f"{self.base_url.rstrip('/')}{CALLBACK_PATH}/{token}"


def _seconds_to_ms(value: str | float | None) -> int:
    if value is None:
        return 0
    try:
        return int(float(value) * 1000)
    except ValueError:
        return 0


def test_result_from_judge0(
    test: TestCase,
    result: Judge0Result,
    limits: Limits,
    comparison: str,
    language: Language,
) -> TestResult:
    """Our verdict for one finished Judge0 submission."""
    status = result.status.id
    verdict: Verdict = STATUS_VERDICTS.get(status, "internal_error")
    stdout = result.stdout or ""
    stderr = result.stderr or ""
    memory_kb = int(result.memory) if result.memory is not None else None
    if len(stdout.encode("utf-8")) > limits.output_kb * 1024:
        verdict = "output_limit"
    elif status == 3:
        verdict = grade_output(test, stdout, comparison)
    elif verdict == "runtime_error":
        near_cap = memory_kb is not None and memory_kb >= limits.memory_mb * 1024 * 0.8
        if near_cap or any(marker in stderr for marker in language.memory_markers):
            verdict = "memory_limit"
    return TestResult(
        name=test.name,
        hidden=test.hidden,
        verdict=verdict,
        time_ms=_seconds_to_ms(result.time),
        wall_ms=0,
        memory_kb=memory_kb,
        exit_code=result.exit_code,
        signal=result.exit_signal,
        stdout=clean_text(stdout.encode("utf-8")),
        stderr=clean_text((stderr or result.message or "").encode("utf-8")),
        points=test.points if verdict == "accepted" else 0.0,
        max_points=test.points,
    )


def fold_judgement(
    results: list[TestResult],
    compile_outputs: Sequence[str | None],
    tests: Sequence[TestCase],
) -> Judgement:
    """One judgement from Judge0's per-test results; the compile output is shown once."""
    compile_output = next((c for c in compile_outputs if c), "") or ""
    compiled = all(r.verdict != "compile_error" for r in results)
    return Judgement(
        verdict=overall_verdict(results) if compiled else "compile_error",
        compile_output=clean_compile_output(compile_output),
        tests=results,
        score=score_of(results),
        max_score=float(sum(t.points for t in tests)),
        executor=Judge0Runner.name,
    )


def clean_compile_output(text: str | None) -> str:
    """Compiler output as we keep it: bounded, valid UTF-8, no NUL."""
    return clean_text((text or "").encode("utf-8"), 64 * 1024)


class Judge0Runner:
    """``CodeRunner`` on a Judge0 CE server."""

    name = "judge0"

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        language_ids: Mapping[str, int] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        request_timeout_s: float = 10.0,
        create_attempts: int = 3,
        poll_initial_s: float = 0.2,
        poll_max_s: float = 2.0,
        max_wait_s: float = 300.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.language_ids = dict(language_ids or {})
        self.transport = transport
        self.request_timeout_s = request_timeout_s
        self.create_attempts = create_attempts
        self.poll_initial_s = poll_initial_s
        self.poll_max_s = poll_max_s
        self.max_wait_s = max_wait_s

    def language_id(self, language: str) -> int:
        """The Judge0 language id: the configured map first, then the language's default."""
        return self.language_ids.get(language, get_language(language).judge0_id)

    def _client(self) -> httpx.AsyncClient:
        headers = {"Accept": "application/json"}
        if self.token:
            headers["X-Auth-Token"] = self.token
        return httpx.AsyncClient(
            base_url=self.base_url,
            headers=headers,
            timeout=self.request_timeout_s,
            transport=self.transport,
        )

    def submission_payload(
        self,
        language: str,
        program: str,
        test: TestCase,
        limits: Limits,
        callback_url: str | None = None,
    ) -> dict[str, Any]:
        """One Judge0 submission for one test (text fields base64-encoded)."""
        lang = get_language(language)
        payload: dict[str, Any] = {
            "source_code": _b64(program),
            "language_id": self.language_id(language),
            "stdin": _b64(test.stdin),
            "cpu_time_limit": round(limits.cpu_time_s * lang.time_multiplier, 3),
            "wall_time_limit": round(limits.wall_time_s * lang.time_multiplier, 3),
            "memory_limit": limits.memory_mb * 1024,
            "max_processes_and_or_threads": limits.processes + lang.extra_processes,
            "max_file_size": limits.file_size_kb,
            "enable_network": False,
            "redirect_stderr_to_stdout": False,
        }
        if callback_url is not None:
            payload["callback_url"] = callback_url
        return payload

    async def _request(
        self, client: httpx.AsyncClient, method: str, url: str, **kwargs: Any
    ) -> httpx.Response:
        try:
            response = await client.request(method, url, **kwargs)
        except httpx.TimeoutException as exc:
            raise RunnerUnavailable(f"Judge0 timed out: {exc!r}") from exc
        except httpx.TransportError as exc:
            raise RunnerUnavailable(f"Judge0 unreachable: {exc!r}") from exc
        if response.status_code == 503:
            retry_after = response.headers.get("Retry-After")
            raise RunnerUnavailable(
                "Judge0 queue is full",
                retry_after=float(retry_after) if retry_after and retry_after.isdigit() else None,
            )
        if response.status_code in (401, 403):
            raise RunnerError(f"Judge0 refused our credentials ({response.status_code})")
        if response.status_code >= 500:
            raise RunnerUnavailable(f"Judge0 answered {response.status_code}")
        if response.status_code >= 400:
            raise RunnerError(
                f"Judge0 rejected the request ({response.status_code}): {response.text[:500]}"
            )
        return response

    async def create_batch(
        self, client: httpx.AsyncClient, submissions: Sequence[dict[str, Any]]
    ) -> list[str]:
        """POST one batch (<= 20), retrying 503/timeouts a few times; returns the tokens."""
        if len(submissions) > BATCH_SIZE:
            raise ValueError(f"a Judge0 batch holds at most {BATCH_SIZE} submissions")
        delay = self.poll_initial_s
        for attempt in range(1, self.create_attempts + 1):
            try:
                response = await self._request(
                    client,
                    "POST",
                    "/submissions/batch",
                    params={"base64_encoded": "true"},
                    json={"submissions": list(submissions)},
                )
                break
            except RunnerUnavailable as exc:
                if attempt == self.create_attempts:
                    raise
                log.warning("judge0_create_retry", attempt=attempt, error=str(exc))
                await asyncio.sleep(exc.retry_after if exc.retry_after is not None else delay)
                delay = min(delay * 2, self.poll_max_s)
        items = _json_body(response)
        if not isinstance(items, list) or len(items) != len(submissions):
            raise RunnerError(f"unexpected Judge0 batch answer: {str(items)[:500]}")
        tokens: list[str] = []
        for item in items:
            token = item.get("token") if isinstance(item, dict) else None
            if not isinstance(token, str):
                raise RunnerError(f"Judge0 rejected a submission: {item}")
            tokens.append(token)
        return tokens

    async def _poll(
        self,
        client: httpx.AsyncClient,
        tokens: Sequence[str],
        progress: Progress | None,
    ) -> dict[str, Judge0Result]:
        done: dict[str, Judge0Result] = {}
        delay = self.poll_initial_s
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.max_wait_s
        reported = 0
        while len(done) < len(tokens):
            pending = [t for t in tokens if t not in done]
            for start in range(0, len(pending), BATCH_SIZE):
                chunk = pending[start : start + BATCH_SIZE]
                response = await self._request(
                    client,
                    "GET",
                    "/submissions/batch",
                    params={"tokens": ",".join(chunk), "base64_encoded": "true", "fields": _FIELDS},
                )
                body = _json_body(response)
                items = body.get("submissions") if isinstance(body, dict) else None
                if not isinstance(items, list):
                    raise RunnerError(f"unexpected Judge0 poll answer: {str(body)[:500]}")
                for token, item in zip(chunk, items, strict=False):
                    if not isinstance(item, dict):
                        continue
                    result = _decode_result(item)
                    if result.status.id not in _PENDING:
                        done[result.token or token] = result
            if progress is not None and len(done) != reported:
                reported = len(done)
                await progress(reported, len(tokens))
            if len(done) >= len(tokens):
                break
            if loop.time() + delay > deadline:
                raise RunnerUnavailable(f"Judge0 did not finish {len(pending)} submissions in time")
            await asyncio.sleep(delay)
            delay = min(delay * 1.5, self.poll_max_s)
        return done

    async def judge(
        self,
        language: str,
        program: str,
        tests: Sequence[TestCase],
        limits: Limits,
        comparison: str = "trimmed",
        progress: Progress | None = None,
    ) -> Judgement:
        """Submit one Judge0 submission per test in batches of 20 and poll until all finish."""
        lang = get_language(language)
        payloads = [self.submission_payload(language, program, t, limits) for t in tests]
        async with self._client() as client:
            tokens: list[str] = []
            for start in range(0, len(payloads), BATCH_SIZE):
                tokens += await self.create_batch(client, payloads[start : start + BATCH_SIZE])
            finished = await self._poll(client, tokens, progress)
        results = [
            test_result_from_judge0(test, finished[token], limits, comparison, lang)
            for test, token in zip(tests, tokens, strict=True)
        ]
        return self.judgement(results, [finished[t] for t in tokens], tests)

    def judgement(
        self,
        results: list[TestResult],
        raw: Sequence[Judge0Result],
        tests: Sequence[TestCase],
    ) -> Judgement:
        """Fold per-test results into one judgement (compile errors fold into one message)."""
        return fold_judgement(results, [r.compile_output for r in raw], tests)

    async def collect(
        self, tokens: Sequence[str], progress: Progress | None = None
    ) -> dict[str, Judge0Result]:
        """Poll these submissions with backoff until all finish (callback mode's fallback)."""
        async with self._client() as client:
            return await self._poll(client, tokens, progress)

    async def submit_with_callbacks(
        self,
        language: str,
        program: str,
        tests: Sequence[TestCase],
        limits: Limits,
        callback_url: Callable[[int], str],
    ) -> list[str]:
        """Create the submissions with a per-test callback URL; Judge0 PUTs each result there."""
        payloads = [
            self.submission_payload(language, program, t, limits, callback_url=callback_url(i))
            for i, t in enumerate(tests)
        ]
        tokens: list[str] = []
        async with self._client() as client:
            for start in range(0, len(payloads), BATCH_SIZE):
                tokens += await self.create_batch(client, payloads[start : start + BATCH_SIZE])
        return tokens
