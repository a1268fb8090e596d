"""The operator's organizations page, and joining an organization by invitation, in a browser."""

from __future__ import annotations

import re

from playwright.async_api import Browser, Page, expect
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from safexam.auth.models import User
from safexam.auth.passwords import hash_password
from tests.factories import PASSWORD, enroll, make_exam, make_organization, make_question, make_user
from tests.web.conftest import audit, check_context, new_context, path_of, sign_in_as


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
    browser: Browser, page: Page, db: AsyncSession, server: str
) -> None:
    riverside = await make_organization(db, "riverside")
    admin = await make_user(db, "admin", organization=riverside)
    await sign_in_as(page, admin.email, PASSWORD)
    await audit(page)
    await page.goto("/operator/users")
    await audit(page)
    await page.get_by_label("Their email").fill("eve@riverside.edu")
    await page.get_by_role("button", name="Make an invitation link").click()
    await expect(page.locator("#invitation").get_by_role("status")).to_contain_text(
        "Send this link to eve@riverside.edu. It works once"
    )
    link = await page.get_by_label("Invitation link").input_value()
    assert link.startswith(server + "/join/")
    await audit(page, "users-invitation")

    context = await new_context(browser, server)
    try:
        newcomer = await context.new_page()
        await newcomer.goto(link)
        await expect(
            newcomer.get_by_role("heading", name="Join Organization riverside")
        ).to_be_visible()
        await audit(newcomer, "join")
        await newcomer.get_by_label("Your name").fill("Eve Educator")
        await newcomer.get_by_label("Password (at least 8 characters)").fill("password123")
        await newcomer.get_by_label("Password again").fill("password124")
        await newcomer.get_by_role("button", name="Join").click()
        await expect(newcomer.get_by_text("The two passwords differ.")).to_be_visible()
        await audit(newcomer)
        await newcomer.get_by_label("Password (at least 8 characters)").fill("password123")
        await newcomer.get_by_label("Password again").fill("password123")
        await newcomer.get_by_role("button", name="Join").click()
        await expect(newcomer.get_by_role("heading", name="Exams", level=1)).to_be_visible()
        assert path_of(newcomer) == "/educator/exams"
        await expect(newcomer.get_by_text("Eve Educator")).to_be_visible()
        await audit(newcomer)

        # The link is used up: opened again, it says so in words.
        await newcomer.goto(link)
        await expect(
            newcomer.get_by_role("heading", name="This invitation cannot be used")
        ).to_be_visible()
        await expect(newcomer.get_by_text("has been used already")).to_be_visible()
        await audit(newcomer, "join-used")
    finally:
        await context.close()
    check_context(context)
    joined = await db.scalar(select(User).where(User.email == "eve@riverside.edu"))
    assert joined is not None and joined.role == "educator"
    assert joined.organization_id == riverside.id


async def test_an_admin_imports_students_and_disables_one_during_an_exam(
    browser: Browser, server: str, page: Page, db: AsyncSession
) -> None:
    ours = await make_organization(db, "ours")
    admin = await make_user(db, "admin", name="Ada Admin", organization=ours)
    educator = await make_user(db, "educator", organization=ours)
    exam = await make_exam(db, educator, [await make_question(db, educator)], title="Quiz")

    await sign_in_as(page, admin.email, PASSWORD)
    await audit(page)
    await page.goto("/operator/users")
    await audit(page)
    rows = [f"s{i:03}@ours.edu,Student {i:03},{15 if i % 10 == 0 else ''}" for i in range(200)]
    rows += ["not-an-email,Nobody", "s001@ours.edu,Twice", f"{educator.email},Staff"]
    await page.get_by_label("Students, one a line").fill("\n".join(rows))
    await page.get_by_role("button", name="Import students").click()
    report = page.locator("#import-report")
    await expect(report.get_by_role("status")).to_have_text(
        "200 students added, 0 updated; 3 rows were refused."
    )
    await expect(report.get_by_role("row", name=re.compile("^201"))).to_contain_text(
        "is not an email address"
    )
    await expect(report.get_by_role("row", name=re.compile("^202"))).to_contain_text(
        "already on line 2"
    )
    await expect(report.get_by_role("row", name=re.compile("^203"))).to_contain_text(
        "not a student"
    )
    await audit(page, "users-import-report")

    # One of them sits the exam (they sign in with a password set for the test).
    student = await db.scalar(select(User).where(User.email == "s007@ours.edu"))
    assert student is not None and student.organization_id == ours.id
    student.password_hash = hash_password(PASSWORD)
    await db.commit()
    await enroll(db, exam, student)
    context = await new_context(browser, server)
    try:
        student_page = await context.new_page()
        await sign_in_as(student_page, student.email, PASSWORD)
        await audit(student_page)
        await student_page.goto(f"/exams/{exam.id}")
        await audit(student_page)
        await student_page.get_by_role("button", name="Start exam").click()
        await expect(student_page).to_have_url(re.compile(r"/sessions/"))
        session_path = path_of(student_page)
        await audit(student_page)

        await page.get_by_label("Name or email").fill("s007")
        await page.get_by_role("button", name="Search").click()
        await expect(page.locator("table.data caption")).to_have_text("1 account")
        await audit(page)
        await page.get_by_role("button", name="Disable Student 007").click()
        await expect(page.get_by_role("status")).to_contain_text("signed out everywhere")
        await audit(page)
        # The open exam is over for them at once: the API refuses, the page asks to sign in.
        session_id = session_path.removeprefix("/sessions/")
        state = await context.request.get(f"/api/v1/sessions/{session_id}")
        assert state.status == 401
        await student_page.reload()
        assert path_of(student_page).startswith("/sign-in")
        await audit(student_page)

        # Both changes are on the organization's audit trail, with who made them.
        await page.get_by_role("link", name="Audit").click()
        await expect(page.get_by_role("heading", name="Audit trail", level=1)).to_be_visible()
        disabled = page.get_by_role("row", name=re.compile("user.disable"))
        await expect(disabled).to_contain_text(f"Ada Admin ({admin.email})")
        await expect(disabled).to_contain_text("s007@ours.edu")
        imported = page.get_by_role("row", name=re.compile("users.import"))
        await expect(imported).to_contain_text('"created": 200')
        await audit(page, "audit-trail")
    finally:
        await context.close()
    check_context(context)
