"""Liveness and readiness probes."""

from __future__ import annotations

import asyncio
from typing import Any

from litestar import Controller, MediaType, Response, get
from litestar.datastructures import State
from sqlalchemy import text

__all__ = ["HealthController"]


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

        checks: dict[str, str] = {}
        failed: list[str] = []
        for name, probe in (("database", check_db), ("redis", check_redis)):
            try:
                await asyncio.wait_for(probe(), timeout=3)
                checks[name] = "ok"
            except Exception as exc:
                checks[name] = f"error: {type(exc).__name__}"
                failed.append(name)
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
