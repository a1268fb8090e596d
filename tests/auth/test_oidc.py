"""Google sign-in against a local OpenID Connect provider (keys generated per test run)."""

from __future__ import annotations

import html
import json
import re
import socket
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from safexam.auth.models import User
from safexam.auth.oidc import OIDC_COOKIE, pkce_challenge
from safexam.auth.signins import SIGNIN_COOKIE
from safexam.core.settings import Settings
from tests.auth.conftest import ClientFactory, browser
from tests.auth.oidc_provider import CLIENT_ID, CLIENT_SECRET, LocalOidcProvider, new_key
from tests.factories import enroll, make_exam, make_organization
from tests.helpers import csrf, login, make_user

LOGIN = "/api/v1/auth/oidc/login"
CALLBACK = "/api/v1/auth/oidc/callback"


@pytest.fixture(scope="session")
def provider() -> Iterator[LocalOidcProvider]:
    server = LocalOidcProvider()
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def other_key() -> Any:
    return new_key()


@pytest.fixture
async def oidc(
    provider: LocalOidcProvider, client_with: ClientFactory
) -> AsyncTestClient[Litestar]:
    provider.reset()
    return await client_with(
        oidc_issuer=provider.issuer,
        oidc_client_id=CLIENT_ID,
        oidc_client_secret=CLIENT_SECRET,
    )


async def begin(
    client: Any, provider: LocalOidcProvider, next_path: str | None = None
) -> dict[str, str]:
    """Start sign-in; returns the parameters the browser carries to the issuer."""
    params = {"next": next_path} if next_path else None
    response = await client.get(LOGIN, params=params, follow_redirects=False)
    assert response.status_code == 302, response.text
    location = urlsplit(response.headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == f"{provider.issuer}/authorize"
    return {k: v[0] for k, v in parse_qs(location.query).items()}


async def finish(client: Any, params: dict[str, str], code: str, state: str | None = None) -> Any:
    query = {"code": code, "state": state if state is not None else params["state"]}
    return await client.get(CALLBACK, params=query, follow_redirects=False)


async def assert_signed_out(client: Any) -> None:
    me = await client.get("/api/v1/auth/me")
    assert me.status_code == 401


def assert_error(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    assert error["code"] == code, error
    return error


async def test_success_creates_a_student(
    oidc: Any, provider: LocalOidcProvider, db: AsyncSession
) -> None:
    params = await begin(oidc, provider, next_path="/exams?tab=upcoming")
    assert params["response_type"] == "code"
    assert params["client_id"] == CLIENT_ID
    assert "openid" in params["scope"].split() and "email" in params["scope"].split()
    assert params["code_challenge_method"] == "S256"
    assert len(params["state"]) >= 32 and len(params["nonce"]) >= 32
    assert params["redirect_uri"] == f"https://testserver.local{CALLBACK}"

    code = provider.authorize(params, email="New.Student@College.edu", subject="g-42")
    response = await finish(oidc, params, code)
    assert response.status_code == 303, response.text
    # Through the same-site step that carries the Strict cookie (tests/web/test_google_sign_in.py).
    assert response.headers["location"] == "/signed-in?next=%2Fexams%3Ftab%3Dupcoming"
    assert oidc.cookies.get(SIGNIN_COOKIE)
    assert provider.token_errors == []  # PKCE verifier, redirect URI and client auth all matched

    me = await oidc.get("/api/v1/auth/me")
    assert me.status_code == 200, me.text
    assert me.json()["email"] == "new.student@college.edu"
    assert me.json()["role"] == "student"
    assert me.json()["name"] == "Test Student"
    user = (await db.execute(select(User).where(User.oidc_subject == "g-42"))).scalar_one()
    assert user.oidc_issuer == provider.issuer
    assert user.password_hash is None
    assert user.last_login_at is not None


async def test_second_sign_in_finds_the_same_user(
    oidc: Any, provider: LocalOidcProvider, db: AsyncSession
) -> None:
    ids = []
    for email in ("s@college.edu", "renamed@college.edu"):
        params = await begin(oidc, provider)
        response = await finish(oidc, params, provider.authorize(params, email=email, subject="7"))
        assert response.status_code == 303, response.text
        assert response.headers["location"] == "/signed-in?next=%2F"
        ids.append((await oidc.get("/api/v1/auth/me")).json()["id"])
    # The subject, not the (changed) address, identifies the person.
    assert ids[0] == ids[1]
    users = (await db.execute(select(User))).scalars().all()
    assert len(users) == 1


async def test_an_existing_student_account_is_linked_by_email(
    oidc: Any, provider: LocalOidcProvider, db: AsyncSession
) -> None:
    student = await make_user(db, "student", email="pupil@college.edu")
    params = await begin(oidc, provider)
    response = await finish(
        oidc, params, provider.authorize(params, email="pupil@college.edu", subject="p-1")
    )
    assert response.status_code == 303, response.text
    me = (await oidc.get("/api/v1/auth/me")).json()
    assert me["id"] == str(student.id) and me["role"] == "student"
    await db.refresh(student)
    assert (student.oidc_issuer, student.oidc_subject) == (provider.issuer, "p-1")

    # A different Google identity holding the same address later is refused.
    async with browser(oidc) as other:
        params = await begin(other, provider)
        response = await finish(
            other, params, provider.authorize(params, email="pupil@college.edu", subject="p-2")
        )
        assert_error(response, 409, "oidc_account_conflict")


@pytest.mark.parametrize("role", ["educator", "admin"])
async def test_a_staff_account_is_never_linked_by_email(
    oidc: Any, provider: LocalOidcProvider, db: AsyncSession, role: str
) -> None:
    """Whoever holds a staff member's address at the provider must not become them."""
    staff = await make_user(db, role, email="prof@college.edu")
    params = await begin(oidc, provider)
    response = await finish(
        oidc, params, provider.authorize(params, email="prof@college.edu", subject="new-sub")
    )
    error = assert_error(response, 409, "oidc_link_required")
    assert "Account page" in error["message"]
    await assert_signed_out(oidc)
    await db.refresh(staff)
    assert staff.oidc_subject is None


async def test_staff_link_their_identity_from_a_signed_in_session(
    oidc: Any, provider: LocalOidcProvider, db: AsyncSession
) -> None:
    educator = await make_user(db, "educator", email="prof@college.edu")
    # Linking needs a sign-in: anonymous, it is refused before the issuer is visited.
    refused = await oidc.get(LOGIN, params={"link": "true"}, follow_redirects=False)
    assert refused.status_code == 401, refused.text
    await login(oidc, educator.email)
    response = await oidc.get(
        LOGIN, params={"link": "true", "next": "/account"}, follow_redirects=False
    )
    assert response.status_code == 302, response.text
    params = {k: v[0] for k, v in parse_qs(urlsplit(response.headers["location"]).query).items()}
    # The Google address need not be the account's: the signed-in user chose to link it.
    code = provider.authorize(params, email="prof.personal@college.edu", subject="g-prof")
    response = await finish(oidc, params, code)
    assert response.status_code == 303, response.text
    assert response.headers["location"] == "/signed-in?next=%2Faccount"
    await db.refresh(educator)
    assert (educator.oidc_issuer, educator.oidc_subject) == (provider.issuer, "g-prof")

    # From then on, Google signs in as the educator, in any browser.
    async with browser(oidc) as elsewhere:
        params = await begin(elsewhere, provider)
        code = provider.authorize(params, email="prof.personal@college.edu", subject="g-prof")
        assert (await finish(elsewhere, params, code)).status_code == 303
        me = (await elsewhere.get("/api/v1/auth/me")).json()
        assert me["id"] == str(educator.id) and me["role"] == "educator"

    # An identity that already signs in to someone else cannot be linked a second time.
    other = await make_user(db, "educator")
    async with browser(oidc) as second:
        await login(second, other.email)
        response = await second.get(LOGIN, params={"link": "true"}, follow_redirects=False)
        params = {
            k: v[0] for k, v in parse_qs(urlsplit(response.headers["location"]).query).items()
        }
        code = provider.authorize(params, email="prof.personal@college.edu", subject="g-prof")
        assert_error(await finish(second, params, code), 409, "oidc_account_conflict")
    await db.refresh(other)
    assert other.oidc_subject is None


async def test_first_sign_in_links_pre_enrollments(
    oidc: Any, provider: LocalOidcProvider, db: AsyncSession
) -> None:
    educator = await make_user(db, "educator")
    now = datetime.now(UTC)
    exam = await make_exam(
        db,
        educator,
        [],
        title="Midterm",
        opens_at=now,
        closes_at=now + timedelta(hours=2),
        status="draft",
    )
    enrollment = await enroll(db, exam, "enrolled@college.edu")

    params = await begin(oidc, provider)
    response = await finish(oidc, params, provider.authorize(params, email="enrolled@college.edu"))
    assert response.status_code == 303, response.text
    await db.refresh(enrollment)
    assert str(enrollment.user_id) == (await oidc.get("/api/v1/auth/me")).json()["id"]


async def test_bad_signature(
    oidc: Any, provider: LocalOidcProvider, db: AsyncSession, other_key: Any
) -> None:
    # Same key id as the issuer's real key, different private key: a forgery.
    params = await begin(oidc, provider)
    response = await finish(oidc, params, provider.authorize(params, signing_key=other_key))
    error = assert_error(response, 401, "oidc_invalid_token")
    assert error["details"]["reason"] == "signature"
    await assert_signed_out(oidc)
    assert (await db.execute(select(User))).scalars().all() == []


async def test_key_the_issuer_never_published(
    oidc: Any, provider: LocalOidcProvider, other_key: Any
) -> None:
    params = await begin(oidc, provider)
    code = provider.authorize(params, signing_key=other_key, kid="attacker-key")
    error = assert_error(await finish(oidc, params, code), 401, "oidc_invalid_token")
    assert error["details"]["reason"] == "unknown_key"
    await assert_signed_out(oidc)


async def test_wrong_audience(oidc: Any, provider: LocalOidcProvider) -> None:
    params = await begin(oidc, provider)
    code = provider.authorize(params, aud="some-other-app")
    error = assert_error(await finish(oidc, params, code), 401, "oidc_invalid_token")
    assert error["details"]["reason"] == "audience"
    await assert_signed_out(oidc)


async def test_wrong_issuer(oidc: Any, provider: LocalOidcProvider) -> None:
    params = await begin(oidc, provider)
    code = provider.authorize(params, iss="https://accounts.example.net")
    error = assert_error(await finish(oidc, params, code), 401, "oidc_invalid_token")
    assert error["details"]["reason"] == "issuer"


async def test_expired_token(oidc: Any, provider: LocalOidcProvider) -> None:
    params = await begin(oidc, provider)
    an_hour_ago = int(time.time()) - 3600
    code = provider.authorize(params, iat=an_hour_ago - 600, exp=an_hour_ago)
    error = assert_error(await finish(oidc, params, code), 401, "oidc_invalid_token")
    assert error["details"]["reason"] == "expired"
    await assert_signed_out(oidc)


async def test_token_without_expiry(oidc: Any, provider: LocalOidcProvider) -> None:
    params = await begin(oidc, provider)
    code = provider.authorize(params, exp=None)
    assert_error(await finish(oidc, params, code), 401, "oidc_invalid_token")


async def test_nonce_mismatch(oidc: Any, provider: LocalOidcProvider) -> None:
    params = await begin(oidc, provider)
    code = provider.authorize(params, nonce="a-nonce-from-another-attempt")
    error = assert_error(await finish(oidc, params, code), 401, "oidc_invalid_token")
    assert error["details"]["reason"] == "nonce"
    await assert_signed_out(oidc)


async def test_missing_nonce(oidc: Any, provider: LocalOidcProvider) -> None:
    params = await begin(oidc, provider)
    code = provider.authorize(params, nonce=None)
    error = assert_error(await finish(oidc, params, code), 401, "oidc_invalid_token")
    assert error["details"]["reason"] == "nonce"


async def test_state_mismatch(oidc: Any, provider: LocalOidcProvider) -> None:
    params = await begin(oidc, provider)
    code = provider.authorize(params)
    assert_error(await finish(oidc, params, code, state="forged-state"), 400, "oidc_state_mismatch")
    assert_error(await finish(oidc, params, code, state=""), 400, "oidc_state_mismatch")
    await assert_signed_out(oidc)
    # The code was never exchanged: the app stopped before the token endpoint.
    assert not any(line.startswith("POST /token") for line in provider.requests)


async def test_state_is_single_use(oidc: Any, provider: LocalOidcProvider) -> None:
    params = await begin(oidc, provider)
    assert (await finish(oidc, params, provider.authorize(params))).status_code == 303
    replay = await finish(oidc, params, provider.authorize(params))
    assert_error(replay, 400, "oidc_state_mismatch")


async def test_state_from_another_browser_is_refused(
    oidc: Any, provider: LocalOidcProvider
) -> None:
    # Login CSRF: an attacker starts a flow and lures the victim to its callback URL.
    params = await begin(oidc, provider)
    code = provider.authorize(params, email="attacker@college.edu")
    async with browser(oidc) as victim:
        response = await finish(victim, params, code)
        assert_error(response, 400, "oidc_state_mismatch")
        assert (await victim.get("/api/v1/auth/me")).status_code == 401
    # The attacker's refused attempt did not burn the pending sign-in of its own browser.
    assert (await finish(oidc, params, code)).status_code == 303


async def test_state_expires(
    oidc: Any, provider: LocalOidcProvider, redis: Redis, settings: Settings
) -> None:
    params = await begin(oidc, provider)
    key = f"{settings.redis_namespace}:oidc:state:{params['state']}"
    ttl = await redis.ttl(key)
    assert 0 < ttl <= 600
    await redis.delete(key)  # what the TTL does after ten minutes
    response = await finish(oidc, params, provider.authorize(params))
    assert_error(response, 400, "oidc_state_mismatch")


async def test_pkce_verifier_is_kept_server_side(
    oidc: Any, provider: LocalOidcProvider, redis: Redis, settings: Settings
) -> None:
    params = await begin(oidc, provider)
    raw = await redis.get(f"{settings.redis_namespace}:oidc:state:{params['state']}")
    assert raw is not None
    pending = json.loads(raw)
    assert pkce_challenge(pending["code_verifier"]) == params["code_challenge"]
    assert pending["nonce"] == params["nonce"]
    assert pending["code_verifier"] not in str(oidc.cookies.get(OIDC_COOKIE))


async def test_disallowed_domain(
    provider: LocalOidcProvider, client_with: ClientFactory, db: AsyncSession
) -> None:
    provider.reset()
    app = await client_with(
        oidc_issuer=provider.issuer,
        oidc_client_id=CLIENT_ID,
        oidc_client_secret=CLIENT_SECRET,
        oidc_allowed_domains=("college.edu",),
    )
    params = await begin(app, provider)
    response = await finish(app, params, provider.authorize(params, email="someone@gmail.com"))
    error = assert_error(response, 403, "oidc_domain_not_allowed")
    assert error["details"]["allowed_domains"] == ["college.edu"]
    await assert_signed_out(app)
    assert (await db.execute(select(User))).scalars().all() == []
    # Look-alike domains are not the college's either.
    params = await begin(app, provider)
    response = await finish(
        app, params, provider.authorize(params, email="x@evil-college.edu", subject="2")
    )
    assert_error(response, 403, "oidc_domain_not_allowed")
    params = await begin(app, provider)
    response = await finish(app, params, provider.authorize(params, email="ok@college.edu"))
    assert response.status_code == 303, response.text


async def test_unverified_email_is_refused(oidc: Any, provider: LocalOidcProvider) -> None:
    params = await begin(oidc, provider)
    code = provider.authorize(params, email_verified=False)
    assert_error(await finish(oidc, params, code), 403, "oidc_email_unverified")
    await assert_signed_out(oidc)


async def test_next_must_be_a_local_path(oidc: Any, provider: LocalOidcProvider) -> None:
    for bad in ("https://evil.example/", "//evil.example/x", "/\\evil.example", "exams", "/a\r\nb"):
        response = await oidc.get(LOGIN, params={"next": bad}, follow_redirects=False)
        error = assert_error(response, 422, "validation_error")
        assert error["details"][0]["field"] == "next"


async def test_provider_error_is_reported(oidc: Any, provider: LocalOidcProvider) -> None:
    params = await begin(oidc, provider)
    response = await oidc.get(
        CALLBACK,
        params={"state": params["state"], "error": "access_denied"},
        follow_redirects=False,
    )
    assert_error(response, 400, "oidc_denied")


async def test_rejected_code(oidc: Any, provider: LocalOidcProvider) -> None:
    params = await begin(oidc, provider)
    response = await finish(oidc, params, "a-code-the-provider-never-issued")
    assert_error(response, 401, "oidc_code_rejected")


async def test_nothing_is_fetched_at_start_up(
    provider: LocalOidcProvider, client_with: ClientFactory
) -> None:
    provider.reset()
    app = await client_with(
        oidc_issuer=provider.issuer,
        oidc_client_id=CLIENT_ID,
        oidc_client_secret=CLIENT_SECRET,
    )
    assert (await app.get("/healthz")).status_code == 200
    assert (await app.get("/readyz")).status_code == 200
    assert (await app.get("/api/v1/auth/me")).status_code == 401
    assert provider.requests == []

    # First use fetches discovery; keys wait for the first token; both are then cached.
    await begin(app, provider)
    assert provider.requests == ["GET /.well-known/openid-configuration"]
    for subject in ("1", "2"):
        async with browser(app) as student:
            params = await begin(student, provider)
            code = provider.authorize(params, email=f"s{subject}@college.edu", subject=subject)
            assert (await finish(student, params, code)).status_code == 303
    assert provider.requests.count("GET /.well-known/openid-configuration") == 1
    assert provider.requests.count("GET /jwks") == 1
    assert provider.requests.count("POST /token") == 2


async def test_disabled_without_client_id(client: Any) -> None:
    for path in (LOGIN, f"{CALLBACK}?code=x&state=y"):
        response = await client.get(path, follow_redirects=False)
        assert_error(response, 404, "oidc_disabled")


async def test_routes_are_in_the_openapi_schema(oidc: Any) -> None:
    response = await oidc.get("/schema/openapi.json")
    assert response.status_code == 200, response.text
    paths = response.json()["paths"]
    assert LOGIN in paths and CALLBACK in paths
    names = {p["name"] for p in paths[CALLBACK]["get"]["parameters"]}
    assert {"code", "state", "error"} <= names


async def test_unreachable_issuer_is_a_502_not_a_500(client_with: ClientFactory) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    app = await client_with(oidc_issuer=f"http://127.0.0.1:{port}", oidc_client_id=CLIENT_ID)
    response = await app.get(LOGIN, follow_redirects=False)
    assert_error(response, 502, "oidc_provider_unavailable")


async def test_a_new_student_joins_the_organization_of_their_domain(
    oidc: Any, provider: LocalOidcProvider, db: AsyncSession
) -> None:
    """Organizations list the domains they accept; an address none accepts is refused in words."""
    riverside = await make_organization(db, "riverside", domains=["riverside.edu"])
    await make_organization(db, "hilltop", domains=["hilltop.ac.uk"])
    params = await begin(oidc, provider)
    code = provider.authorize(params, email="ana@Riverside.edu", subject="r-1")
    assert (await finish(oidc, params, code)).status_code == 303
    me = (await oidc.get("/api/v1/auth/me")).json()
    assert me["role"] == "student" and me["organization_id"] == str(riverside.id)

    await csrf(oidc)
    assert (await oidc.post("/api/v1/auth/logout")).status_code == 204
    params = await begin(oidc, provider)
    code = provider.authorize(params, email="bo@elsewhere.org", subject="e-1")
    error = assert_error(await finish(oidc, params, code), 403, "no_organization_for_domain")
    assert "No organization" in error["message"] and "elsewhere.org" in error["message"]
    await assert_signed_out(oidc)
    assert (await db.execute(select(User).where(User.oidc_subject == "e-1"))).first() is None


async def test_a_multi_tenant_issuer_checks_each_tokens_tenant(
    provider: LocalOidcProvider, client_with: ClientFactory, db: AsyncSession
) -> None:
    """Entra-style ``{tenantid}`` issuer: ``iss`` must be the template filled with the token's
    ``tid``; the identity is per tenant; Google-style issuers are unchanged (tests above)."""
    provider.reset()
    provider.multi_tenant = True
    contoso = await make_organization(db, "contoso", domains=["contoso.edu"])
    client = await client_with(
        oidc_issuer=provider.tenants_issuer,
        oidc_client_id=CLIENT_ID,
        oidc_client_secret=CLIENT_SECRET,
    )
    tenant, other = str(uuid.uuid4()), str(uuid.uuid4())
    # A token whose issuer names another tenant than its own tid, and one with no tid.
    for claims in (
        {"iss": provider.tenant_issuer(other), "tid": tenant},
        {"iss": provider.tenant_issuer(tenant), "tid": None},
        {"iss": provider.tenant_issuer("{tenantid}"), "tid": "{tenantid}"},
    ):
        params = await begin(client, provider)
        code = provider.authorize(params, email="ana@contoso.edu", subject="m-1", **claims)
        error = assert_error(await finish(client, params, code), 401, "oidc_invalid_token")
        assert "another issuer" in error["message"], error
        await assert_signed_out(client)

    params = await begin(client, provider)
    code = provider.authorize(
        params,
        email="ana@contoso.edu",
        subject="m-1",
        iss=provider.tenant_issuer(tenant),
        tid=tenant,
    )
    assert (await finish(client, params, code)).status_code == 303
    me = (await client.get("/api/v1/auth/me")).json()
    assert me["organization_id"] == str(contoso.id) and me["role"] == "student"
    user = (await db.execute(select(User).where(User.oidc_subject == "m-1"))).scalar_one()
    assert user.oidc_issuer == provider.tenant_issuer(tenant)


async def test_an_invited_educator_joins_with_google_as_the_invited_address_only(
    oidc: Any, provider: LocalOidcProvider, db: AsyncSession
) -> None:
    riverside = await make_organization(db, "riverside")
    await login(oidc, (await make_user(db, "admin", organization=riverside)).email)
    made = await oidc.post("/api/v1/users/invitations", json={"email": "eve@riverside.edu"})
    assert made.status_code == 201, made.text
    join = urlsplit(made.json()["url"]).path
    page_headers = {"Accept": "text/html"}

    async with browser(oidc) as newcomer:
        page = await newcomer.get(join, headers=page_headers)
        assert page.status_code == 200 and "Join with Google" in page.text
        found = re.search(r'href="([^"]*/auth/oidc/login[^"]*)"', page.text)
        assert found is not None
        google = html.unescape(found.group(1))

        async def through_google(email: str) -> Any:
            response = await newcomer.get(google, follow_redirects=False)
            assert response.status_code == 302, response.text
            location = urlsplit(response.headers["location"]).query
            params = {k: v[0] for k, v in parse_qs(location).items()}
            return await finish(
                newcomer, params, provider.authorize(params, email=email, subject="g-eve")
            )

        # Another Google address: back to the invitation, told why, and not signed in.
        other = await through_google("eve.personal@college.edu")
        assert other.status_code == 303, other.text
        assert other.headers["location"] == f"{join}?problem=invitation_other_address"
        told = await newcomer.get(other.headers["location"], headers=page_headers)
        assert "is not eve@riverside.edu, the address invited" in told.text
        await assert_signed_out(newcomer)

        joined = await through_google("Eve@Riverside.edu")
        assert joined.status_code == 303, joined.text
        assert joined.headers["location"] == "/signed-in?next=%2Feducator%2Fexams"
        me = (await newcomer.get("/api/v1/auth/me")).json()
        assert (me["email"], me["role"], me["organization_id"]) == (
            "eve@riverside.edu",
            "educator",
            str(riverside.id),
        )
    eve = (await db.execute(select(User).where(User.email == "eve@riverside.edu"))).scalar_one()
    assert (eve.oidc_issuer, eve.oidc_subject, eve.password_hash) == (
        provider.issuer,
        "g-eve",
        None,
    )
    # The link is used up.
    async with browser(oidc) as late:
        again = await late.get(join, headers=page_headers)
        assert again.status_code == 410 and "used already" in again.text


async def test_a_browser_landing_on_a_failed_sign_in_gets_a_page_in_words(
    oidc: Any, provider: LocalOidcProvider
) -> None:
    """The provider sends the browser back to the callback: an error there is a page
    that says what went wrong and the way back, not JSON. Clients asking for JSON
    still get it (the tests above)."""
    html = {"Accept": "text/html,application/xhtml+xml"}
    params = await begin(oidc, provider)
    code = provider.authorize(params)
    forged = await oidc.get(
        CALLBACK, params={"code": code, "state": "forged"}, headers=html, follow_redirects=False
    )
    assert forged.status_code == 400
    assert forged.headers["content-type"].startswith("text/html")
    assert "Sign-in with Google did not work" in forged.text
    assert "started in another browser. Go back to the sign-in page and try again." in forged.text
    assert 'href="/sign-in"' in forged.text and '"error"' not in forged.text

    params = await begin(oidc, provider)
    unverified = await oidc.get(
        CALLBACK,
        params={"code": provider.authorize(params, email_verified=False), "state": params["state"]},
        headers=html,
        follow_redirects=False,
    )
    assert unverified.status_code == 403
    assert "The email address is not verified. Go back to the sign-in page" in unverified.text

    # A rejected token is a page too, not a silent trip back to the sign-in form.
    params = await begin(oidc, provider)
    provider.reset()
    rejected = await oidc.get(
        CALLBACK,
        params={"code": "never-issued", "state": params["state"]},
        headers=html,
        follow_redirects=False,
    )
    assert rejected.headers["content-type"].startswith("text/html"), rejected.text
    assert "Sign-in with Google did not work" in rejected.text
    await assert_signed_out(oidc)
