"""What the API needs from the async pipeline, as Litestar plugins for ``create_app``.

- the channels plugin, so SSE handlers hear workers' change notifications;
- the job broker of this process (the outbox sends through it after commit),
  created at start-up and closed at shutdown;
- HTTP metrics for ``/metrics``.
"""

from __future__ import annotations

import contextlib
from typing import Any

import structlog
from litestar import Litestar
from litestar.config.app import AppConfig
from litestar.plugins import InitPluginProtocol, PluginProtocol
from redis.asyncio import Redis

from safexam.core.broker import create_broker, current_broker, use_broker
from safexam.core.events import channels_plugin
from safexam.core.metrics import MetricsMiddleware
from safexam.core.settings import Settings
from safexam.jobs import outbox

__all__ = ["JobsPlugin", "pipeline_plugins"]

log = structlog.get_logger(__name__)


class JobsPlugin(InitPluginProtocol):
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        app_config.middleware.insert(0, MetricsMiddleware)
        app_config.on_startup.append(self._startup)
        app_config.on_shutdown.append(self._shutdown)
        return app_config

    def _startup(self, app: Litestar) -> None:
        try:
            use_broker(create_broker(self.settings))
        except Exception:
            # Without a broker every job stays pending until a worker's sweep sends it.
            log.warning("broker_unavailable_at_start", exc_info=True)

    async def _shutdown(self, app: Litestar) -> None:
        await outbox.drain(wait_seconds=5)
        broker: Any = current_broker()
        if broker is not None:
            with contextlib.suppress(Exception):
                broker.close()


def pipeline_plugins(redis: Redis, settings: Settings) -> list[PluginProtocol]:
    """The plugins ``create_app`` registers for jobs, live updates and metrics."""
    return [channels_plugin(redis, settings), JobsPlugin(settings)]
