"""Change notifications from workers to every API replica, over Redis pub/sub.

A notification is a :class:`LiveEvent`: each domain declares its own as typed
structs in its ``notify`` module, and they are published (:func:`notify`)
after the transaction that made the change commits, by the job runner for
a job's work and by the domain's notify module otherwise. Each API replica
subscribes through Litestar's channels plugin (:func:`channels_plugin`) and
relays to its SSE clients. A notification only says "this changed" plus a
small payload: SSE handlers re-read the state from PostgreSQL, so a lost
notification is harmless and nothing secret travels through Redis.

Channel names carry the Redis namespace (``<namespace>:session:<id>``) so test
runs and deployments sharing a Redis server never hear each other.

A Redis restart must not silence a replica: the subscriber reconnects on its
own (:class:`ReconnectingPubSubBackend`), subscribes again to every channel
that has listeners, and then tells every open stream to re-read its state,
because notifications sent while it was away are gone. Streams opened during
the outage still start with the state from PostgreSQL.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any, ClassVar, TypeVar

import msgspec
import structlog
from litestar.channels import ChannelsPlugin
from litestar.channels.backends.redis import RedisChannelsPubSubBackend
from litestar.response import ServerSentEventMessage
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from safexam.core.errors import unavailable_dependency
from safexam.core.settings import Settings

__all__ = [
    "RECONNECTED",
    "LiveEvent",
    "ReconnectingPubSubBackend",
    "channels_plugin",
    "configure_events",
    "exam_channel",
    "job_channel",
    "monitor_channel",
    "notify",
    "publish",
    "session_channel",
    "sse_stream",
    "submission_channel",
]

log = structlog.get_logger(__name__)

State = TypeVar("State", bound=msgspec.Struct | Mapping[str, Any])

_namespace = "safexam"


def configure_events(namespace: str) -> None:
    """Set the namespace of channel names for this process (app start, worker boot)."""
    global _namespace
    _namespace = namespace


def _channel(kind: str, ident: uuid.UUID | str) -> str:
    return f"{_namespace}:{kind}:{ident}"


def session_channel(session_id: uuid.UUID | str) -> str:
    return _channel("session", session_id)


def exam_channel(exam_id: uuid.UUID | str) -> str:
    """What every student taking the exam hears (announcements, an extension for all)."""
    return _channel("exam", exam_id)


def monitor_channel(exam_id: uuid.UUID | str) -> str:
    """The exam's live monitor: small per-student deltas, at the rate of autosaves.

    Apart from :func:`exam_channel` on purpose: students' streams must not wake
    at every classmate's save.
    """
    return _channel("monitor", exam_id)


def job_channel(job_id: uuid.UUID | str) -> str:
    return _channel("job", job_id)


def submission_channel(submission_id: uuid.UUID | str) -> str:
    return _channel("submission", submission_id)


class LiveEvent(msgspec.Struct, kw_only=True):
    """A change of one thing, published on its channel; the struct is the payload.

    Subclasses name the channel's ``topic`` (session, job, submission) and add
    their fields after ``id``, the id of what changed.
    """

    topic: ClassVar[str]
    id: uuid.UUID

    def channel(self) -> str:
        return _channel(self.topic, self.id)


async def publish(redis: Redis, channel: str, payload: Mapping[str, Any] | LiveEvent) -> None:
    """Notify subscribers of ``channel``; never raises (the change is already committed)."""
    try:
        await redis.publish(channel, msgspec.json.encode(payload))
    except Exception as exc:
        log.warning("publish_failed", channel=channel, error=f"{type(exc).__name__}: {exc}")


async def notify(redis: Redis | None, *events: LiveEvent) -> None:
    """Publish each event on its own channel (call after the change is committed)."""
    if redis is None:
        return
    for event in events:
        await publish(redis, event.channel(), event)


#: What a reconnected subscriber hands every stream: re-read, something may have been missed.
RECONNECTED = b'{"reconnected":true}'

_REDIS_DOWN = (RedisConnectionError, RedisTimeoutError)
#: Backoff between reconnection attempts while Redis is down (seconds).
RECONNECT_MIN_DELAY = 0.1
RECONNECT_MAX_DELAY = 2.0


class ReconnectingPubSubBackend(RedisChannelsPubSubBackend):
    """Litestar's Redis pub/sub backend, made to outlive a Redis restart.

    Litestar's subscriber task ends for good at the first connection error,
    and a subscription attempted while Redis is down would be forgotten. Here
    the event loop keeps trying (with a capped backoff); redis-py subscribes
    its recorded channels again when it reconnects, channels asked for during
    the outage are recorded so that they are included, and after a reconnect
    every subscribed channel gets :data:`RECONNECTED` so its streams re-read.
    """

    def _channel_keys(self, channels: list[str]) -> dict[bytes, None]:
        return {channel.encode(): None for channel in channels}

    async def subscribe(self, channels: Iterable[str]) -> None:
        wanted = list(channels)
        try:
            await super().subscribe(wanted)
        except _REDIS_DOWN as exc:
            # Recorded as subscribed: redis-py sends SUBSCRIBE for them on reconnect.
            self._pub_sub.channels.update(self._channel_keys(wanted))
            self._has_subscribed.set()
            log.warning("channels_subscribe_deferred", error=f"{type(exc).__name__}: {exc}")

    async def unsubscribe(self, channels: Iterable[str]) -> None:
        unwanted = list(channels)
        try:
            await super().unsubscribe(unwanted)
        except _REDIS_DOWN:
            # Nothing to tell a server we are not connected to; just do not
            # subscribe to them again on reconnect.
            for key in self._channel_keys(unwanted):
                self._pub_sub.channels.pop(key, None)
                self._pub_sub.pending_unsubscribe_channels.discard(key)
            if not self._pub_sub.channels:
                self._has_subscribed.clear()

    def _listened(self) -> list[str]:
        pub_sub = self._pub_sub
        return [
            key.decode() if isinstance(key, bytes) else str(key)
            for key in pub_sub.channels.keys() - pub_sub.pending_unsubscribe_channels
        ]

    async def _next_message(self) -> dict[str, Any] | None:
        pub_sub = self._pub_sub
        if pub_sub.connection is None:
            # Never connected (Redis was down from the first subscription on):
            # a first connection does not run redis-py's re-subscribe hook.
            await pub_sub.connect()  # type: ignore[no-untyped-call]
            if pub_sub.connection is not None:
                await pub_sub.on_connect(pub_sub.connection)
        message: dict[str, Any] | None = await pub_sub.get_message(
            ignore_subscribe_messages=True, timeout=self._stream_sleep_no_subscriptions
        )
        return message

    async def stream_events(self) -> AsyncGenerator[tuple[str, Any], None]:
        lost_since: float | None = None
        delay = RECONNECT_MIN_DELAY
        while True:
            await self._has_subscribed.wait()
            try:
                message = await self._next_message()
            except _REDIS_DOWN as exc:
                if lost_since is None:
                    lost_since = time.monotonic()
                    log.warning("channels_connection_lost", error=f"{type(exc).__name__}: {exc}")
                await asyncio.sleep(delay)
                delay = min(delay * 2, RECONNECT_MAX_DELAY)
                continue
            if lost_since is not None:
                listened = self._listened()
                log.info(
                    "channels_reconnected",
                    outage_seconds=round(time.monotonic() - lost_since, 2),
                    channels=len(listened),
                )
                lost_since, delay = None, RECONNECT_MIN_DELAY
                for channel in listened:
                    yield channel, RECONNECTED
            if message is None:
                continue
            key = message["channel"]
            pub_sub = self._pub_sub
            # A message may still arrive for a channel just unsubscribed from.
            if key in pub_sub.channels and key not in pub_sub.pending_unsubscribe_channels:
                yield key.decode(), message["data"]


def channels_plugin(redis: Redis, settings: Settings) -> ChannelsPlugin:
    """The Litestar channels plugin every API replica uses to hear workers."""
    configure_events(settings.redis_namespace)
    return ChannelsPlugin(
        backend=ReconnectingPubSubBackend(redis=redis),
        arbitrary_channels_allowed=True,
        # A slow SSE client must not hold an unbounded backlog in memory, yet
        # the monitor's deltas carry state: after the event loop pauses, the
        # Redis reader hands over every buffered message at once (250 a second
        # for 500 students saving), and a short backlog then dropped deltas
        # the monitor never saw. 2,000 (about 400 KB) is 8 s of that exam;
        # past it the monitor re-reads its roster (MAX_BATCH) anyway.
        subscriber_max_backlog=2_000,
        subscriber_backlog_strategy="dropleft",
    )


#: Seconds between SSE heartbeat comments; proxies close idle streams at 30-60 s.
HEARTBEAT_SECONDS = 15.0


async def sse_stream(
    channels: ChannelsPlugin,
    channel: str | Sequence[str],
    read_state: Callable[[], Awaitable[State]],
    *,
    event: str,
    heartbeat_seconds: float = HEARTBEAT_SECONDS,
    refresh_after: Callable[[State], float | None] | None = None,
) -> AsyncGenerator[ServerSentEventMessage, None]:
    """An SSE stream: the current state, then the state again after every change.

    Subscribes before reading, so a change between the read and the
    subscription cannot be missed; bursts of notifications collapse into one
    re-read. ``read_state`` opens its own short database session (a stream
    must not hold a pooled connection for its lifetime). If the database is
    unavailable for a re-read, the stream ends: the browser reconnects (with
    its EventSource retry) and gets the state first, once there is one.

    ``refresh_after(state)`` gives, for a state that changes without a
    notification (a submission's place in the queue moves as others finish),
    the seconds after which to re-read it anyway; None: wait for a notification.
    """
    changed = asyncio.Event()
    wanted = [channel] if isinstance(channel, str) else list(channel)

    async with channels.start_subscription(wanted) as subscriber:

        async def listen() -> None:
            async for _ in subscriber.iter_events():
                changed.set()

        listener = asyncio.create_task(listen())
        try:
            sequence = 1
            current = await read_state()
            last = msgspec.json.encode(current)
            yield ServerSentEventMessage(data=last.decode(), event=event, id=sequence)
            quiet_since = time.monotonic()
            while True:
                refresh = refresh_after(current) if refresh_after is not None else None
                wait = heartbeat_seconds if refresh is None else min(refresh, heartbeat_seconds)
                try:
                    await asyncio.wait_for(changed.wait(), timeout=wait)
                except TimeoutError:
                    if refresh is None or time.monotonic() - quiet_since >= heartbeat_seconds:
                        quiet_since = time.monotonic()
                        yield ServerSentEventMessage(comment="keep-alive")
                    if refresh is None:
                        continue
                changed.clear()
                try:
                    current = await read_state()
                    state = msgspec.json.encode(current)
                except Exception as exc:
                    if unavailable_dependency(exc) is None:
                        raise
                    log.warning("sse_stream_ended", channel=channel, reason=f"{exc!r}"[:200])
                    return
                if state == last:
                    continue
                last = state
                sequence += 1
                quiet_since = time.monotonic()
                yield ServerSentEventMessage(data=state.decode(), event=event, id=sequence)
        finally:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await listener
