"""The account page and "Sign out everywhere", in two real browsers."""

from __future__ import annotations

from playwright.async_api import Browser, BrowserContext, Page, expect
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession

from safexam.auth.signins import SIGNIN_COOKIE
from safexam.core.settings import Settings
from tests.factories import PASSWORD, make_user
from tests.web.conftest import audit, check_context, new_context, path_of


async def sign_in(page: Page, email: str) -> None:
    await page.goto("/sign-in")
    await audit(page)
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("heading", name="My exams", level=1)).to_be_visible()
    await audit(page)


async def signin_id(context: BrowserContext) -> str:
    return next(c["value"] for c in await context.cookies() if c["name"] == SIGNIN_COOKIE)


async def test_sign_out_everywhere_signs_the_other_browser_out(
    browser: Browser,
    server: str,
    page: Page,
    context: BrowserContext,
    db: AsyncSession,
    redis: Redis,
    settings: Settings,
) -> None:
    student = await make_user(db, "student", name="Ada Student")
    other_student = await make_user(db, "student")
    await sign_in(page, student.email)
    phone_context = await new_context(browser, server)
    bystander_context = await new_context(browser, server)
    try:
        phone = await phone_context.new_page()
        await sign_in(phone, student.email)
        bystander = await bystander_context.new_page()
        await sign_in(bystander, other_student.email)
        ids = [await signin_id(c) for c in (context, phone_context, bystander_context)]
        keys = [f"{settings.redis_namespace}:sessions:{i}" for i in ids]
        assert await redis.exists(*keys) == 3

        await page.get_by_role("link", name="Account").click()
        assert path_of(page) == "/account"
        await expect(page.get_by_role("heading", name="Your account", level=1)).to_be_visible()
        await expect(page.get_by_text(student.email)).to_be_visible()
        await audit(page, "account")
        await page.get_by_role("button", name="Sign out everywhere").click()
        await expect(page.get_by_role("status")).to_have_text(
            "You have signed out on every browser and device."
        )
        assert path_of(page) == "/sign-in?signed_out=everywhere"
        await audit(page, "signed-out-everywhere")

        # The other browser of the same student lands on the sign-in page.
        await phone.goto("/exams")
        assert path_of(phone).startswith("/sign-in?next=%2Fexams")
        await expect(phone.get_by_role("heading", name="Sign in", level=1)).to_be_visible()
        await audit(phone)
        # Both records are gone from the store; the other student's is not.
        assert [await redis.exists(k) for k in keys] == [0, 0, 1]
        await bystander.goto("/exams")
        assert path_of(bystander) == "/exams"
        await audit(bystander)
    finally:
        await phone_context.close()
        await bystander_context.close()
    check_context(phone_context)
    check_context(bystander_context)
