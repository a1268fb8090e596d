"""Password sign-in, sign-out and the life of a server-side session."""

from __future__ import annotations

import asyncio
from typing import Any

from redis.asyncio import Redis
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from safexam.auth.models import User
from safexam.auth.service import create_user
from safexam.auth.signins import SIGNIN_COOKIE
from safexam.core.settings import Settings
from tests.auth.conftest import ClientFactory, browser
from tests.helpers import PASSWORD, csrf, login, make_user


def session_key(settings: Settings, session_id: str) -> str:
    return f"{settings.redis_namespace}:sessions:{session_id}"


def cookie_header(session_id: str) -> dict[str, str]:
    return {"Cookie": f"{SIGNIN_COOKIE}={session_id}"}


def set_cookie_header(response: Any, name: str) -> str:
    for header in response.headers.get_list("set-cookie"):
        if header.startswith(f"{name}="):
            return str(header)
    raise AssertionError(f"no Set-Cookie for {name}: {response.headers}")


async def test_login_me_logout(client: Any, db: AsyncSession) -> None:
    user = await make_user(db, "educator")
    body = await login(client, user.email)
    assert body == {
        "id": str(user.id),
        "email": user.email,
        "name": user.name,
        "role": "educator",
        "organization_id": str(user.organization_id),
    }
    me = await client.get("/api/v1/auth/me")
    assert me.status_code == 200 and me.json()["id"] == str(user.id)
    out = await client.post("/api/v1/auth/logout")
    assert out.status_code == 204
    again = await client.get("/api/v1/auth/me")
    assert again.status_code == 401
    assert again.json()["error"]["code"] == "not_authenticated"


async def test_login_email_is_case_insensitive(client: Any, db: AsyncSession) -> None:
    user = await make_user(db, email="Mixed.Case@College.edu")
    assert user.email == "mixed.case@college.edu"
    body = await login(client, "MIXED.case@college.EDU")
    assert body["id"] == str(user.id)


async def test_wrong_password_and_unknown_email_look_the_same(
    client: Any, db: AsyncSession
) -> None:
    user = await make_user(db)
    await csrf(client)
    wrong = await client.post(
        "/api/v1/auth/login", json={"email": user.email, "password": "not the password"}
    )
    unknown = await client.post(
        "/api/v1/auth/login", json={"email": "nobody@college.edu", "password": PASSWORD}
    )
    for response in (wrong, unknown):
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "invalid_credentials"
        assert SIGNIN_COOKIE not in client.cookies
    assert wrong.json() == unknown.json()
    assert (await client.get("/api/v1/auth/me")).status_code == 401


async def test_disabled_and_password_less_accounts_cannot_sign_in(
    client: Any, db: AsyncSession
) -> None:
    disabled = await make_user(db)
    await db.execute(update(User).where(User.id == disabled.id).values(is_active=False))
    await db.commit()
    google_only = await create_user(
        db, email="g@college.edu", name="G", role="student", oidc_issuer="x", oidc_subject="1"
    )
    await csrf(client)
    # A disabled account is told so, but only to whoever has its password.
    response = await client.post(
        "/api/v1/auth/login", json={"email": disabled.email, "password": PASSWORD}
    )
    assert response.status_code == 403, response.text
    assert response.json()["error"]["code"] == "account_disabled"
    for email, password in (
        (disabled.email, "not the password"),
        (google_only.email, PASSWORD),
    ):
        response = await client.post(
            "/api/v1/auth/login", json={"email": email, "password": password}
        )
        assert response.status_code == 401, response.text
        assert response.json()["error"]["code"] == "invalid_credentials"
    assert SIGNIN_COOKIE not in client.cookies


async def test_logout_deletes_the_server_side_session(
    client: Any, db: AsyncSession, redis: Redis, settings: Settings
) -> None:
    user = await make_user(db)
    await login(client, user.email)
    session_id = client.cookies[SIGNIN_COOKIE]
    assert await redis.exists(session_key(settings, session_id)) == 1

    out = await client.post("/api/v1/auth/logout")
    assert out.status_code == 204
    assert (
        "Max-Age=0" in set_cookie_header(out, SIGNIN_COOKIE)
        or "expires=" in set_cookie_header(out, SIGNIN_COOKIE).lower()
    )
    assert await redis.exists(session_key(settings, session_id)) == 0

    # Someone who kept a copy of the cookie gets nothing from it.
    async with browser(client) as thief:
        replay = await thief.get("/api/v1/auth/me", headers=cookie_header(session_id))
    assert replay.status_code == 401
    assert replay.json()["error"]["code"] == "not_authenticated"


async def test_logout_needs_csrf(client: Any, db: AsyncSession) -> None:
    user = await make_user(db)
    await login(client, user.email)
    del client.headers["X-CSRF-Token"]
    response = await client.post("/api/v1/auth/logout")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "csrf_failed"
    assert (await client.get("/api/v1/auth/me")).status_code == 200


async def test_session_id_rotates_at_login(
    client: Any, db: AsyncSession, redis: Redis, settings: Settings
) -> None:
    user = await make_user(db)
    other = await make_user(db)
    planted = "a" * 64  # an id an attacker fixed in the victim's browser
    client.cookies.set(SIGNIN_COOKIE, planted, domain="testserver.local")
    await login(client, user.email)
    first = client.cookies[SIGNIN_COOKIE]
    assert first != planted
    assert await redis.exists(session_key(settings, planted)) == 0
    async with browser(client) as attacker:
        me = await attacker.get("/api/v1/auth/me", headers=cookie_header(planted))
        assert me.status_code == 401

    # Signing in again (here as someone else) also gets a fresh id and kills the old one.
    await login(client, other.email)
    second = client.cookies[SIGNIN_COOKIE]
    assert second not in (first, planted)
    assert await redis.exists(session_key(settings, first)) == 0
    me = await client.get("/api/v1/auth/me")
    assert me.json()["id"] == str(other.id)


async def test_anonymous_requests_get_no_session(
    client: Any, redis: Redis, settings: Settings
) -> None:
    await csrf(client)
    await client.get("/healthz")
    assert SIGNIN_COOKIE not in client.cookies
    keys = [k async for k in redis.scan_iter(match=f"{settings.redis_namespace}:sessions:*")]
    assert keys == []


async def test_cookie_flags(client: Any, db: AsyncSession) -> None:
    user = await make_user(db)
    csrf_response = await client.get("/api/v1/auth/csrf")
    csrf_cookie = set_cookie_header(csrf_response, "safexam_csrf")
    client.headers["X-CSRF-Token"] = csrf_response.json()["csrf_token"]
    response = await client.post(
        "/api/v1/auth/login", json={"email": user.email, "password": PASSWORD}
    )
    assert response.status_code == 200
    cookie = set_cookie_header(response, SIGNIN_COOKIE)
    attributes = [part.strip().lower() for part in cookie.split(";")]
    assert "httponly" in attributes
    assert "secure" in attributes
    assert "samesite=strict" in attributes
    csrf_attributes = [part.strip().lower() for part in csrf_cookie.split(";")]
    assert "secure" in csrf_attributes and "samesite=strict" in csrf_attributes


async def test_secure_flag_off_only_when_configured(
    client_with: ClientFactory, db: AsyncSession
) -> None:
    user = await make_user(db)
    plain_http = await client_with(base_url="http://127.0.0.1:8000", cookie_secure=False)
    await csrf(plain_http)
    response = await plain_http.post(
        "/api/v1/auth/login", json={"email": user.email, "password": PASSWORD}
    )
    assert response.status_code == 200
    attributes = [p.strip().lower() for p in set_cookie_header(response, SIGNIN_COOKIE).split(";")]
    assert "secure" not in attributes
    assert "httponly" in attributes and "samesite=strict" in attributes


async def test_idle_session_expires(
    client_with: ClientFactory, db: AsyncSession, redis: Redis, settings: Settings
) -> None:
    user = await make_user(db)
    owner = await client_with(session_idle_seconds=2)
    await login(owner, user.email)
    session_id = owner.cookies[SIGNIN_COOKIE]
    # The cookie is sent by hand: the client's jar rounds a short Max-Age down to
    # whole seconds, and what is under test is the server's record.
    async with browser(owner) as tab:
        # Activity keeps it alive past the idle limit ...
        # (Redis reports TTLs in whole seconds and renews only a key with TTL > 0,
        # so the requests come well inside the 2 s limit.)
        for _ in range(4):
            await asyncio.sleep(0.6)
            me = await tab.get("/api/v1/auth/me", headers=cookie_header(session_id))
            assert me.status_code == 200
        # ... and silence ends it, in Redis, not just in the browser.
        await asyncio.sleep(2.6)
        assert await redis.exists(session_key(settings, session_id)) == 0
        me = await tab.get("/api/v1/auth/me", headers=cookie_header(session_id))
        assert me.status_code == 401


async def test_absolute_session_lifetime(
    client_with: ClientFactory, db: AsyncSession, redis: Redis, settings: Settings
) -> None:
    user = await make_user(db)
    owner = await client_with(session_idle_seconds=3600, session_absolute_seconds=1)
    await login(owner, user.email)
    session_id = owner.cookies[SIGNIN_COOKIE]
    assert (await owner.get("/api/v1/auth/me")).status_code == 200
    await asyncio.sleep(2.1)
    expired = await owner.get("/api/v1/auth/me")
    assert expired.status_code == 401
    assert expired.json()["error"]["code"] == "session_expired"
    assert await redis.exists(session_key(settings, session_id)) == 0


async def test_sign_in_hashes_off_the_event_loop(db: AsyncSession) -> None:
    """A real-cost argon2 check must not stall the process: the event loop keeps running."""
    from argon2 import PasswordHasher

    from safexam.auth.service import authenticate

    user = await make_user(db, "student")
    real_cost = PasswordHasher().hash(PASSWORD)  # production parameters, ~0.1 s or more
    await db.execute(update(User).where(User.id == user.id).values(password_hash=real_cost))
    await db.commit()
    sign_in = asyncio.create_task(authenticate(db, user.email, PASSWORD))
    await asyncio.sleep(0)
    ticks = 0
    for _ in range(100_000):
        if sign_in.done():
            break
        await asyncio.sleep(0.005)
        ticks += 1
    signed_in = await sign_in
    assert signed_in is not None and signed_in.id == user.id
    # Hashing on the event loop would have let no tick run until it finished.
    assert ticks >= 3
