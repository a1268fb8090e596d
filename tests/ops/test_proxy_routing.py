"""deploy/Caddyfile, run by Caddy itself: autosaves go to the `saves` replicas.

The production file is adapted as it is (only the upstreams' host names and
ports, which it reads from the environment, point at two small servers here,
and Caddy's admin endpoint is switched off so parallel tests do not share it).
Each server answers with its own name, so every request shows where the
proxy sent it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from tests.fault_servers import free_port

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(shutil.which("caddy") is None, reason="make setup installs caddy")


class _Named(BaseHTTPRequestHandler):
    """Answers every method with the server's name and the forwarded address it was given."""

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        body = json.dumps(
            {
                "server": self.server.name,  # type: ignore[attr-defined]
                "forwarded_for": self.headers.get("X-Forwarded-For"),
            }
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_PUT = do_POST = do_DELETE = do_PATCH = _answer

    def log_message(self, format: str, *args: object) -> None:
        return


def _serve(name: str) -> tuple[ThreadingHTTPServer, int]:
    port = free_port()
    server = ThreadingHTTPServer(("127.0.0.1", port), _Named)
    server.name = name  # type: ignore[attr-defined]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, port


@pytest.fixture(scope="module")
def proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    api, api_port = _serve("api")
    saves, saves_port = _serve("saves")
    port = free_port()
    env = {
        **os.environ,
        "SAFEXAM_SITE_ADDRESS": f"http://127.0.0.1:{port}",
        "SAFEXAM_API_HOST": "127.0.0.1",
        "SAFEXAM_API_PORT": str(api_port),
        "SAFEXAM_SAVES_HOST": "127.0.0.1",
        "SAFEXAM_SAVES_PORT": str(saves_port),
    }
    adapted = subprocess.run(
        ["caddy", "adapt", "--config", str(ROOT / "deploy" / "Caddyfile")],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    config = json.loads(adapted.stdout)
    config["admin"] = {"disabled": True}
    path = tmp_path_factory.mktemp("caddy") / "caddy.json"
    path.write_text(json.dumps(config))
    caddy = subprocess.Popen(
        ["caddy", "run", "--config", str(path)],
        env={**env, "XDG_DATA_HOME": str(path.parent), "XDG_CONFIG_HOME": str(path.parent)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if caddy.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"caddy did not start: {caddy.stderr.read().decode()[-2000:]}")  # type: ignore[union-attr]
            time.sleep(0.1)
        yield url
    finally:
        caddy.terminate()
        caddy.wait(timeout=10)
        api.shutdown()
        saves.shutdown()


def _served_by(url: str, method: str, path: str) -> str:
    response = httpx.request(method, url + path, json={"x": 1}, timeout=5)
    assert response.status_code == 200, response.text
    server: str = response.json()["server"]
    return server


def test_autosaves_go_to_the_saves_replicas_and_nothing_else_does(proxy: str) -> None:
    session, question = uuid.uuid4(), uuid.uuid4()
    save = f"/api/v1/sessions/{session}/responses/{question}"
    assert _served_by(proxy, "PUT", save) == "saves"
    # Everything else is the API's: reading answers, the list, submitting, pages, files.
    for method, path in [
        ("GET", save),
        ("GET", f"/api/v1/sessions/{session}/responses"),
        ("PUT", f"/api/v1/sessions/{session}/responses"),
        ("PUT", f"{save}/extra"),
        ("POST", f"/api/v1/sessions/{session}/submit"),
        ("POST", f"/api/v1/sessions/{session}/events"),
        ("GET", f"/sessions/{session}"),
        ("PUT", f"/sessions/{session}/responses/{question}"),
        ("GET", "/static/css/app.css"),
        ("GET", "/"),
    ]:
        assert _served_by(proxy, method, path) == "api", (method, path)


def test_the_saves_replicas_get_the_address_the_proxy_saw(proxy: str) -> None:
    """As for the API: the proxy replaces X-Forwarded-For, so a client cannot choose it."""
    save = f"/api/v1/sessions/{uuid.uuid4()}/responses/{uuid.uuid4()}"
    response = httpx.put(
        proxy + save, json={}, headers={"X-Forwarded-For": "203.0.113.9"}, timeout=5
    )
    assert response.json() == {"server": "saves", "forwarded_for": "127.0.0.1"}
