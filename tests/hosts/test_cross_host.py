"""SafeExam across hosts: API replicas, worker hosts and a database host on separate networks.

Each host is a network namespace made by the test (``tests/hosts/netns.py``):
a Caddy proxy, two API hosts, two worker hosts and a database host with its
own PostgreSQL and Redis. The test stands on the same private bridge as a
student's browser would, and cuts hosts off by setting their switch port
down. Needs root (CI has it); skipped only without root or ``ip``.

The tests run in file order on one cluster: worker host 1 joins only for the
cut-off test, so that what happens before it is the work of host 2 alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import redis as redis_sync
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from safexam.auth.models import User
from tests.factories import PASSWORD, coding_body, enroll, make_exam, make_question, make_user
from tests.hosts.conftest import STALE_AFTER_SECONDS
from tests.hosts.netns import Cluster, missing

pytestmark = [
    pytest.mark.skipif(missing() is not None, reason=str(missing())),
    # The first test also starts the cluster (about 20 s on a busy 2-core machine).
    pytest.mark.timeout(240),
]

Maker = async_sessionmaker[AsyncSession]
#: From cutting a judging worker host off to every submission judged: the
#: heartbeat going stale, the sweep, and the re-judging on the other host.
RECOVERY_BOUND_SECONDS = 20
#: From cutting an API host off to the proxy sending it nothing more: its
#: health check every second, with a three-second timeout, and some slack.
DETECTION_SECONDS = 5
ADD_SOURCE = "def add(a, b):\n    return a + b\n"


def slow_source(seconds: float) -> str:
    """The add function, taking ``seconds`` per test: long enough to be caught mid-judging."""
    return f"import time\ndef add(a, b):\n    time.sleep({seconds})\n    return a + b\n"


def add_tests(count: int) -> list[dict[str, Any]]:
    return [
        {"name": f"t{i}", "stdin": f"{i} {i}\n", "expected_output": f"{2 * i}\n", "points": 1}
        for i in range(count)
    ]


# --------------------------------------------------------------------- browsers


def browser() -> httpx.AsyncClient:
    """A student's or educator's browser on the test's own address.

    The tests talk to each API host by its address as well as to the proxy;
    a browser would send the sign-in cookie to one site only, so each
    answer's cookies are kept host-less, for every host of the deployment.
    """
    client = httpx.AsyncClient(timeout=10, trust_env=False)

    async def share_cookies(_: httpx.Response) -> None:
        values = {cookie.name: cookie.value for cookie in client.cookies.jar}
        client.cookies.clear()
        for name, value in values.items():
            client.cookies.set(name, value)

    client.event_hooks["response"].append(share_cookies)
    return client


async def sign_in(client: httpx.AsyncClient, base: str, email: str) -> None:
    for step in ("csrf", "login", "csrf"):
        if step == "login":
            answer = await client.post(
                f"{base}/api/v1/auth/login", json={"email": email, "password": PASSWORD}
            )
        else:
            answer = await client.get(f"{base}/api/v1/auth/csrf")
        assert answer.status_code == 200, f"{step} through {base}: {answer.text}"
        if step == "csrf":
            client.headers["X-CSRF-Token"] = answer.json()["csrf_token"]


class Stream:
    """An SSE stream read in the background; ``wait_for`` a matching event."""

    def __init__(self, client: httpx.AsyncClient, url: str) -> None:
        self.url = url
        self.events: list[dict[str, Any]] = []
        self.status: int | None = None
        self._task = asyncio.create_task(self._read(client))

    async def _read(self, client: httpx.AsyncClient) -> None:
        timeout = httpx.Timeout(10, read=None)
        headers = {"Accept": "text/event-stream"}
        async with client.stream("GET", self.url, headers=headers, timeout=timeout) as answer:
            self.status = answer.status_code
            current: dict[str, Any] = {}
            async for line in answer.aiter_lines():
                if line.startswith("event:"):
                    current["event"] = line.split(":", 1)[1].strip()
                elif line.startswith("data:"):
                    current["data"] = json.loads(line.split(":", 1)[1])
                elif not line and current:
                    self.events.append(current)
                    current = {}

    async def wait_for(
        self, what: str, match: Callable[[dict[str, Any]], bool], timeout: float = 20
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for event in self.events:
                if match(event):
                    return event
            if self._task.done():
                break
            await asyncio.sleep(0.05)
        raise AssertionError(
            f"{what}: no such event on {self.url} within {timeout:.0f} s"
            f" (HTTP {self.status}); received: {self.events[-10:]}"
        )

    async def close(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._task


@contextlib.asynccontextmanager
async def streaming(client: httpx.AsyncClient, url: str) -> AsyncIterator[Stream]:
    stream = Stream(client, url)
    try:
        yield stream
    finally:
        await stream.close()


def done_by(hosts: Cluster, host: int, pool: str, job_id: uuid.UUID | str) -> int:
    """How many times worker host ``host``'s ``pool`` logged finishing job ``job_id``."""
    proc = hosts.procs.get(f"work{host}-{pool}")
    if proc is None:
        return 0
    return sum(1 for e in proc.events("job_done") if e.get("job_id") == str(job_id))


async def people(maker: Maker, students: int) -> tuple[User, list[User]]:
    async with maker() as db:
        educator = await make_user(db, "educator")
        return educator, [await make_user(db, "student") for _ in range(students)]


async def scalar(maker: Maker, sql: str, **params: Any) -> Any:
    async with maker() as db:
        return (await db.execute(text(sql), params)).scalar()


# --------------------------------------------------------------------- sessions


async def test_a_students_session_works_through_either_api_host(
    hosts: Cluster, hosts_db: Maker
) -> None:
    educator, [student] = await people(hosts_db, 1)
    async with hosts_db() as db:
        questions = [await make_question(db, educator, "mcq_single") for _ in range(4)]
        exam = await make_exam(db, educator, questions)
        await enroll(db, exam, student)
    api1, api2 = hosts.api_url("api1"), hosts.api_url("api2")
    async with browser() as client:
        await sign_in(client, api1, student.email)
        started = await client.post(f"{api2}/api/v1/exams/{exam.id}/sessions")
        assert started.status_code == 201, (
            f"start through api2 after sign-in on api1: {started.text}"
        )
        sid = started.json()["id"]
        for seq, (base, question) in enumerate(
            zip((api1, api2, api2, api1), questions, strict=True), 1
        ):
            saved = await client.put(
                f"{base}/api/v1/sessions/{sid}/responses/{question.id}",
                json={"answer": {"choice": "b"}, "client_seq": seq},
            )
            assert saved.status_code == 200, f"autosave {seq} through {base}: {saved.text}"
        for base in (api1, api2):
            state = await client.get(f"{base}/api/v1/sessions/{sid}")
            assert state.status_code == 200, state.text
            assert set(state.json()["responses"]) == {str(q.id) for q in questions}, (
                f"{base} does not show every answer saved through both API hosts"
            )
        # Through the proxy, requests alternate between the hosts, and the session holds.
        served = set()
        for _ in range(4):
            me = await client.get(f"{hosts.proxy_url}/api/v1/auth/me")
            assert me.status_code == 200 and me.json()["email"] == student.email, me.text
            served.add(me.headers.get("X-Upstream"))
        assert served == {f"{hosts.address(r)}:8000" for r in ("api1", "api2")}, (
            f"the proxy did not balance over both API hosts: {served}"
        )


async def test_login_limits_are_shared_across_api_hosts(hosts: Cluster, hosts_db: Maker) -> None:
    _, [student] = await people(hosts_db, 1)
    bases = [hosts.api_url("api1"), hosts.api_url("api2"), hosts.proxy_url]
    wrong = {"email": student.email, "password": "not the password"}
    async with browser() as thief:
        answer = await thief.get(f"{bases[0]}/api/v1/auth/csrf")
        thief.headers["X-CSRF-Token"] = answer.json()["csrf_token"]
        # SAFEXAM_LOGIN_MAX_FAILURES_PER_EMAIL is 5 by default: five failures,
        # spread over both hosts and the proxy, and the sixth is refused anywhere.
        for attempt in range(5):
            base = bases[attempt % 3]
            answer = await thief.post(f"{base}/api/v1/auth/login", json=wrong)
            assert answer.status_code == 401, f"failure {attempt + 1} through {base}: {answer.text}"
        for base in bases:
            answer = await thief.post(f"{base}/api/v1/auth/login", json=wrong)
            assert answer.status_code == 429, (
                f"after 5 failures spread over both API hosts, {base} still let one try:"
                f" {answer.status_code} {answer.text}"
            )


async def test_a_client_of_one_api_host_hears_workers_and_the_other_host(
    hosts: Cluster, hosts_db: Maker
) -> None:
    """The educator's live monitor on api1 shows a save made through api2 and an
    auto-submit done by worker host 2; the student's submission stream on api1
    shows the verdict judged on worker host 2."""
    hosts.stop_workers(1)  # only worker host 2 takes work here
    educator, [student] = await people(hosts_db, 1)
    closes_at = datetime.now(UTC) + timedelta(seconds=8)
    async with hosts_db() as db:
        quiz_questions = [await make_question(db, educator, "mcq_single") for _ in range(2)]
        quiz = await make_exam(db, educator, quiz_questions, closes_at=closes_at)
        await enroll(db, quiz, student)
        coding = await make_question(
            db, educator, "coding", body=coding_body(languages=["python"], tests=add_tests(2))
        )
        code_exam = await make_exam(db, educator, [coding])
        await enroll(db, code_exam, student)
    api1, api2 = hosts.api_url("api1"), hosts.api_url("api2")
    async with browser() as teacher, browser() as pupil:
        await sign_in(teacher, api1, educator.email)
        await sign_in(pupil, api2, student.email)
        async with streaming(teacher, f"{api1}/api/v1/exams/{quiz.id}/monitor") as monitor:
            await monitor.wait_for("the monitor's roster", lambda e: e.get("event") == "roster")
            started = await pupil.post(f"{api2}/api/v1/exams/{quiz.id}/sessions")
            assert started.status_code == 201, started.text
            sid = started.json()["id"]
            saved = await pupil.put(
                f"{api2}/api/v1/sessions/{sid}/responses/{quiz_questions[0].id}",
                json={"answer": {"choice": "b"}, "client_seq": 7},
            )
            assert saved.status_code == 200, saved.text

            def delta(kind: str, **fields: Any) -> Callable[[dict[str, Any]], bool]:
                def match(event: dict[str, Any]) -> bool:
                    return event.get("event") == "delta" and any(
                        d.get("kind") == kind
                        and d.get("session") == sid
                        and all(d.get(k) == v for k, v in fields.items())
                        for d in event["data"]
                    )

                return match

            await monitor.wait_for(
                "api1's monitor hearing the autosave made through api2",
                delta("save", seq=7),
                timeout=10,
            )

            # Meanwhile, code judged on worker host 2, watched from api1.
            coded = await pupil.post(f"{api2}/api/v1/exams/{code_exam.id}/sessions")
            assert coded.status_code == 201, coded.text
            sent = await pupil.post(
                f"{api2}/api/v1/sessions/{coded.json()['id']}/submissions",
                json={
                    "question_id": str(coding.id),
                    "language": "python",
                    "source": slow_source(0.5),
                },
            )
            assert sent.status_code == 202, sent.text
            submission = sent.json()["id"]
            async with streaming(pupil, f"{api1}/api/v1/submissions/{submission}/events") as live:
                first = await live.wait_for("the submission's state", lambda e: "data" in e)
                assert first["data"]["status"] in ("queued", "running"), (
                    f"the submission was judged before its stream opened: {first}"
                )
                verdict = await live.wait_for(
                    "api1's submission stream hearing worker host 2's verdict",
                    lambda e: e.get("data", {}).get("status") == "done",
                    timeout=30,
                )
            assert verdict["data"]["verdict"] == "accepted", verdict
            job = await scalar(
                hosts_db,
                "SELECT job_id FROM coding_submissions WHERE id = :id",
                id=uuid.UUID(submission),
            )
            assert done_by(hosts, 2, "judge", job) == 1, "worker host 2 did not judge it"

            # At the deadline, host 2's maintenance pool submits the quiz for the student.
            await monitor.wait_for(
                "api1's monitor hearing worker host 2 auto-submit the session",
                delta("expire"),
                timeout=30,
            )
    autosubmit = await scalar(
        hosts_db,
        "SELECT id FROM jobs WHERE kind = 'autosubmit' AND session_id = :sid",
        sid=uuid.UUID(sid),
    )
    swept = hosts.procs["work2-maintenance"].events("sessions_swept")
    assert done_by(hosts, 2, "maintenance", autosubmit) == 1 or swept, (
        "the auto-submit was not done by worker host 2's maintenance pool"
    )


# --------------------------------------------------------------------- worker host cut off


async def test_a_worker_host_cut_off_mid_judging_is_recovered_once(
    hosts: Cluster, hosts_db: Maker
) -> None:
    hosts.start_workers(1)
    tests_per_submission = 4
    educator, students = await people(hosts_db, 4)
    async with hosts_db() as db:
        coding = await make_question(
            db,
            educator,
            "coding",
            body=coding_body(languages=["python"], tests=add_tests(tests_per_submission)),
        )
        exam = await make_exam(db, educator, [coding])
        for student in students:
            await enroll(db, exam, student)
    clients = [browser() for _ in students]
    try:

        async def submit(client: httpx.AsyncClient, student: User) -> str:
            await sign_in(client, hosts.proxy_url, student.email)
            started = await client.post(f"{hosts.proxy_url}/api/v1/exams/{exam.id}/sessions")
            assert started.status_code == 201, started.text
            sent = await client.post(
                f"{hosts.proxy_url}/api/v1/sessions/{started.json()['id']}/submissions",
                json={
                    "question_id": str(coding.id),
                    "language": "python",
                    "source": slow_source(0.6),
                },
            )
            assert sent.status_code == 202, sent.text
            return str(sent.json()["id"])

        submissions = await asyncio.gather(
            *(submit(c, s) for c, s in zip(clients, students, strict=True))
        )
    finally:
        for client in clients:
            await client.aclose()
    jobs = {
        str(
            await scalar(
                hosts_db, "SELECT job_id FROM coding_submissions WHERE id = :id", id=uuid.UUID(s)
            )
        ): s
        for s in submissions
    }

    # Wait until host 1 is judging one of them, past its first test and not done.
    midway = (
        "SELECT status = 'running' AND tests_done >= 1 AND tests_done < tests_total"
        "  FROM coding_submissions WHERE id = :id"
    )
    victim: str | None = None
    deadline = time.monotonic() + 30
    while victim is None and time.monotonic() < deadline:
        for event in hosts.procs["work1-judge"].events("job_started"):
            job = event.get("job_id")
            if job in jobs and await scalar(hosts_db, midway, id=uuid.UUID(jobs[job])):
                victim = job
        await asyncio.sleep(0.1)
    assert victim is not None, "worker host 1 never judged any of the submissions"

    hosts.cut("work1")
    try:
        deadline = time.monotonic() + RECOVERY_BOUND_SECONDS
        while time.monotonic() < deadline:
            statuses = [
                await scalar(
                    hosts_db,
                    "SELECT status FROM coding_submissions WHERE id = :id",
                    id=uuid.UUID(s),
                )
                for s in submissions
            ]
            if all(status == "done" for status in statuses):
                break
            await asyncio.sleep(0.2)
        assert all(status == "done" for status in statuses), (
            f"{RECOVERY_BOUND_SECONDS} s after worker host 1 was cut off, submissions are"
            f" {statuses} (heartbeat stale after {STALE_AFTER_SECONDS} s, sweep every 2 s)"
        )
    finally:
        # Back on the network: whatever its stale attempt still does must not count.
        hosts.reconnect("work1")
        reconnected_at = time.time()

    attempts = await scalar(
        hosts_db, "SELECT attempts FROM jobs WHERE id = :id", id=uuid.UUID(victim)
    )
    assert attempts == 2, f"the cut-off host's job was attempted {attempts} times, not 2"
    assert done_by(hosts, 2, "judge", victim) == 1, (
        "the cut-off host's job did not finish on worker host 2"
    )
    # Host 1's judge is heard from again (its presence record in Redis is fresh).
    [booted] = hosts.procs["work1-judge"].events("worker_booted")
    presence = redis_sync.Redis.from_url(hosts.redis_url)
    try:
        deadline = time.monotonic() + 20
        seen_at = 0.0
        while seen_at < reconnected_at and time.monotonic() < deadline:
            raw = presence.hget("safexam:workers", f"{socket.gethostname()}:{booted['pid']}")
            seen_at = float(json.loads(raw)["seen_at"]) if raw else 0.0
            await asyncio.sleep(0.2)
    finally:
        presence.close()
    assert seen_at >= reconnected_at, "worker host 1 did not come back after its reconnection"
    assert done_by(hosts, 1, "judge", victim) == 0, "the cut-off host's stale attempt finished too"

    async with hosts_db() as db:
        rows = (
            await db.execute(
                text(
                    "SELECT s.id, s.status, s.verdict, s.score, s.max_score, s.tests_done,"
                    "       s.tests_total, s.tests, j.status AS job_status,"
                    "       (SELECT count(*) FROM jobs o WHERE o.kind = 'judge'"
                    "         AND o.args->>'submission_id' = CAST(s.id AS text)) AS judge_jobs"
                    "  FROM coding_submissions s JOIN jobs j ON j.id = s.job_id"
                    " WHERE s.id = ANY(:ids)"
                ),
                {"ids": [uuid.UUID(s) for s in submissions]},
            )
        ).all()
    assert len(rows) == len(submissions)
    for row in rows:
        names = sorted(t["name"] for t in row.tests)
        assert (row.status, row.verdict, row.score, row.max_score) == (
            "done",
            "accepted",
            tests_per_submission,
            tests_per_submission,
        ), f"submission {row.id} ended {row.status}/{row.verdict} {row.score}/{row.max_score}"
        assert row.tests_done == row.tests_total == tests_per_submission, row
        assert names == [f"t{i}" for i in range(tests_per_submission)], (
            f"submission {row.id} holds test results {names}: not one result per test"
        )
        assert row.job_status == "succeeded" and row.judge_jobs == 1, row
    finished = sum(done_by(hosts, h, "judge", j) for h in (1, 2) for j in jobs)
    assert finished == len(submissions), (
        f"{finished} judge attempts finished for {len(submissions)} submissions"
    )


# --------------------------------------------------------------------- API host cut off


async def test_an_api_host_cut_off_loses_no_acknowledged_save(
    hosts: Cluster, hosts_db: Maker
) -> None:
    per_student = 30
    educator, students = await people(hosts_db, 3)
    async with hosts_db() as db:
        questions = [await make_question(db, educator, "mcq_single") for _ in range(per_student)]
        exam = await make_exam(db, educator, questions)
        for student in students:
            await enroll(db, exam, student)
    proxy = hosts.proxy_url
    clients = [browser() for _ in students]
    sessions: list[str] = []
    for client, student in zip(clients, students, strict=True):
        await sign_in(client, proxy, student.email)
        started = await client.post(f"{proxy}/api/v1/exams/{exam.id}/sessions")
        assert started.status_code == 201, started.text
        sessions.append(started.json()["id"])

    acknowledged: dict[tuple[str, str], int] = {}
    # (student, seq, sent how long after the cut (None: before it), what went wrong)
    unacknowledged: list[tuple[int, int, float | None, str]] = []
    served_after_cut: set[str | None] = set()
    cut_at: float | None = None
    saves_before_cut = 0

    async def autosave(n: int, client: httpx.AsyncClient, seq: int) -> str | None:
        """None when the save was acknowledged, else what went wrong."""
        question = questions[seq - 1]
        sent_after_cut = cut_at is not None
        try:
            answer = await client.put(
                f"{proxy}/api/v1/sessions/{sessions[n]}/responses/{question.id}",
                json={"answer": {"choice": "b"}, "client_seq": seq},
                timeout=10,
            )
        except httpx.HTTPError as exc:
            return repr(exc)
        if answer.status_code != 200:
            return f"{answer.status_code} {answer.text[:200]}"
        acknowledged[(sessions[n], str(question.id))] = seq
        if sent_after_cut:
            served_after_cut.add(answer.headers.get("X-Upstream"))
        return None

    async def student_saves(n: int, client: httpx.AsyncClient) -> None:
        nonlocal saves_before_cut
        for seq in range(1, per_student + 1):
            sent_at = time.monotonic()
            failure = await autosave(n, client, seq)
            if failure is not None:
                since_cut = None if cut_at is None else round(sent_at - cut_at, 2)
                unacknowledged.append((n, seq, since_cut, failure))
            if cut_at is None:
                saves_before_cut += 1
            await asyncio.sleep(0.05)

    async def cut_midway() -> None:
        nonlocal cut_at
        while saves_before_cut < len(students) * per_student // 3:
            await asyncio.sleep(0.02)
        hosts.cut("api1")
        cut_at = time.monotonic()

    try:
        await asyncio.gather(cut_midway(), *(student_saves(n, c) for n, c in enumerate(clients)))
        assert cut_at is not None
        assert served_after_cut == {f"{hosts.address('api2')}:8000"}, (
            f"after api1 was cut off, saves were answered by {served_after_cut}"
        )
        # Only saves sent before the proxy noticed (its health check runs every
        # second) may fail: those it had already written to api1's connection.
        late = [u for u in unacknowledged if u[2] is None or u[2] > DETECTION_SECONDS]
        assert not late, f"saves failing before the cut or after the proxy noticed it: {late}"
        # What the exam page's outbox does with a save not acknowledged: send it again.
        for n, seq, _, _ in unacknowledged:
            failure = await autosave(n, clients[n], seq)
            assert failure is None, f"the resent save {seq} of student {n} failed: {failure}"
    finally:
        hosts.reconnect("api1")
        for client in clients:
            await client.aclose()

    async with hosts_db() as db:
        stored = {
            (str(r.session_id), str(r.question_id)): r.client_seq
            for r in await db.execute(
                text(
                    "SELECT session_id, question_id, client_seq FROM responses"
                    " WHERE session_id = ANY(:ids)"
                ),
                {"ids": [uuid.UUID(s) for s in sessions]},
            )
        }
    lost = {key: seq for key, seq in acknowledged.items() if stored.get(key) != seq}
    assert not lost, f"{len(lost)} acknowledged saves are not in the database: {lost}"
    assert len(acknowledged) == len(students) * per_student
