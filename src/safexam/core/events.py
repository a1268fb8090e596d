"""Change notifications from workers to every API replica, over Redis pub/sub.

Workers (and services) call :func:`publish` after their transaction commits;
each API replica subscribes through Litestar's channels plugin
(:func:`channels_plugin`) and relays to its SSE clients. A notification only
says "this changed" plus a small payload: SSE handlers re-read the state from
PostgreSQL, so a lost notification is harmless and nothing secret travels
through Redis.

Channel names carry the Redis namespace (``<namespace>:session:<id>``) so test
runs and deployments sharing a Redis server never hear each other.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping
from typing import Any

import msgspec
import structlog
from litestar.channels import ChannelsPlugin
from litestar.channels.backends.redis import RedisChannelsPubSubBackend
from litestar.response import ServerSentEventMessage
from redis.asyncio import Redis

from safexam.core.settings import Settings

__all__ = [
    "channels_plugin",
    "configure_events",
    "exam_channel",
    "job_channel",
    "publish",
    "session_channel",
    "sse_stream",
    "submission_channel",
]

log = structlog.get_logger(__name__)

_namespace = "safexam"


def configure_events(namespace: str) -> None:
    """Set the namespace of channel names for this process (app start, worker boot)."""
    global _namespace
    _namespace = namespace


def _channel(kind: str, ident: uuid.UUID | str) -> str:
    return f"{_namespace}:{kind}:{ident}"


def session_channel(session_id: uuid.UUID | str) -> str:
    return _channel("session", session_id)


def job_channel(job_id: uuid.UUID | str) -> str:
    return _channel("job", job_id)


def submission_channel(submission_id: uuid.UUID | str) -> str:
    return _channel("submission", submission_id)


def exam_channel(exam_id: uuid.UUID | str) -> str:
    return _channel("exam", exam_id)


async def publish(redis: Redis, channel: str, payload: Mapping[str, Any]) -> None:
    """Notify subscribers of ``channel``; never raises (the change is already committed)."""
    try:
        await redis.publish(channel, msgspec.json.encode(payload))
    except Exception as exc:
        log.warning("publish_failed", channel=channel, error=f"{type(exc).__name__}: {exc}")


def channels_plugin(redis: Redis, settings: Settings) -> ChannelsPlugin:
    """The Litestar channels plugin every API replica uses to hear workers."""
    configure_events(settings.redis_namespace)
    return ChannelsPlugin(
        backend=RedisChannelsPubSubBackend(redis=redis),
        arbitrary_channels_allowed=True,
        # A slow SSE client must not hold an unbounded backlog in memory;
        # dropped notifications are harmless (state is re-read on the next).
        subscriber_max_backlog=100,
        subscriber_backlog_strategy="dropleft",
    )


#: Seconds between SSE heartbeat comments; proxies close idle streams at 30-60 s.
HEARTBEAT_SECONDS = 15.0


async def sse_stream(
    channels: ChannelsPlugin,
    channel: str,
    read_state: Callable[[], Awaitable[Mapping[str, Any]]],
    *,
    event: str,
    heartbeat_seconds: float = HEARTBEAT_SECONDS,
) -> AsyncGenerator[ServerSentEventMessage, None]:
    """An SSE stream: the current state, then the state again after every change.

    Subscribes before reading, so a change between the read and the
    subscription cannot be missed; bursts of notifications collapse into one
    re-read. ``read_state`` opens its own short database session (a stream
    must not hold a pooled connection for its lifetime).
    """
    changed = asyncio.Event()

    async with channels.start_subscription([channel]) as subscriber:

        async def listen() -> None:
            async for _ in subscriber.iter_events():
                changed.set()

        listener = asyncio.create_task(listen())
        try:
            sequence = 1
            last = msgspec.json.encode(await read_state())
            yield ServerSentEventMessage(data=last.decode(), event=event, id=sequence)
            while True:
                try:
                    await asyncio.wait_for(changed.wait(), timeout=heartbeat_seconds)
                except TimeoutError:
                    yield ServerSentEventMessage(comment="keep-alive")
                    continue
                changed.clear()
                state = msgspec.json.encode(await read_state())
                if state == last:
                    continue
                last = state
                sequence += 1
                yield ServerSentEventMessage(data=state.decode(), event=event, id=sequence)
        finally:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await listener
