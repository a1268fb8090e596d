"""The SSE stream helper over real Redis pub/sub, and the live events published to it."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import msgspec
from redis.asyncio import Redis

from safexam.coding.notify import SubmissionChanged, SubmissionJobEnded, SubmissionProgress
from safexam.core.events import (
    LiveEvent,
    channels_plugin,
    job_channel,
    publish,
    session_channel,
    sse_stream,
    submission_channel,
)
from safexam.core.settings import Settings
from safexam.grading.notify import ScoreOverridden, SessionGraded, SessionRegraded
from safexam.jobs.notify import JobChanged, JobProgress
from safexam.sessions.notify import SessionExpired


async def test_stream_opens_with_state_beats_and_pushes_changes(
    redis: Redis, settings: Settings
) -> None:
    state: dict[str, Any] = {"status": "queued", "n": 0}
    reads = 0

    async def read_state() -> dict[str, Any]:
        nonlocal reads
        reads += 1
        return dict(state)

    listener = Redis.from_url(settings.redis_url or "")
    plugin = channels_plugin(listener, settings)
    channel = job_channel("0b0e5a0e-0000-4000-8000-000000000001")
    assert channel.startswith(f"{settings.redis_namespace}:job:")
    async with plugin:
        stream = sse_stream(plugin, channel, read_state, event="job", heartbeat_seconds=0.3)
        first = await asyncio.wait_for(anext(stream), 5)
        assert first.event == "job" and first.data == '{"status":"queued","n":0}'
        beat = await asyncio.wait_for(anext(stream), 5)
        assert beat.comment == "keep-alive" and not beat.data
        state.update(status="running", n=1)
        await publish(redis, channel, {"id": "x"})
        pushed = await asyncio.wait_for(anext(stream), 5)
        while pushed.comment:  # a heartbeat may come first on a slow machine
            pushed = await asyncio.wait_for(anext(stream), 5)
        assert pushed.data == '{"status":"running","n":1}' and pushed.id == 2
        await stream.aclose()
    await listener.aclose()
    assert reads == 2


def test_live_events_keep_their_payloads_and_channels() -> None:
    """What subscribers of each channel receive, byte for byte as the untyped dicts were."""
    session, job, other, submission = (
        uuid.UUID(f"0b0e5a0e-0000-4000-8000-00000000000{n}") for n in range(1, 5)
    )
    expected: list[tuple[LiveEvent, str, dict[str, Any]]] = [
        (JobChanged(id=job, status="running"), job_channel(job), {"status": "running"}),
        (
            JobChanged(id=job, status="queued", error="OSError: down"),
            job_channel(job),
            {"status": "queued", "error": "OSError: down"},
        ),
        (
            JobChanged(id=job, status="running", progress=JobProgress(done=1, total=3)),
            job_channel(job),
            {"status": "running", "progress": {"done": 1, "total": 3}},
        ),
        (
            SessionGraded(id=session, job_id=job),
            session_channel(session),
            {"status": "graded", "job_id": str(job)},
        ),
        (SessionRegraded(id=session), session_channel(session), {"regraded": True}),
        (
            ScoreOverridden(id=session, override=other),
            session_channel(session),
            {"override": str(other)},
        ),
        (SessionExpired(id=session), session_channel(session), {"status": "expired"}),
        (
            SubmissionProgress(id=submission, tests_done=2, tests_total=5),
            submission_channel(submission),
            {"tests_done": 2, "tests_total": 5},
        ),
        (
            SubmissionProgress(id=submission, status="queued"),
            submission_channel(submission),
            {"status": "queued"},
        ),
        (
            SubmissionChanged(
                id=submission,
                status="running",
                verdict=None,
                score=None,
                tests_done=1,
                tests_total=3,
            ),
            submission_channel(submission),
            {
                "status": "running",
                "verdict": None,
                "score": None,
                "tests_done": 1,
                "tests_total": 3,
            },
        ),
        (
            SubmissionJobEnded(id=submission, status="done", job_id=job),
            submission_channel(submission),
            {"status": "done", "job_id": str(job)},
        ),
    ]
    for event, channel, fields in expected:
        assert event.channel() == channel, event
        assert msgspec.json.encode(event) == msgspec.json.encode({"id": str(event.id), **fields})
