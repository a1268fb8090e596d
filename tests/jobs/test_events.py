"""The SSE stream helper over real Redis pub/sub: state first, heartbeats, every change."""

from __future__ import annotations

import asyncio
from typing import Any

from redis.asyncio import Redis

from safexam.core.events import channels_plugin, job_channel, publish, sse_stream
from safexam.core.settings import Settings


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
