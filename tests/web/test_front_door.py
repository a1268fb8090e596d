"""The front door without a browser: the landing page's caching and cookies (over a
real server too), the "Talk to us" form, the operators' list of requests, and the
installable app's manifest, service worker and offline page."""

from __future__ import annotations

import importlib.util
import json
import re
import struct
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from safexam.core.settings import Settings
from safexam.web.assets import STATIC_DIR, assets
from safexam.web.front.landing import LANDING_CACHE
from safexam.web.front.pwa import shell_urls
from safexam.web.headers import CONTENT_SECURITY_POLICY
from tests.factories import make_user
from tests.helpers import login, rows
from tests.live import live_server

PAGE = {"Accept": "text/html,application/xhtml+xml"}
GOOD = {
    "institution": "Riverside Community College",
    "contact_name": "Grace Okafor",
    "email": "Grace.Okafor@Riverside.edu",
    "size": "100_to_1000",
    "message": "Programming courses, about 600 students a term.",
}


async def talk_token(client: Any) -> str:
    page = await client.get("/talk-to-us", headers=PAGE)
    assert page.status_code == 200
    found = re.search(r'name="_csrf_token" value="([^"]+)"', page.text)
    assert found, page.text
    return found.group(1)


# ---------------------------------------------------------------- the landing page


async def test_the_landing_page_is_cached_publicly_and_sets_no_cookie_over_a_real_server(
    settings: Settings,
) -> None:
    """uvicorn and every middleware of the app: a visitor is never handed a cookie."""
    async with live_server(settings) as url, httpx.AsyncClient(base_url=url) as http:
        first = await http.get("/", headers=PAGE)
        assert first.status_code == 200
        assert first.headers["content-type"] == "text/html; charset=utf-8"
        assert first.headers["cache-control"] == LANDING_CACHE
        assert "cookie" in first.headers["vary"].lower()
        assert "set-cookie" not in first.headers
        assert first.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
        assert first.headers["content-encoding"] == "gzip"
        assert first.headers["vary"] == "Accept-Encoding, Cookie"
        etag = first.headers["etag"]
        assert re.fullmatch(r'"[0-9a-f]{32}-gzip"', etag)
        # Uncompressed, the same page is another representation with its own tag.
        plain = await http.get("/", headers={**PAGE, "Accept-Encoding": "identity"})
        assert "content-encoding" not in plain.headers
        assert plain.content == first.content
        assert plain.headers["etag"] == etag.replace("-gzip", "")
        assert "set-cookie" not in plain.headers
        for words in (
            "MCQ, coding and mixed exams",
            "Live monitoring",
            "AI-assisted question authoring",
            "Affordable and self-hostable",
            "How it works",
            'href="/talk-to-us"',
            'href="/sign-in"',
        ):
            assert words in first.text, words
        # Nothing of one visit is in the page: the next visitor gets the same bytes.
        again = await http.get("/", headers=PAGE)
        assert (again.content, again.headers["etag"]) == (first.content, etag)

        unchanged = await http.get("/", headers={**PAGE, "If-None-Match": etag})
        assert unchanged.status_code == 304
        assert unchanged.content == b""
        assert unchanged.headers["etag"] == etag
        assert unchanged.headers["cache-control"] == LANDING_CACHE
        assert "set-cookie" not in unchanged.headers
        listed = await http.get("/", headers={**PAGE, "If-None-Match": f'"x", W/{etag}'})
        assert listed.status_code == 304
        stale = await http.get("/", headers={**PAGE, "If-None-Match": '"something-else"'})
        assert (stale.status_code, stale.content) == (200, first.content)

        # A visitor who has opened a form (and holds its CSRF cookie) is still a visitor.
        await http.get("/talk-to-us", headers=PAGE)
        assert "safexam_csrf" in http.cookies
        later = await http.get("/", headers=PAGE)
        assert "set-cookie" not in later.headers
        assert later.headers["cache-control"] == LANDING_CACHE
        # So is one arriving from a link on another site (a search result).
        async with httpx.AsyncClient(base_url=url) as elsewhere:
            linked = await elsewhere.get(
                "/", headers={**PAGE, "Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate"}
            )
        assert (linked.status_code, linked.content) == (200, first.content)
        assert "set-cookie" not in linked.headers


async def test_signed_in_users_are_sent_on_and_an_ended_sign_in_gets_a_private_copy(
    client: Any, db: AsyncSession
) -> None:
    student = await make_user(db)
    await login(client, student.email)
    home = await client.get("/", headers=PAGE, follow_redirects=False)
    assert (home.status_code, home.headers["location"]) == (303, "/exams")
    assert home.headers["cache-control"] == "private, no-store"
    assert "cookie" in home.headers["vary"].lower()

    client.cookies.set("safexam_session", "ended-long-ago", domain="testserver.local")
    ended = await client.get("/", headers=PAGE, follow_redirects=False)
    assert ended.status_code == 200
    assert "Talk to us" in ended.text
    # The answer deletes the dead cookie, so no cache may keep it for anyone else.
    assert ended.headers["cache-control"] == "private, no-store"
    assert "etag" not in ended.headers


# ---------------------------------------------------------------- Talk to us


async def test_a_request_is_stored_and_listed_for_operators_only(
    client: Any, make_client: Any, db: AsyncSession
) -> None:
    token = await talk_token(client)
    sent = await client.post(
        "/talk-to-us", data={"_csrf_token": token, **GOOD}, headers=PAGE, follow_redirects=False
    )
    assert (sent.status_code, sent.headers["location"]) == (303, "/talk-to-us?sent=1")
    thanks = await client.get(sent.headers["location"], headers=PAGE)
    assert "your request has reached us" in thanks.text
    stored = await rows(
        db, "SELECT institution, contact_name, email, size, message FROM onboarding_requests"
    )
    assert [tuple(r) for r in stored] == [
        (
            "Riverside Community College",
            "Grace Okafor",
            "grace.okafor@riverside.edu",
            "100_to_1000",
            "Programming courses, about 600 students a term.",
        )
    ]

    operator = await make_client()
    await login(operator, (await make_user(db, "operator")).email)
    listed = await operator.get("/operator/onboarding", headers=PAGE)
    assert listed.status_code == 200
    assert listed.headers["cache-control"] == "private, no-store"
    for words in (
        "Riverside Community College",
        "Grace Okafor",
        "mailto:grace.okafor@riverside.edu",
        "100 to 1,000 students",
        "1 request",
    ):
        assert words in listed.text, words

    # An organization's admin too: institutions asking to join are no organization's.
    for role in ("admin", "educator", "student"):
        other = await make_client()
        await login(other, (await make_user(db, role)).email)
        refused = await other.get("/operator/onboarding", headers=PAGE)
        assert refused.status_code == 403, role
        assert "Riverside" not in refused.text
    anonymous = await make_client()
    away = await anonymous.get("/operator/onboarding", headers=PAGE, follow_redirects=False)
    assert away.status_code == 303
    assert away.headers["location"].startswith("/sign-in")


async def test_mistakes_are_told_beside_their_fields_and_nothing_is_stored(
    client: Any, db: AsyncSession
) -> None:
    token = await talk_token(client)
    bad = {
        "_csrf_token": token,
        "institution": "  ",
        "contact_name": "Grace",
        "email": "not an address",
        "size": "enormous",
        "message": "x" * 4001,
    }
    response = await client.post("/talk-to-us", data=bad, headers=PAGE)
    assert response.status_code == 422
    text = response.text
    assert "4 fields need attention" in text
    for field, sentence in (
        ("institution", "Enter the name of your college, school or club."),
        ("email", "Enter an email address, like name@college.edu."),
        ("size", "Choose about how many students would take exams."),
        ("message", "Keep the message under 4000 characters."),
    ):
        assert f'<p class="field-error" id="{field}-error">{sentence}</p>' in text, field
        assert re.search(rf'id="{field}"[^>]*aria-invalid="true"', text), field
    # What was typed stays in the form.
    assert 'value="Grace"' in text
    assert 'value="not an address"' in text
    assert await rows(db, "SELECT 1 FROM onboarding_requests") == []

    forged = await client.post("/talk-to-us", data={**GOOD, "_csrf_token": "forged"}, headers=PAGE)
    assert forged.status_code == 403
    assert await rows(db, "SELECT 1 FROM onboarding_requests") == []


async def test_one_address_may_send_only_a_few_requests_an_hour(
    client: Any, db: AsyncSession
) -> None:
    token = await talk_token(client)
    for n in range(10):
        ok = await client.post(
            "/talk-to-us",
            data={"_csrf_token": token, **GOOD, "email": f"g{n}@riverside.edu"},
            headers=PAGE,
            follow_redirects=False,
        )
        assert ok.status_code == 303, n
    refused = await client.post("/talk-to-us", data={"_csrf_token": token, **GOOD}, headers=PAGE)
    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) > 0
    assert "We already have several requests from your network this hour" in refused.text
    assert 'value="Riverside Community College"' in refused.text
    assert len(await rows(db, "SELECT 1 FROM onboarding_requests")) == 10


# ---------------------------------------------------------------- the installable app


def _png_size(body: bytes) -> tuple[int, int]:
    assert body[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", body[16:24])
    return width, height


async def test_the_manifest_worker_and_offline_page_are_public_and_revalidated(
    client: Any,
) -> None:
    manifest = await client.get("/manifest.webmanifest")
    assert manifest.status_code == 200
    assert manifest.headers["content-type"].startswith("application/manifest+json")
    assert manifest.headers["cache-control"] == "no-cache"
    assert "set-cookie" not in manifest.headers
    body = json.loads(manifest.content)
    assert (body["start_url"], body["scope"], body["display"]) == ("/", "/", "standalone")
    icons = {(icon["sizes"], icon["purpose"]): icon["src"] for icon in body["icons"]}
    assert set(icons) == {(f"{n}x{n}", p) for n in (192, 512) for p in ("any", "maskable")}
    for (sizes, _purpose), src in icons.items():
        icon = await client.get(src)
        assert icon.status_code == 200
        assert icon.headers["content-type"] == "image/png"
        side = int(sizes.split("x")[0])
        assert _png_size(icon.content) == (side, side)

    worker = await client.get("/sw.js")
    assert worker.status_code == 200
    assert worker.headers["content-type"] == "text/javascript; charset=utf-8"
    assert worker.headers["cache-control"] == "no-cache"
    assert "set-cookie" not in worker.headers
    # The worker keeps exactly the hashed files of this deployment, the editor bundle among them.
    shell = json.loads(re.search(r"const SHELL = (\[.*?\]);", worker.text, re.S).group(1))  # type: ignore[union-attr]
    assert shell == shell_urls()
    assert assets.url("vendor/codemirror.js") in shell
    assert assets.url("css/app.css") in shell
    assert 'const OFFLINE_URL = "/offline"' in worker.text
    again = await client.get("/sw.js", headers={"If-None-Match": worker.headers["etag"]})
    assert again.status_code == 304

    offline = await client.get("/offline", headers=PAGE)
    assert offline.status_code == 200
    assert offline.headers["cache-control"] == "no-cache"
    assert "set-cookie" not in offline.headers
    assert "You are offline" in offline.text
    # Every page names the manifest and registers the worker; the policy allows it.
    landing = await client.get("/", headers=PAGE)
    assert '<link rel="manifest" href="/manifest.webmanifest">' in landing.text
    assert assets.url("js/pwa.js") in landing.text
    assert "worker-src 'self'" in landing.headers["content-security-policy"]


def test_the_committed_icons_are_what_the_script_draws() -> None:
    """The PNGs are drawn by scripts/make_icons.py; a hand-edited icon fails here
    (the 192-pixel ones only: drawing the 512-pixel ones takes seconds)."""
    script = Path(__file__).resolve().parents[2] / "scripts" / "make_icons.py"
    spec = importlib.util.spec_from_file_location("make_icons", script)
    assert spec is not None and spec.loader is not None
    make_icons = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make_icons)
    for name, maskable in (("icon-192.png", False), ("icon-maskable-192.png", True)):
        drawn = make_icons.png(192, make_icons.draw(192, maskable=maskable))
        assert drawn == (STATIC_DIR / "img" / name).read_bytes(), name


async def test_operators_page_through_the_requests(client: Any, db: AsyncSession) -> None:
    await db.execute(
        text(
            "INSERT INTO onboarding_requests"
            " (id, institution, contact_name, email, size, created_at)"
            " SELECT gen_random_uuid(), 'College ' || n, 'Contact', 'c' || n || '@college.edu',"
            " 'under_100', now() - n * interval '1 minute' FROM generate_series(1, 51) AS n"
        )
    )
    await db.commit()
    await login(client, (await make_user(db, "operator")).email)
    first = await client.get("/operator/onboarding", headers=PAGE)
    assert "51 requests, page 1 of 2" in first.text
    assert "College 1<" in first.text and "College 51<" not in first.text
    assert 'href="/operator/onboarding?page=2">Next page' in first.text
    second = await client.get("/operator/onboarding?page=2", headers=PAGE)
    assert "51 requests, page 2 of 2" in second.text
    assert "College 51<" in second.text
    assert 'href="/operator/onboarding?page=1">Previous page' in second.text
    wrong = await client.get("/operator/onboarding?page=last", headers=PAGE)
    assert wrong.status_code == 400
