"""The installable app: its manifest, its service worker and the offline page.

The three are the same for everyone and set no cookie (no sign-in is read, no
form token made). The worker is served from the root so that its scope is
the whole site, and with ``no-cache`` so that a browser checks for a new one
on every visit: the worker names the hashed files of this very deployment,
and an old worker must not outlive the files it names.
"""

from __future__ import annotations

import functools
import hashlib
import json
from pathlib import Path
from typing import Any

from litestar import Request, Response, get
from litestar.types import ControllerRouterHandler

from safexam.web.assets import assets
from safexam.web.front.caching import PublicBody, public_body, public_response
from safexam.web.layout import render_public

__all__ = [
    "MANIFEST_PATH",
    "OFFLINE_PATH",
    "WORKER_PATH",
    "manifest_body",
    "offline_body",
    "pwa_handlers",
    "shell_urls",
    "worker_body",
]

MANIFEST_PATH = "/manifest.webmanifest"
WORKER_PATH = "/sw.js"
OFFLINE_PATH = "/offline"
# The browser asks again each time, and gets a 304 while nothing changed.
REVALIDATE = "no-cache"
_WORKER_SOURCE = Path(__file__).with_name("service-worker.js")
# Neither a sign-in (a Redis read) nor a CSRF cookie: these set no cookie.
_PUBLIC = {"skip_session": True, "exclude_from_csrf": True}


def shell_urls() -> list[str]:
    """Every static file under its hashed name: the shell the worker keeps."""
    return sorted(assets.urls.values())


@functools.cache
def manifest_body() -> PublicBody:
    def icon(name: str, size: int, purpose: str) -> dict[str, str]:
        return {
            "src": assets.url(f"img/{name}"),
            "sizes": f"{size}x{size}",
            "type": "image/png",
            "purpose": purpose,
        }

    manifest = {
        "id": "/",
        "name": "SafeExam",
        "short_name": "SafeExam",
        "description": "Exams and grading for colleges and clubs: multiple choice, "
        "code and mixed exams, answers saved as students go, results live.",
        "lang": "en",
        "start_url": "/",
        "scope": "/",
        "display": "standalone",
        "background_color": "#f6f7f9",
        "theme_color": "#1f4fd1",
        "icons": [
            icon("icon-192.png", 192, "any"),
            icon("icon-512.png", 512, "any"),
            icon("icon-maskable-192.png", 192, "maskable"),
            icon("icon-maskable-512.png", 512, "maskable"),
        ],
    }
    return public_body(json.dumps(manifest, indent=2).encode())


@functools.cache
def offline_body() -> PublicBody:
    return public_body(render_public("front/offline.html", title="You are offline").encode())


@functools.cache
def worker_body() -> PublicBody:
    shell = shell_urls()
    # A new version whenever a static file or the offline page changes, so
    # that the browser installs the new worker and drops the old files.
    version = hashlib.sha256(
        json.dumps(shell).encode() + offline_body().body + _WORKER_SOURCE.read_bytes()
    ).hexdigest()[:12]
    head = (
        f"const VERSION = {json.dumps(version)};\n"
        f"const OFFLINE_URL = {json.dumps(OFFLINE_PATH)};\n"
        f"const SHELL = {json.dumps(shell, indent=2)};\n\n"
    )
    return public_body(head.encode() + _WORKER_SOURCE.read_bytes())


@get(MANIFEST_PATH, include_in_schema=False, opt=_PUBLIC, sync_to_thread=False)
def manifest(request: Request[Any, Any, Any]) -> Response[bytes]:
    """The web app manifest: name, start page, colours and icons."""
    return public_response(
        request, manifest_body(), media_type="application/manifest+json", cache_control=REVALIDATE
    )


@get(WORKER_PATH, include_in_schema=False, opt=_PUBLIC, sync_to_thread=False)
def service_worker(request: Request[Any, Any, Any]) -> Response[bytes]:
    """The service worker script (``web/front/service-worker.js`` after its list of files)."""
    return public_response(
        request,
        worker_body(),
        media_type="text/javascript",
        cache_control=REVALIDATE,
        # Registered for the root scope from the root: no wider scope is asked for.
        headers={"Service-Worker-Allowed": "/"},
    )


@get(OFFLINE_PATH, include_in_schema=False, opt=_PUBLIC, sync_to_thread=False)
def offline(request: Request[Any, Any, Any]) -> Response[bytes]:
    """The page the worker shows instead of a page the network could not bring."""
    return public_response(
        request, offline_body(), media_type="text/html", cache_control=REVALIDATE
    )


def pwa_handlers() -> list[ControllerRouterHandler]:
    return [manifest, service_worker, offline]
