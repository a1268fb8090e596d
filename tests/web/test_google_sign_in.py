"""Arriving from another site in a real browser: back from Google sign-in, and
by a link on another site's page (an LMS, webmail).

The sign-in cookie is SameSite=Strict. The way back from the provider is a
cross-site navigation, and a browser does not send a Strict cookie on it, nor
on the redirects that follow it: without a same-site step, a student who just
signed in with Google lands on the sign-in page again, and so does one who
follows a link to an exam from the course's page. The provider stand-in
runs at ``localhost`` and the app at ``127.0.0.1``: two different sites to
the browser, as accounts.google.com and SafeExam are.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator

import msgspec
import pytest
from playwright.async_api import Browser, BrowserContext, Page, expect
from sqlalchemy.ext.asyncio import AsyncSession

from safexam.core.settings import Settings
from tests.auth.oidc_provider import CLIENT_ID, CLIENT_SECRET, LocalOidcProvider
from tests.factories import PASSWORD, make_user
from tests.helpers import rows
from tests.live import live_server
from tests.web.conftest import Watch, audit, check_context, new_context, path_of, sign_in_as


@pytest.fixture(scope="module")
def provider() -> Iterator[LocalOidcProvider]:
    started = LocalOidcProvider(browser_host="localhost")
    started.start()
    yield started
    started.stop()


@pytest.fixture(scope="module")
async def server(settings: Settings, provider: LocalOidcProvider) -> AsyncIterator[str]:
    """The app with Google sign-in configured against the stand-in provider."""
    with_google = msgspec.structs.replace(
        settings,
        oidc_issuer=provider.issuer,
        oidc_client_id=CLIENT_ID,
        oidc_client_secret=CLIENT_SECRET,
    )
    async with live_server(with_google) as url:
        yield url


async def through_google(page: Page, provider: LocalOidcProvider, email: str) -> None:
    """From My exams (signed out) to the provider's consent page and back."""
    provider.consent_email = email
    await page.goto("/exams")
    assert path_of(page) == "/sign-in?next=%2Fexams"
    await audit(page)
    await page.get_by_role("link", name="Sign in with Google").click()
    await expect(page.get_by_role("heading", name="Choose an account")).to_be_visible()
    assert page.url.startswith("http://localhost:")  # another site than the app's
    await audit(page, "google-consent")
    await page.get_by_role("link", name=f"Continue as {email}").click()


async def test_back_from_google_the_student_is_signed_in(
    page: Page, context: BrowserContext, provider: LocalOidcProvider, db: AsyncSession
) -> None:
    email = f"ada-{uuid.uuid4().hex[:6]}@college.edu"
    await through_google(page, provider, email)
    await expect(page.get_by_role("heading", name="My exams", level=1)).to_be_visible()
    assert path_of(page) == "/exams"
    await audit(page, "google-signed-in")
    # The step between (a page of this site that moves on by itself) is audited
    # in the test below, where it is held still.
    watch: Watch = context.watch  # type: ignore[attr-defined]
    watch.unaudited[:] = [url for url in watch.unaudited if "/signed-in?" not in url]
    # The next page is signed in too: the cookie is the browser's now.
    await page.get_by_role("link", name="Account").click()
    await expect(page.get_by_text(email)).to_be_visible()
    await audit(page)
    users = await rows(db, "SELECT email, role, oidc_subject FROM users")
    assert [(u.email, u.role) for u in users] == [(email, "student")]


async def test_without_scripts_the_way_back_is_one_click(
    browser: Browser, server: str, provider: LocalOidcProvider, db: AsyncSession
) -> None:
    context = await new_context(browser, server)
    try:
        # The step's script never arrives: the page stays and says what to do.
        await context.route("**/static/js/continue.*.js", lambda route: route.abort())
        page = await context.new_page()
        email = f"bo-{uuid.uuid4().hex[:6]}@college.edu"
        await through_google(page, provider, email)
        await expect(page.get_by_role("heading", name="You are signed in")).to_be_visible()
        assert path_of(page).startswith("/signed-in?")
        await audit(page, "google-continue")
        await page.get_by_role("link", name="Continue").click()
        await expect(page.get_by_role("heading", name="My exams", level=1)).to_be_visible()
        await audit(page)
    finally:
        await context.close()
    check_context(context)
    assert len(await rows(db, "SELECT 1 FROM users WHERE email = :e", e=email)) == 1


async def test_a_link_from_another_site_opens_signed_in(
    page: Page,
    context: BrowserContext,
    browser: Browser,
    server: str,
    provider: LocalOidcProvider,
    db: AsyncSession,
) -> None:
    student = await make_user(db, "student")
    await page.goto("/sign-in")
    await audit(page)
    await page.get_by_label("Email").fill(student.email)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("heading", name="My exams", level=1)).to_be_visible()
    await audit(page)

    targets = ("/exams", "/sign-in?next=%2Fexams")
    for target in targets:
        await page.goto(provider.link_url(f"{server}{target}"))
        await audit(page, "another-site")
        await page.get_by_role("link", name="Open the exam").click()
        await expect(page.get_by_role("heading", name="My exams", level=1)).to_be_visible()
        assert path_of(page) == "/exams", target
        await audit(page)
    # The same-site step, served at the link's own address, moved on by itself
    # (it is audited held still in the test above).
    watch: Watch = context.watch  # type: ignore[attr-defined]
    watch.unaudited[:] = [u for u in watch.unaudited if u not in {server + t for t in targets}]

    # The site's root from elsewhere is the landing page, the same for everyone
    # (shared caches keep it): the way on is one click.
    await page.goto(provider.link_url(f"{server}/"))
    await audit(page)
    await page.get_by_role("link", name="Open the exam").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text(
        "Online exams your college can afford to run"
    )
    await audit(page)
    await page.get_by_role("banner").get_by_role("link", name="Sign in").click()
    await expect(page.get_by_role("heading", name="My exams", level=1)).to_be_visible()
    await audit(page)

    # Signed out, the same link leads to the sign-in page, and back to the exam list after.
    signed_out = await new_context(browser, server)
    try:
        other = await signed_out.new_page()
        await other.goto(provider.link_url(f"{server}/exams"))
        await audit(other)
        await other.get_by_role("link", name="Open the exam").click()
        await expect(other.get_by_role("heading", name="Sign in", level=1)).to_be_visible()
        assert path_of(other) == "/sign-in?next=%2Fexams"
        await audit(other)
        watch = signed_out.watch  # type: ignore[attr-defined]
        watch.unaudited[:] = [u for u in watch.unaudited if not u.endswith("/exams")]
    finally:
        await signed_out.close()
    check_context(signed_out)


async def test_an_educator_links_google_from_the_account_page(
    page: Page, context: BrowserContext, provider: LocalOidcProvider, db: AsyncSession
) -> None:
    educator = await make_user(db, "educator")
    await sign_in_as(page, educator.email, PASSWORD)
    await audit(page)
    await page.goto("/account")
    await audit(page)
    provider.consent_email = "prof.personal@college.edu"
    await page.get_by_role("link", name="Link Google account").click()
    await expect(page.get_by_role("heading", name="Choose an account")).to_be_visible()
    await audit(page)
    await page.get_by_role("link", name="Continue as prof.personal@college.edu").click()
    await expect(page.get_by_role("heading", name="Your account", level=1)).to_be_visible()
    assert path_of(page) == "/account"
    await audit(page)
    watch: Watch = context.watch  # type: ignore[attr-defined]
    watch.unaudited[:] = [url for url in watch.unaudited if "/signed-in?" not in url]
    [linked] = await rows(db, "SELECT oidc_subject FROM users WHERE id = :u", u=educator.id)
    assert linked.oidc_subject is not None


async def test_a_failed_google_sign_in_is_a_page_in_words(
    page: Page, browser: Browser, server: str, provider: LocalOidcProvider, db: AsyncSession
) -> None:
    """The way back from Google opened in another browser (a link copied across) is
    refused, and that browser gets a page saying why, with the way to sign in."""
    email = f"cy-{uuid.uuid4().hex[:6]}@college.edu"
    provider.consent_email = email
    await page.goto("/sign-in")
    await audit(page)
    await page.get_by_role("link", name="Sign in with Google").click()
    await expect(page.get_by_role("heading", name="Choose an account")).to_be_visible()
    await audit(page, "google-consent")
    back = await page.get_by_role("link", name=f"Continue as {email}").get_attribute("href")
    assert back is not None
    other = await new_context(browser, server)
    try:
        elsewhere = await other.new_page()
        response = await elsewhere.goto(back)
        assert response is not None and response.status == 400
        await expect(
            elsewhere.get_by_role("heading", name="Sign-in with Google did not work", level=1)
        ).to_be_visible()
        await expect(
            elsewhere.get_by_text("started in another browser. Go back to the sign-in page")
        ).to_be_visible()
        await audit(elsewhere, "google-sign-in-failed")
        await elsewhere.get_by_role("link", name="Go to sign in").click()
        await expect(elsewhere.get_by_role("heading", name="Sign in", level=1)).to_be_visible()
        await audit(elsewhere)
    finally:
        await other.close()
    check_context(other)
    assert await rows(db, "SELECT 1 FROM users WHERE email = :e", e=email) == []
