"""Failed sign-ins are counted in Redis per (email, address), per address and per email."""

from __future__ import annotations

from typing import Any

from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy.ext.asyncio import AsyncSession

from tests.auth.conftest import ClientFactory, browser
from tests.helpers import PASSWORD, csrf, make_user

WINDOW = 900


async def attempt(client: Any, email: str, password: str) -> Any:
    if "X-CSRF-Token" not in client.headers:
        await csrf(client)
    return await client.post("/api/v1/auth/login", json={"email": email, "password": password})


def assert_limited(response: Any) -> None:
    assert response.status_code == 429, response.text
    assert response.json()["error"]["code"] == "rate_limited"
    retry_after = int(response.headers["Retry-After"])
    assert 0 < retry_after <= WINDOW
    assert response.json()["error"]["details"]["retry_after"] == retry_after


async def limited_app(client_with: ClientFactory) -> AsyncTestClient[Litestar]:
    return await client_with(
        login_max_failures_per_email=3,
        login_max_failures_per_ip=6,
        login_failure_window_seconds=WINDOW,
    )


async def test_repeated_failures_for_one_email_get_429(
    client_with: ClientFactory, db: AsyncSession
) -> None:
    user = await make_user(db)
    owner = await limited_app(client_with)
    async with browser(owner, "203.0.113.9") as attacker:
        for _ in range(3):
            assert (await attempt(attacker, user.email, "wrong guess")).status_code == 401
        assert_limited(await attempt(attacker, user.email, "wrong guess"))
        # Locked means locked: even the right password is refused from there.
        assert_limited(await attempt(attacker, user.email, PASSWORD))


async def test_many_emails_from_one_address_get_429(
    client_with: ClientFactory, db: AsyncSession
) -> None:
    owner = await limited_app(client_with)
    victim = await make_user(db)
    async with browser(owner, "203.0.113.10") as sprayer:
        for n in range(6):
            response = await attempt(sprayer, f"guess{n}@college.edu", "Winter2026!")
            assert response.status_code == 401, response.text
        # No single email reached its limit, but the address did: a wrong password is refused.
        assert_limited(await attempt(sprayer, victim.email, "Winter2026!"))
    # Other addresses are not affected.
    async with browser(owner, "198.51.100.20") as bystander:
        assert (await attempt(bystander, victim.email, PASSWORD)).status_code == 200


async def test_correct_password_elsewhere_does_not_reset_the_attackers_count(
    client_with: ClientFactory, db: AsyncSession
) -> None:
    user = await make_user(db)
    owner = await limited_app(client_with)
    async with (
        browser(owner, "203.0.113.11") as attacker,
        browser(owner, "198.51.100.21") as student,
    ):
        for _ in range(2):
            assert (await attempt(attacker, user.email, "wrong guess")).status_code == 401
        assert (await attempt(student, user.email, PASSWORD)).status_code == 200
        assert (await attempt(attacker, user.email, "wrong guess")).status_code == 401
        assert_limited(await attempt(attacker, user.email, "wrong guess"))
        # The real user, on their own machine, is not locked out by the attacker.
        assert (await attempt(student, user.email, PASSWORD)).status_code == 200


async def test_success_clears_only_your_own_failures(
    client_with: ClientFactory, db: AsyncSession
) -> None:
    user = await make_user(db)
    owner = await limited_app(client_with)
    async with browser(owner, "198.51.100.22") as student:
        for _ in range(2):
            assert (await attempt(student, user.email, "typo")).status_code == 401
        assert (await attempt(student, user.email, PASSWORD)).status_code == 200
        # Two typos, a success, two more typos: still under the limit of three.
        for _ in range(2):
            assert (await attempt(student, user.email, "typo")).status_code == 401
        assert (await attempt(student, user.email, PASSWORD)).status_code == 200


async def test_default_limits_apply_on_the_standard_app(client: Any, db: AsyncSession) -> None:
    user = await make_user(db)
    statuses = [(await attempt(client, user.email, "nope")).status_code for _ in range(5)]
    assert statuses == [401] * 5
    assert_limited(await attempt(client, user.email, "nope"))


async def test_one_email_guessed_from_many_addresses_gets_429(
    client_with: ClientFactory, db: AsyncSession
) -> None:
    user = await make_user(db)
    owner = await limited_app(client_with)
    # Limit per email over all addresses: ten times the per-pair limit of three.
    for n in range(30):
        async with browser(owner, f"192.0.2.{n + 1}") as bot:
            assert (await attempt(bot, user.email, f"guess {n}")).status_code == 401
    async with browser(owner, "192.0.2.200") as bot:
        assert_limited(await attempt(bot, user.email, "guess 31"))


async def test_a_classroom_behind_one_address_is_never_locked_out(
    client_with: ClientFactory, db: AsyncSession
) -> None:
    """Twenty failures on twenty emails from one address (a room behind NAT at exam
    start), then a student with the right password signs in; a wrong one is still 429."""
    owner = await limited_app(client_with)
    students = [await make_user(db) for _ in range(3)]
    async with browser(owner, "203.0.113.30") as room:
        for n in range(20):
            response = await attempt(room, f"typo{n}@college.edu", "not it")
            assert response.status_code in (401, 429), response.text
        assert_limited(await attempt(room, students[0].email, "not it either"))
        for student in students:
            response = await attempt(room, student.email, PASSWORD)
            assert response.status_code == 200, response.text
    # The per-email limit still binds: three wrong guesses at one account, then even
    # the right password waits, from that address.
    async with browser(owner, "203.0.113.31") as guesser:
        for _ in range(3):
            await attempt(guesser, students[1].email, "guess")
        assert_limited(await attempt(guesser, students[1].email, PASSWORD))
