"""One end-to-end grading path on RabbitMQ (127.0.0.1:5672), namespaced queues."""

from __future__ import annotations

import msgspec
import pika
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from safexam.core.broker import QUEUES, create_broker, use_broker
from safexam.core.settings import Settings
from safexam.grading.models import Result
from safexam.jobs import outbox
from tests.grading.test_pipeline import submit
from tests.helpers import ServiceUrls
from tests.jobs.test_recovery import finished_sessions, wait_status
from tests.workers_helper import running_worker

AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"


def _rabbit_up() -> bool:
    try:
        pika.BlockingConnection(pika.URLParameters(AMQP_URL)).close()
        return True
    except Exception:
        return False


def _delete_queues(namespace: str) -> None:
    connection = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
    channel = connection.channel()
    for queue in QUEUES:
        for suffix in ("", ".DQ", ".XQ"):
            channel.queue_delete(queue=f"{namespace}.{queue}{suffix}")
    connection.close()


@pytest.mark.skipif(not _rabbit_up(), reason="RabbitMQ is not running on 127.0.0.1:5672")
async def test_grading_end_to_end_on_rabbitmq(
    db: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
    services: ServiceUrls,
) -> None:
    rabbit = msgspec.structs.replace(settings, broker_url=AMQP_URL)
    broker = create_broker(rabbit)
    use_broker(broker)
    sessions = await finished_sessions(db, 2)
    try:
        jobs = []
        for session, _ in sessions:
            jobs.append((await submit(db, session.id)).id)
        await outbox.drain()
        await wait_status(sessionmaker, jobs, ("queued",), timeout=5)
        # The messages wait in this run's own RabbitMQ queue...
        assert broker.get_queue_message_counts("grading")[0] == 2
        with running_worker(services, ("grading",), SAFEXAM_BROKER_URL=AMQP_URL):
            # ...until a worker consuming RabbitMQ grades them.
            await wait_status(sessionmaker, jobs, ("succeeded",), timeout=30)
        async with sessionmaker() as check:
            for session, expected in sessions:
                result = await check.get(Result, session.id)
                assert result is not None and result.score == expected
        assert broker.get_queue_message_counts("grading") == (0, 0, 0)
    finally:
        broker.close()
        _delete_queues(settings.redis_namespace)
