"""The operator's organizations page in a real browser."""

from __future__ import annotations

from playwright.async_api import Page, expect
from sqlalchemy.ext.asyncio import AsyncSession

from tests.factories import PASSWORD, make_organization, make_user
from tests.web.conftest import audit, path_of, sign_in_as


async def test_the_operator_lists_the_organizations(page: Page, db: AsyncSession) -> None:
    riverside = await make_organization(db, "riverside", domains=["riverside.edu"])
    await make_user(db, "educator", organization=riverside)
    await make_user(db, "student", organization=riverside)
    operator = await make_user(db, "operator", name="Olga Operator")

    await sign_in_as(page, operator.email, PASSWORD)
    assert path_of(page) == "/operator/queues"
    await audit(page)
    await page.get_by_role("link", name="Organizations").click()
    assert path_of(page) == "/operator/organizations"
    await expect(page.get_by_role("heading", name="Organizations", level=1)).to_be_visible()
    row = page.get_by_role("row", name=f"{riverside.name} riverside")
    await expect(row).to_contain_text("riverside.edu")
    await expect(row).to_contain_text("Europe/Paris")
    await expect(row.get_by_role("cell").nth(3)).to_have_text("2")
    # The operator's own organization (the default one) is listed too.
    await expect(page.get_by_role("row", name="Default organization default")).to_be_visible()
    await audit(page, "operator-organizations")
