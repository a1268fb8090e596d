"""A real HTTP server for tests that need streaming (SSE), and an SSE reader."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import msgspec
import uvicorn

from safexam.app import create_app
from safexam.core.settings import Settings
from tests.fault_servers import free_port


@asynccontextmanager
async def live_server(settings: Settings) -> AsyncIterator[str]:
    """Serve the app on a free local port (plain http, so cookies are not Secure)."""
    app = create_app(msgspec.structs.replace(settings, cookie_secure=False))
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    task = asyncio.create_task(server.serve())
    for _ in range(200):
        if server.started:
            break
        await asyncio.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, timeout=10)


async def sse_events(
    client: httpx.AsyncClient, url: str, *, until: Any, timeout: float = 20.0
) -> list[dict[str, Any]]:
    """Read SSE events from ``url`` until ``until(event)`` is true; returns all events read.

    Each event is ``{"event", "data" (decoded JSON), "id"}``; comment lines are
    collected as ``{"comment": text}``.
    """
    events: list[dict[str, Any]] = []

    async def read() -> None:
        async with client.stream("GET", url, headers={"Accept": "text/event-stream"}) as response:
            assert response.status_code == 200, await response.aread()
            current: dict[str, Any] = {}
            async for line in response.aiter_lines():
                if line.startswith(":"):
                    events.append({"comment": line[1:].strip()})
                elif line.startswith("event:"):
                    current["event"] = line.split(":", 1)[1].strip()
                elif line.startswith("data:"):
                    raw = line.split(":", 1)[1].strip()
                    current["data"] = json.loads(raw) if raw else None
                elif line.startswith("id:"):
                    current["id"] = line.split(":", 1)[1].strip()
                elif line == "" and current:
                    events.append(current)
                    if until(current):
                        return
                    current = {}

    await asyncio.wait_for(read(), timeout=timeout)
    return events
