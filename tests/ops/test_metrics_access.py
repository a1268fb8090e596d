"""/metrics: for the token's holder only, and counting every API process."""

from __future__ import annotations

import asyncio
import os
import uuid
from typing import Any

import httpx
import pytest

from safexam.core.settings import Settings
from safexam.ops.metrics import check_metrics_access
from tests.fault_servers import ApiReplica
from tests.helpers import ServiceUrls


def test_production_without_a_token_serves_no_metrics() -> None:
    from safexam.core.errors import NotFound

    with pytest.raises(NotFound, match="SAFEXAM_METRICS_TOKEN"):
        check_metrics_access(Settings(env="production"), None)
    check_metrics_access(Settings(env="development"), None)  # make run: open on localhost


def _count(text: str, route: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if line.startswith("safexam_http_requests_total{") and f'route="{route}"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


async def test_every_api_process_is_counted_under_several_workers(
    settings: Settings, services: ServiceUrls
) -> None:
    env: dict[str, Any] = {
        **os.environ,
        "SAFEXAM_ENV": "test",
        "SAFEXAM_DATABASE_URL": services.database_url,
        "SAFEXAM_REDIS_URL": services.redis_url,
        "SAFEXAM_REDIS_NAMESPACE": services.namespace,
        "SAFEXAM_SECRET_KEY": settings.secret_key,
        "SAFEXAM_COOKIE_SECURE": "false",
        "SAFEXAM_LOG_LEVEL": "WARNING",
        "SAFEXAM_WEB_WORKERS": "2",
    }
    env.pop("SAFEXAM_BROKER_URL", None)
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    replica = ApiReplica(env, services.tmp / f"api-{uuid.uuid4().hex}.log")
    try:
        replica.start()
        await asyncio.to_thread(replica.wait_ready)
        # New connections each time, so both processes take some of the requests.
        for _ in range(40):
            async with httpx.AsyncClient(timeout=10) as client:
                assert (await client.get(f"{replica.url}/readyz")).status_code == 200
        scrapes = []
        for _ in range(4):
            async with httpx.AsyncClient(timeout=10) as client:
                scrape = await client.get(f"{replica.url}/metrics")
                assert scrape.status_code == 200, scrape.text
                scrapes.append(_count(scrape.text, "/readyz"))
        # Whichever process answers the scrape, it reports all 40.
        assert scrapes == [40.0] * 4, (scrapes, replica.log()[-2000:])
    finally:
        replica.stop()
