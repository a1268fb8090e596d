"""The operator's organizations page, and joining an organization by invitation, in a browser."""

from __future__ import annotations

from playwright.async_api import Page, expect
from sqlalchemy.ext.asyncio import AsyncSession

from safexam.auth.guards import Principal
from safexam.auth.invitations import InvitationIn, create_invitation
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


async def test_an_invited_educator_joins_through_the_link(
    page: Page, db: AsyncSession, server: str
) -> None:
    riverside = await make_organization(db, "riverside")
    admin = await make_user(db, "admin", organization=riverside)
    invited = await create_invitation(
        db,
        InvitationIn(email="eve@riverside.edu"),
        Principal(
            id=admin.id,
            email=admin.email,
            name=admin.name,
            role="admin",
            organization_id=riverside.id,
        ),
        base_url=server,
    )
    await page.goto(invited.url)
    await expect(page.get_by_role("heading", name="Join Organization riverside")).to_be_visible()
    await audit(page, "join")
    await page.get_by_label("Your name").fill("Eve Educator")
    await page.get_by_label("Password (at least 8 characters)").fill("password123")
    await page.get_by_label("Password again").fill("password124")
    await page.get_by_role("button", name="Join").click()
    await expect(page.get_by_text("The two passwords differ.")).to_be_visible()
    await audit(page)
    await page.get_by_label("Password (at least 8 characters)").fill("password123")
    await page.get_by_label("Password again").fill("password123")
    await page.get_by_role("button", name="Join").click()
    await expect(page.get_by_role("heading", name="Exams", level=1)).to_be_visible()
    assert path_of(page) == "/educator/exams"
    await expect(page.get_by_text("Eve Educator")).to_be_visible()
    await audit(page)

    # The link is used up: opened again, it says so in words.
    await page.goto(invited.url)
    await expect(page.get_by_role("heading", name="This invitation cannot be used")).to_be_visible()
    await expect(page.get_by_text("has been used already")).to_be_visible()
    await audit(page, "join-used")
