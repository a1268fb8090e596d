"""The organization page in a browser: its admin sets the time zone and the default
time allowed, and an educator's New exam form starts from them."""

from __future__ import annotations

from playwright.async_api import Browser, Page, expect
from sqlalchemy.ext.asyncio import AsyncSession

from tests.factories import PASSWORD, make_organization, make_user
from tests.web.conftest import audit, check_context, new_context, path_of, sign_in_as


async def test_an_admin_sets_the_defaults_a_new_exam_starts_from(
    browser: Browser, page: Page, db: AsyncSession, server: str
) -> None:
    college = await make_organization(db, "riverside")
    await make_organization(db, "hillside", domains=["hillside.edu"])
    admin = await make_user(db, "admin", organization=college)
    educator = await make_user(db, "educator", organization=college)

    await sign_in_as(page, admin.email, PASSWORD)
    await audit(page)
    await page.get_by_role("link", name="Organization", exact=True).click()
    assert path_of(page) == "/operator/organization"
    await expect(page.get_by_role("heading", name="Organization", level=1)).to_be_visible()
    await expect(page.get_by_label("Time zone")).to_have_value("Europe/Paris")
    await audit(page, "organization-settings")

    # Another organization's domain is refused, in words beside the field.
    await page.get_by_label("Email domains for Google sign-in").fill("riverside.edu\nhillside.edu")
    await page.get_by_role("button", name="Save settings").click()
    domains = page.get_by_label("Email domains for Google sign-in")
    await expect(domains).to_have_attribute("aria-invalid", "true")
    await expect(
        page.get_by_text("hillside.edu already belongs to another organization.")
    ).to_be_visible()
    await audit(page, "organization-settings-error")

    await domains.fill("riverside.edu")
    await page.get_by_label("Time zone").fill("America/Chicago")
    await page.get_by_label("Time allowed (minutes)").fill("75")
    await page.get_by_role("button", name="Save settings").click()
    await expect(page.get_by_role("status")).to_contain_text("The settings were saved.")
    await expect(page.get_by_label("Time zone")).to_have_value("America/Chicago")
    await expect(page.get_by_label("Time allowed (minutes)")).to_have_value("75")
    await audit(page)

    context = await new_context(browser, server)
    try:
        teacher = await context.new_page()
        await sign_in_as(teacher, educator.email, PASSWORD)
        await audit(teacher)
        await expect(teacher.get_by_role("link", name="Organization", exact=True)).to_have_count(0)
        await teacher.goto("/educator/exams/new")
        await expect(teacher.get_by_label("Time allowed (minutes)")).to_have_value("75")
        await audit(teacher, "new-exam-defaults")
        check_context(context)
    finally:
        await context.close()
