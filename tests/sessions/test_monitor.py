"""The live exam monitor's API: the roster stream and its deltas, the audited actions,
who may use them, and what bad input is told."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from redis import Redis as SyncRedis
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession

from safexam.core.events import channels_plugin, configure_events, monitor_channel
from safexam.core.settings import Settings
from safexam.sessions.closing import sweep_expired_sessions
from safexam.sessions.monitor import MonitorRoster, monitor_events
from tests.factories import enroll, make_exam, make_question, make_user, move_deadline
from tests.helpers import error_field, login, one, rows, signed_in
from tests.live import live_server


class Stream:
    """An SSE stream read in the background; ``wait_for`` waits for a matching event."""

    def __init__(self, client: httpx.AsyncClient, url: str) -> None:
        self.client, self.url = client, url
        self.events: list[dict[str, Any]] = []
        self.arrived = asyncio.Condition()
        self.task: asyncio.Task[None] | None = None

    async def _read(self) -> None:
        async with self.client.stream("GET", self.url) as response:
            assert response.status_code == 200, await response.aread()
            current: dict[str, Any] = {}
            async for line in response.aiter_lines():
                if line.startswith("event:"):
                    current["event"] = line.split(":", 1)[1].strip()
                elif line.startswith("data:"):
                    current["data"] = json.loads(line.split(":", 1)[1])
                elif line == "" and current:
                    async with self.arrived:
                        self.events.append(current)
                        self.arrived.notify_all()
                    current = {}

    async def __aenter__(self) -> Stream:
        self.task = asyncio.create_task(self._read())
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self.task is not None
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self.task

    async def wait_for(
        self, match: Callable[[dict[str, Any]], bool], timeout: float = 10
    ) -> dict[str, Any]:
        async def find() -> dict[str, Any]:
            async with self.arrived:
                while True:
                    for event in self.events:
                        if match(event):
                            return event
                    await self.arrived.wait()

        return await asyncio.wait_for(find(), timeout)


def _delta(kind: str, session_id: str, **fields: Any) -> Callable[[dict[str, Any]], bool]:
    def match(event: dict[str, Any]) -> bool:
        if event.get("event") != "delta":
            return False
        return any(
            d["kind"] == kind
            and d.get("session") == session_id
            and all(d.get(k) == v for k, v in fields.items())
            for d in event["data"]
        )

    return match


@contextlib.asynccontextmanager
async def _browsers(base: str, *emails: str) -> AsyncIterator[list[httpx.AsyncClient]]:
    async with contextlib.AsyncExitStack() as stack:
        clients = []
        for email in emails:
            client = await stack.enter_async_context(httpx.AsyncClient(base_url=base, timeout=20))
            await login(client, email)
            clients.append(client)
        yield clients


async def test_monitor_streams_the_roster_then_deltas_and_the_actions_reach_the_student(
    db: AsyncSession, settings: Settings
) -> None:
    educator = await make_user(db, "educator")
    alice = await make_user(db, "student")
    bob = await make_user(db, "student")
    q1 = await make_question(db, educator, "mcq_single")
    q2 = await make_question(db, educator, "short_text")
    exam = await make_exam(db, educator, [q1, q2])
    await enroll(db, exam, alice)
    await enroll(db, exam, bob)
    async with (
        live_server(settings) as base,
        _browsers(base, educator.email, alice.email, bob.email) as (teacher, a, b),
    ):
        monitor_url = f"/api/v1/exams/{exam.id}/monitor"
        async with Stream(teacher, monitor_url) as monitor:
            roster = (await monitor.wait_for(lambda e: e.get("event") == "roster"))["data"]
            states = {s["email"]: s["state"] for s in roster["students"]}
            assert states == {alice.email: "not_started", bob.email: "not_started"}

            session = (await a.post(f"/api/v1/exams/{exam.id}/sessions")).json()
            sid = session["id"]
            await monitor.wait_for(_delta("start", sid, user=str(alice.id)))
            qid = session["questions"][0]["id"]
            saved = await a.put(
                f"/api/v1/sessions/{sid}/responses/{qid}",
                json={"answer": {"choice": "b"}, "client_seq": 1},
            )
            assert saved.status_code == 200, saved.text
            await monitor.wait_for(_delta("save", sid, question=qid, seq=1, first=True))
            await a.put(
                f"/api/v1/sessions/{sid}/responses/{qid}",
                json={"answer": {"choice": "a"}, "client_seq": 2},
            )
            # A second save of the same question does not count it answered again.
            await monitor.wait_for(_delta("save", sid, question=qid, seq=2))
            reported = await a.post(
                f"/api/v1/sessions/{sid}/events",
                json={"events": [{"kind": "paste", "at": session["started_at"]}]},
            )
            assert reported.status_code == 202, reported.text
            await monitor.wait_for(_delta("event", sid, events={"paste": 1}))

            # The student's page holds the session's stream: the monitor sees it connect.
            async with Stream(a, f"/api/v1/sessions/{sid}/events") as page:
                first = await page.wait_for(lambda e: e.get("event") == "session")
                assert first["data"]["announcements"] == []
                await monitor.wait_for(_delta("online", sid, pages=1))

                extended = await teacher.post(
                    f"/api/v1/exams/{exam.id}/extensions",
                    json={"minutes": 15, "reason": "Fire alarm", "session_id": sid},
                )
                assert extended.status_code == 200, extended.text
                new_deadline = extended.json()["deadlines"][sid]
                await monitor.wait_for(_delta("extend", sid))
                await page.wait_for(
                    lambda e: e["data"]["deadline_at"] != first["data"]["deadline_at"]
                )
                view = (await a.get(f"/api/v1/sessions/{sid}")).json()
                assert view["deadline_at"] == new_deadline
                assert view["remaining_seconds"] > 60 * 15

                said = await teacher.post(
                    f"/api/v1/exams/{exam.id}/announcements",
                    json={"message": "Question 2 has a typo: read 'cat' for 'cta'."},
                )
                assert said.status_code == 201, said.text
                await page.wait_for(
                    lambda e: (
                        [x["message"] for x in e["data"]["announcements"]]
                        == ["Question 2 has a typo: read 'cat' for 'cta'."]
                    )
                )

                ended = await teacher.post(
                    f"/api/v1/exams/{exam.id}/sessions/{sid}/force-submit",
                    json={"reason": "Left the room"},
                )
                assert ended.status_code == 200, ended.text
                assert ended.json()["status"] == "submitted" and ended.json()["job_id"]
                await page.wait_for(lambda e: e["data"]["status"] == "submitted")
                await monitor.wait_for(_delta("submit", sid, status="submitted"))
            await monitor.wait_for(_delta("offline", sid, pages=0))
            again = await teacher.post(
                f"/api/v1/exams/{exam.id}/sessions/{sid}/force-submit",
                json={"reason": "twice"},
            )
            assert again.status_code == 409

        # A reconnect opens with the state again, read from the database.
        async with Stream(teacher, monitor_url) as monitor:
            roster = (await monitor.wait_for(lambda e: e.get("event") == "roster"))["data"]
        by_email = {s["email"]: s for s in roster["students"]}
        assert by_email[alice.email]["state"] == "submitted"
        assert by_email[alice.email]["answered"] == 1
        assert by_email[alice.email]["flags"] == {"paste": 1}
        assert by_email[bob.email]["state"] == "not_started"

        timeline = (await teacher.get(f"/api/v1/exams/{exam.id}/monitor/sessions/{sid}")).json()
        kinds = [item["kind"] for item in timeline["items"]]
        assert kinds[0] == "start" and "paste" in kinds and "session.extend" in kinds
        assert kinds[-1] in ("submit", "session.force_submit")

        # Everyone: only running sessions move (Bob's starts now; Alice's ended).
        session_b = (await b.post(f"/api/v1/exams/{exam.id}/sessions")).json()
        async with Stream(b, f"/api/v1/sessions/{session_b['id']}/events") as page_b:
            first_b = await page_b.wait_for(lambda e: e.get("event") == "session")
            # Announcements made before the student started are on their page too.
            assert len(first_b["data"]["announcements"]) == 1
            everyone = await teacher.post(
                f"/api/v1/exams/{exam.id}/extensions", json={"minutes": 5, "reason": "Late start"}
            )
            assert everyone.status_code == 200, everyone.text
            assert list(everyone.json()["deadlines"]) == [session_b["id"]]
            # The exam's channel reaches every student's page.
            await page_b.wait_for(
                lambda e: e["data"]["deadline_at"] != first_b["data"]["deadline_at"]
            )

        trail = (await teacher.get(f"/api/v1/exams/{exam.id}/audit")).json()["items"]
        assert [t["action"] for t in trail] == [
            "exam.extend",
            "session.force_submit",
            "exam.announce",
            "session.extend",
        ]
        assert {t["actor_id"] for t in trail} == {str(educator.id)}
        assert trail[1]["reason"] == "Left the room" and trail[3]["reason"] == "Fire alarm"
    stored = await rows(
        db,
        "SELECT actor_id, action, reason, subject_id FROM audit_events WHERE exam_id = :e",
        e=exam.id,
    )
    assert len(stored) == 4 and {r.actor_id for r in stored} == {educator.id}
    kept = await one(
        db, "SELECT message, author_id FROM announcements WHERE exam_id = :e", e=exam.id
    )
    assert kept.author_id == educator.id


async def _exam_and_session(make_client: Any, db: AsyncSession) -> tuple[Any, Any, Any, str]:
    owner_client, owner = await signed_in(make_client, db, "educator")
    q1 = await make_question(db, owner, "mcq_single")
    exam = await make_exam(db, owner, [q1])
    student_client, student = await signed_in(make_client, db, "student")
    await enroll(db, exam, student)
    session = (await student_client.post(f"/api/v1/exams/{exam.id}/sessions")).json()
    return owner_client, student_client, exam, session["id"]


async def test_students_and_other_educators_get_404_from_the_monitor_and_its_actions(
    make_client: Any, db: AsyncSession
) -> None:
    _, student_client, exam, sid = await _exam_and_session(make_client, db)
    other_client, _ = await signed_in(make_client, db, "educator")
    base = f"/api/v1/exams/{exam.id}"
    reads = [
        f"{base}/monitor",
        f"{base}/monitor/roster",
        f"{base}/monitor/sessions/{sid}",
        f"{base}/audit",
        f"{base}/announcements",
    ]
    writes = [
        (f"{base}/extensions", {"minutes": 5, "reason": "x", "session_id": sid}),
        (f"{base}/extensions", {"minutes": 5, "reason": "x"}),
        (f"{base}/sessions/{sid}/force-submit", {"reason": "x"}),
        (f"{base}/announcements", {"message": "hello"}),
    ]
    for url in reads:
        assert (await other_client.get(url)).status_code == 404, url
        # A student is refused by the route's guard (403, the project's rule for
        # a role without the route) before any lookup.
        assert (await student_client.get(url)).status_code == 403, url
    for url, body in writes:
        assert (await other_client.post(url, json=body)).status_code == 404, url
        assert (await student_client.post(url, json=body)).status_code == 403, url
    assert await one(db, "SELECT 1 FROM audit_events") is None
    assert await one(db, "SELECT 1 FROM announcements") is None


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("extensions", {"minutes": -5, "reason": "x"}, "minutes"),
        ("extensions", {"minutes": 0, "reason": "x"}, "minutes"),
        ("extensions", {"minutes": 5, "reason": "   "}, "reason"),
        ("extensions", {"minutes": 5}, "reason"),
        ("announcements", {"message": ""}, "message"),
        ("announcements", {"message": "  \n "}, "message"),
        ("force-submit", {"reason": ""}, "reason"),
    ],
)
async def test_bad_input_is_a_422_naming_the_field(
    make_client: Any, db: AsyncSession, path: str, body: dict[str, Any], field: str
) -> None:
    owner_client, _, exam, sid = await _exam_and_session(make_client, db)
    url = (
        f"/api/v1/exams/{exam.id}/sessions/{sid}/force-submit"
        if path == "force-submit"
        else f"/api/v1/exams/{exam.id}/{path}"
    )
    response = await owner_client.post(url, json=body)
    assert response.status_code == 422, response.text
    assert error_field(response) == field
    assert await one(db, "SELECT 1 FROM audit_events") is None


async def test_extending_an_unknown_session_is_404(make_client: Any, db: AsyncSession) -> None:
    owner_client, _, exam, _ = await _exam_and_session(make_client, db)
    response = await owner_client.post(
        f"/api/v1/exams/{exam.id}/extensions",
        json={"minutes": 5, "reason": "x", "session_id": str(uuid.uuid4())},
    )
    assert response.status_code == 404


async def test_the_sweeps_auto_submits_reach_the_monitor(
    make_client: Any, db: AsyncSession, redis: Redis, settings: Settings
) -> None:
    _, _, exam, sid = await _exam_and_session(make_client, db)
    await move_deadline(db, sid, -5)
    await db.commit()
    configure_events(settings.redis_namespace)
    listener = redis.pubsub()
    await listener.subscribe(monitor_channel(exam.id))
    try:
        assert await sweep_expired_sessions(db, grace_seconds=0, redis=redis) == 1
        heard = None
        for _ in range(50):
            message = await listener.get_message(ignore_subscribe_messages=True, timeout=0.2)
            if message is not None:
                heard = json.loads(message["data"])
                break
        assert heard is not None
        assert (heard["kind"], heard["session"], heard["status"]) == ("expire", sid, "expired")
    finally:
        await listener.aclose()
        await db.close()


async def test_a_burst_after_the_event_loop_paused_reaches_the_monitor_whole(
    redis: Redis, settings: Settings
) -> None:
    """While the API's event loop is busy (a page rendering, a collection), deltas
    wait in the socket; Redis's reader then hands them over all at once, and the
    monitor must see every one (each carries a student's state)."""
    exam_id = uuid.uuid4()
    configure_events(settings.redis_namespace)
    channel = monitor_channel(exam_id)
    roster = MonitorRoster(
        exam_id=exam_id,
        title="Burst",
        server_time=datetime.now(UTC),
        idle_after_seconds=120,
        flag_kinds=[],
        students=[],
    )

    async def read_roster() -> MonitorRoster:
        return roster

    async with channels_plugin(redis, settings) as plugin:
        stream = monitor_events(plugin, exam_id, read_roster, heartbeat_seconds=0.2)
        try:
            assert (await anext(stream)).event == "roster"
            # The subscription is live once a probe comes back through it.
            probed = False
            for _ in range(50):
                await redis.publish(channel, b'{"kind":"probe"}')
                message = await asyncio.wait_for(anext(stream), 5)
                if message.event == "delta":
                    probed = True
                    break
            assert probed, "the monitor's subscription never heard a probe"

            def burst() -> None:
                with SyncRedis.from_url(settings.redis_url or "") as sync:
                    for i in range(600):
                        sync.publish(channel, json.dumps({"kind": "save", "i": i}))

            # Joined from the event loop's own thread: the loop stays blocked
            # until all 600 are published, as a long render would block it.
            publisher = threading.Thread(target=burst)
            publisher.start()
            publisher.join()

            # Read until the stream falls quiet (its keep-alive comes).
            seen: list[int] = []
            async with asyncio.timeout(10):
                while True:
                    message = await anext(stream)
                    if message.event != "delta":
                        break
                    assert isinstance(message.data, bytes | str)
                    seen += [d["i"] for d in json.loads(message.data) if "i" in d]
            assert len(seen) == 600, f"{600 - len(seen)} of 600 deltas were dropped"
            assert seen == list(range(600))
        finally:
            await stream.aclose()
