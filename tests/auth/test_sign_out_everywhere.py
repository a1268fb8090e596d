"""Sign out everywhere: every sign-in of a user ends, on every browser; other
users' sign-ins do not."""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession

from safexam.auth.signins import SIGNIN_COOKIE
from safexam.core.settings import Settings
from tests.helpers import csrf, login, make_user


def signin_key(settings: Settings, client: Any) -> str:
    return f"{settings.redis_namespace}:sessions:{client.cookies[SIGNIN_COOKIE]}"


async def test_logout_all_ends_every_sign_in_of_the_user_only(
    make_client: Any, db: AsyncSession, redis: Redis, settings: Settings
) -> None:
    user = await make_user(db)
    other = await make_user(db)
    laptop, phone, library, someone_else = [await make_client() for _ in range(4)]
    for browser in (laptop, phone, library):
        await login(browser, user.email)
    await login(someone_else, other.email)
    keys = [signin_key(settings, b) for b in (laptop, phone, library)]
    assert await redis.exists(*keys) == 3
    index = f"{settings.redis_namespace}:signins_of:{user.id}"
    assert await redis.scard(index) == 3
    # The index lives as long as a sign-in can (its absolute lifetime).
    assert 0 < await redis.ttl(index) <= settings.session_absolute_seconds

    out = await phone.post("/api/v1/auth/logout-all")
    assert out.status_code == 204, out.text

    assert await redis.exists(*keys) == 0
    assert await redis.exists(index) == 0
    for browser in (laptop, phone, library):
        me = await browser.get("/api/v1/auth/me")
        assert me.status_code == 401, me.text
    assert (await someone_else.get("/api/v1/auth/me")).status_code == 200

    # Signing in again works, and is indexed afresh.
    await login(laptop, user.email)
    assert (await laptop.get("/api/v1/auth/me")).status_code == 200
    assert await redis.smembers(index) == {laptop.cookies[SIGNIN_COOKIE].encode()}


async def test_logout_all_needs_a_sign_in_and_the_csrf_token(client: Any, db: AsyncSession) -> None:
    await csrf(client)
    anonymous = await client.post("/api/v1/auth/logout-all")
    assert anonymous.status_code == 401
    user = await make_user(db)
    await login(client, user.email)
    del client.headers["X-CSRF-Token"]
    forged = await client.post("/api/v1/auth/logout-all")
    assert forged.status_code == 403
    assert (await client.get("/api/v1/auth/me")).status_code == 200
