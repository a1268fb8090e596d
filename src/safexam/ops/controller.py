"""Liveness and readiness probes."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from litestar import Controller, MediaType, Response, get
from litestar.datastructures import State
from sqlalchemy import text

__all__ = ["HealthController"]

log = structlog.get_logger(__name__)

# Below a typical orchestrator's probe timeout, so a 503 arrives before the probe gives up.
PROBE_TIMEOUT_SECONDS = 3.0


class HealthController(Controller):
    include_in_schema = True
    tags = ["ops"]

    @get("/healthz", exclude_from_csrf=True)
    async def healthz(self) -> dict[str, str]:
        """The process is alive and serving requests."""
        return {"status": "ok"}

    @get("/readyz")
    async def readyz(self, state: State) -> Response[dict[str, Any]]:
        """PostgreSQL and Redis both answer; 503 naming the one that does not."""

        async def check_db() -> None:
            async with state.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))

        async def check_redis() -> None:
            await state.redis.ping()

        async def run(name: str, probe: Callable[[], Awaitable[None]]) -> str:
            try:
                await asyncio.wait_for(probe(), timeout=PROBE_TIMEOUT_SECONDS)
            except Exception as exc:
                log.warning("readiness_check_failed", dependency=name, error=repr(exc))
                return f"error: {type(exc).__name__}"
            return "ok"

        # Both at once, so a hanging dependency costs one timeout, not two.
        results = await asyncio.gather(run("database", check_db), run("redis", check_redis))
        checks = dict(zip(("database", "redis"), results, strict=True))
        failed = [name for name, result in checks.items() if result != "ok"]
        if failed:
            body = {
                "error": {
                    "code": "not_ready",
                    "message": f"Unavailable: {', '.join(failed)}",
                    "details": checks,
                }
            }
            return Response(body, status_code=503, media_type=MediaType.JSON)
        return Response({"status": "ready", "checks": checks}, media_type=MediaType.JSON)
