"""Google sign-in, or any OpenID Connect issuer: the authorization-code flow with PKCE.

``begin_sign_in`` picks a random ``state``, ``nonce`` and PKCE ``code_verifier``
and keeps them in Redis under the state for a few minutes; the browser goes to
the issuer with the state, the nonce and the S256 challenge. ``finish_sign_in``
takes the state back exactly once, exchanges the code (with the verifier) at
the token endpoint and verifies the ID token against the issuer's JWKS:
signature, ``iss``, ``aud``, ``exp`` and the ``nonce`` we issued.

The discovery document and the keys are fetched on first use and cached, never
at start-up, so nothing leaves the machine until someone signs in with a
configured issuer.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote_plus, urlencode, urlsplit

import httpx
import jwt
import msgspec
import structlog
from litestar import Litestar
from redis.asyncio import Redis

from safexam.core.errors import ApiError, Forbidden, NotAuthenticated, NotFound, Unprocessable
from safexam.core.settings import Settings

__all__ = [
    "LANDING_PATH",
    "OIDC_COOKIE",
    "STATE_TTL_SECONDS",
    "OidcClient",
    "VerifiedIdentity",
    "begin_sign_in",
    "finish_sign_in",
    "landing_url",
    "oidc_client",
    "pkce_challenge",
    "safe_next_path",
]

log = structlog.get_logger(__name__)

# Browser-binding cookie: the state must come back in the same browser that
# started the flow, or an attacker could sign a victim into the attacker's account.
OIDC_COOKIE = "safexam_oidc"
STATE_TTL_SECONDS = 600
# Where the callback sends the browser once signed in, with ``?next=<path>``: a
# page of this site that moves on to ``next`` by itself (web/student/signin.py).
# The sign-in cookie is SameSite=Strict, and the way back from the issuer is a
# cross-site navigation: the browser withholds Strict cookies on it and on every
# redirect that follows it, so redirecting straight to ``next`` would land a
# student who just signed in on the sign-in page. A navigation that a page of
# this site starts is same-site, and carries the cookie. Why the cookie stays
# Strict rather than Lax: see ``web.errors.continue_page``.
LANDING_PATH = "/signed-in"
DISCOVERY_TTL_SECONDS = 3600
HTTP_TIMEOUT_SECONDS = 10.0
# Asymmetric algorithms only: "none" and HMAC (keyed with a public value) are never accepted.
_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512")
# Google documents both spellings of its issuer in ID tokens.
_ISSUER_ALIASES = {"https://accounts.google.com": ("accounts.google.com",)}
_CLOCK_LEEWAY_SECONDS = 60


class ProviderMetadata(msgspec.Struct, frozen=True):
    """The parts of the discovery document the flow uses."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    token_endpoint_auth_methods_supported: list[str] = msgspec.field(
        default_factory=lambda: ["client_secret_basic"]
    )
    id_token_signing_alg_values_supported: list[str] = msgspec.field(
        default_factory=lambda: ["RS256"]
    )


class PendingSignIn(msgspec.Struct, frozen=True):
    """What ``begin_sign_in`` keeps in Redis until the browser comes back."""

    nonce: str
    code_verifier: str
    redirect_uri: str
    next_path: str
    # Set when a signed-in user asked to link this identity to their account:
    # the callback cannot see their sign-in (its cookie is Strict), so the
    # pending state, bound to this browser, carries who asked.
    link_user_id: str | None = None
    # Set when a newcomer accepts an invitation by signing in: the link's token.
    invite_token: str | None = None


@dataclass(frozen=True)
class VerifiedIdentity:
    issuer: str
    subject: str
    email: str
    name: str
    next_path: str
    link_user_id: str | None = None
    invite_token: str | None = None


def _provider_unavailable(message: str) -> ApiError:
    return ApiError(message, code="oidc_provider_unavailable", status_code=502)


#: Where a multi-tenant issuer's discovery document puts the tenant, e.g. Microsoft
#: Entra's ``https://login.microsoftonline.com/{tenantid}/v2.0``.
TENANT_PLACEHOLDER = "{tenantid}"


def _issuer_matches(documented: str, configured: str) -> bool:
    """Whether the discovery document names the configured issuer.

    A templated issuer matches a configured one that has one path segment (the
    tenant, or Entra's ``organizations`` / ``common``) where the template has
    ``{tenantid}``.
    """
    if TENANT_PLACEHOLDER not in documented:
        return documented == configured
    before, after = documented.split(TENANT_PLACEHOLDER, 1)
    if not (configured.startswith(before) and configured.endswith(after)):
        return False
    segment = configured[len(before) : len(configured) - len(after)]
    return bool(segment) and "/" not in segment


def _tenant_issuer(template: str, tenant: object) -> str | None:
    """The issuer a multi-tenant token must name: the template with the token's own ``tid``.

    Checking ``iss`` against ``tid`` is what stops a token of one tenant from
    passing as another's; a token without a usable ``tid`` matches nothing.
    """
    if not isinstance(tenant, str) or not tenant or "/" in tenant or TENANT_PLACEHOLDER in tenant:
        return None
    return template.replace(TENANT_PLACEHOLDER, tenant, 1)


def _invalid_token(reason: str, message: str) -> NotAuthenticated:
    return NotAuthenticated(
        f"The sign-in token was rejected: {message}",
        code="oidc_invalid_token",
        details={"reason": reason},
    )


def _state_mismatch() -> ApiError:
    return ApiError(
        "The sign-in attempt is unknown, expired, already used or was started in another browser",
        code="oidc_state_mismatch",
        status_code=400,
    )


def _same(a: str, b: str) -> bool:
    # Bytes, because compare_digest refuses non-ASCII str and a 500 would follow.
    return hmac.compare_digest(a.encode(), b.encode())


def _basic_auth(client_id: str, secret: str) -> str:
    # RFC 6749 2.3.1: both parts are form-urlencoded before the base64 step.
    raw = f"{quote_plus(client_id)}:{quote_plus(secret)}".encode()
    return "Basic " + base64.b64encode(raw).decode("ascii")


def pkce_challenge(code_verifier: str) -> str:
    """The S256 code challenge of RFC 7636: base64url(sha256(verifier)) without padding."""
    digest = hashlib.sha256(code_verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def landing_url(next_path: str) -> str:
    """The callback's way to ``next_path`` (see :data:`LANDING_PATH`)."""
    return f"{LANDING_PATH}?{urlencode({'next': next_path})}"


def safe_next_path(value: str | None) -> str:
    """The local path to land on after sign-in; anything that could leave the site is refused."""
    if not value:
        return "/"
    parts = urlsplit(value)
    if (
        len(value) > 2000
        or not value.startswith("/")
        # "//host" and "/\\host" are protocol-relative URLs to browsers.
        or value.startswith("//")
        or "\\" in value
        or any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in value)
        or parts.scheme
        or parts.netloc
    ):
        raise Unprocessable("next must be a local path such as /exams", field="next")
    return value


class OidcClient:
    """Discovery, JWKS and token exchange for one configured issuer, cached per app."""

    def __init__(self, settings: Settings) -> None:
        if not settings.oidc_client_id:
            raise NotFound("Google sign-in is not configured", code="oidc_disabled")
        self.issuer = settings.oidc_issuer.rstrip("/")
        self.client_id = settings.oidc_client_id
        self.client_secret = settings.oidc_client_secret
        self._metadata: ProviderMetadata | None = None
        self._metadata_expires = 0.0
        self._jwks: jwt.PyJWKClient | None = None
        self._lock = asyncio.Lock()

    async def metadata(self) -> ProviderMetadata:
        """The issuer's discovery document, fetched on first use and kept for an hour."""
        if self._metadata is not None and time.monotonic() < self._metadata_expires:
            return self._metadata
        async with self._lock:
            if self._metadata is not None and time.monotonic() < self._metadata_expires:
                return self._metadata
            url = f"{self.issuer}/.well-known/openid-configuration"
            try:
                async with httpx.AsyncClient(timeout=HTTP_TIMEOUT_SECONDS) as http:
                    response = await http.get(url, headers={"Accept": "application/json"})
                response.raise_for_status()
                metadata = msgspec.json.decode(response.content, type=ProviderMetadata)
            except (httpx.HTTPError, msgspec.DecodeError) as exc:
                log.warning("oidc_discovery_failed", url=url, error=str(exc))
                raise _provider_unavailable("The sign-in provider cannot be reached") from None
            # OIDC Discovery 4.3: the document must name the issuer we asked
            # (a multi-tenant issuer names it as a template: see _tenant_issuer).
            if not _issuer_matches(metadata.issuer.rstrip("/"), self.issuer):
                log.warning("oidc_issuer_mismatch", expected=self.issuer, got=metadata.issuer)
                raise _provider_unavailable("The sign-in provider's discovery document is invalid")
            if self._jwks is None or self._jwks.uri != metadata.jwks_uri:
                # Constructing the client fetches nothing; keys load on the first token.
                self._jwks = jwt.PyJWKClient(
                    metadata.jwks_uri,
                    cache_jwk_set=True,
                    lifespan=300,
                    timeout=HTTP_TIMEOUT_SECONDS,
                )
            self._metadata = metadata
            self._metadata_expires = time.monotonic() + DISCOVERY_TTL_SECONDS
            return metadata

    def authorization_url(
        self,
        metadata: ProviderMetadata,
        *,
        state: str,
        nonce: str,
        challenge: str,
        redirect_uri: str,
    ) -> str:
        params = {
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": redirect_uri,
            "scope": "openid email profile",
            "state": state,
            "nonce": nonce,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
        separator = "&" if "?" in metadata.authorization_endpoint else "?"
        return f"{metadata.authorization_endpoint}{separator}{urlencode(params)}"

    async def exchange_code(
        self, metadata: ProviderMetadata, *, code: str, code_verifier: str, redirect_uri: str
    ) -> str:
        """Trade the authorization code for tokens; returns the raw ID token."""
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "code_verifier": code_verifier,
        }
        headers = {"Accept": "application/json"}
        if self.client_secret is None:
            form["client_id"] = self.client_id
        elif "client_secret_basic" in metadata.token_endpoint_auth_methods_supported:
            headers["Authorization"] = _basic_auth(self.client_id, self.client_secret)
        else:
            form["client_id"] = self.client_id
            form["client_secret"] = self.client_secret
        try:
            async with httpx.AsyncClient(timeout=HTTP_TIMEOUT_SECONDS) as http:
                response = await http.post(metadata.token_endpoint, data=form, headers=headers)
        except httpx.HTTPError as exc:
            log.warning("oidc_token_endpoint_failed", error=str(exc))
            raise _provider_unavailable("The sign-in provider cannot be reached") from None
        if response.status_code >= 500:
            raise _provider_unavailable("The sign-in provider failed to answer")
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.status_code != 200 or not isinstance(body, dict):
            reason = str(body.get("error"))[:100] if isinstance(body, dict) else None
            raise NotAuthenticated(
                "The sign-in provider rejected the authorization code",
                code="oidc_code_rejected",
                details={"provider_error": reason},
            )
        id_token = body.get("id_token")
        if not isinstance(id_token, str) or not id_token:
            raise _invalid_token("missing", "the provider returned no ID token")
        return id_token

    async def verify_id_token(
        self, metadata: ProviderMetadata, id_token: str, *, nonce: str
    ) -> dict[str, Any]:
        """The ID token's claims once signature, iss, aud, exp and nonce all check out."""
        jwks = self._jwks
        if jwks is None:  # set together with the metadata, so only if metadata() was skipped
            raise _provider_unavailable("The sign-in provider's keys are not known yet")
        algorithms = [
            alg for alg in metadata.id_token_signing_alg_values_supported if alg in _ALGORITHMS
        ] or ["RS256"]
        issuers = (metadata.issuer, *_ISSUER_ALIASES.get(metadata.issuer, ()))
        templated = TENANT_PLACEHOLDER in metadata.issuer
        try:
            # PyJWKClient fetches with urllib, which blocks: keep it off the event loop.
            signing_key = await asyncio.to_thread(jwks.get_signing_key_from_jwt, id_token)
            claims: dict[str, Any] = jwt.decode(
                id_token,
                key=signing_key.key,
                algorithms=algorithms,
                audience=self.client_id,
                issuer=None if templated else issuers,
                leeway=_CLOCK_LEEWAY_SECONDS,
                options={
                    "require": ["iss", "aud", "exp", "iat", "sub"],
                    "verify_iss": not templated,
                },
            )
        except jwt.PyJWKClientConnectionError:
            raise _provider_unavailable("The sign-in provider's keys cannot be fetched") from None
        except jwt.PyJWKClientError:
            raise _invalid_token("unknown_key", "it is not signed by a key of the issuer") from None
        except jwt.ExpiredSignatureError:
            raise _invalid_token("expired", "it has expired") from None
        except jwt.InvalidAudienceError:
            raise _invalid_token("audience", "it was issued for another application") from None
        except jwt.InvalidIssuerError:
            raise _invalid_token("issuer", "it was issued by another issuer") from None
        except jwt.InvalidSignatureError:
            raise _invalid_token("signature", "its signature does not verify") from None
        except jwt.PyJWTError as exc:
            raise _invalid_token("invalid", str(exc)) from None
        if templated and claims.get("iss") != _tenant_issuer(metadata.issuer, claims.get("tid")):
            raise _invalid_token("issuer", "it was issued by another issuer")
        # With several audiences the authorized party must be us (OIDC Core 3.1.3.7).
        azp = claims.get("azp")
        if azp is not None and azp != self.client_id:
            raise _invalid_token("audience", "it was issued for another application")
        token_nonce = claims.get("nonce")
        if not isinstance(token_nonce, str) or not _same(token_nonce, nonce):
            raise _invalid_token("nonce", "it does not belong to this sign-in attempt")
        if not isinstance(claims.get("sub"), str) or not claims["sub"]:
            raise _invalid_token("invalid", "it names no subject")
        return claims


def oidc_client(app: Litestar, settings: Settings) -> OidcClient:
    """The app's OIDC client (404 ``oidc_disabled`` unless a client id is configured)."""
    client = app.state.get("oidc_client")
    if not isinstance(client, OidcClient):
        client = OidcClient(settings)
        app.state["oidc_client"] = client
    return client


def _state_key(settings: Settings, state: str) -> str:
    return f"{settings.redis_namespace}:oidc:state:{state}"


async def begin_sign_in(
    client: OidcClient,
    redis: Redis,
    settings: Settings,
    *,
    redirect_uri: str,
    next_path: str,
    link_user_id: str | None = None,
    invite_token: str | None = None,
) -> tuple[str, str]:
    """Record a pending sign-in (or link, or invitation); returns (authorization URL, state)."""
    metadata = await client.metadata()
    state = secrets.token_urlsafe(32)
    nonce = secrets.token_urlsafe(32)
    code_verifier = secrets.token_urlsafe(64)  # 86 characters, within RFC 7636's 43..128
    pending = PendingSignIn(
        nonce=nonce,
        code_verifier=code_verifier,
        redirect_uri=redirect_uri,
        next_path=next_path,
        link_user_id=link_user_id,
        invite_token=invite_token,
    )
    await redis.set(_state_key(settings, state), msgspec.json.encode(pending), ex=STATE_TTL_SECONDS)
    url = client.authorization_url(
        metadata,
        state=state,
        nonce=nonce,
        challenge=pkce_challenge(code_verifier),
        redirect_uri=redirect_uri,
    )
    return url, state


def _email_verified(claims: dict[str, Any]) -> bool:
    value = claims.get("email_verified")
    # Some issuers send the JSON string "true" instead of a boolean.
    return value is True or value == "true"


async def finish_sign_in(
    client: OidcClient,
    redis: Redis,
    settings: Settings,
    *,
    state: str | None,
    code: str | None,
    error: str | None,
    browser_state: str | None,
) -> VerifiedIdentity:
    """Check the state, exchange the code and verify the ID token; returns who signed in."""
    # The browser check comes first, so a state replayed from elsewhere cannot burn
    # the pending sign-in of the browser it belongs to.
    if not state or not browser_state or not _same(browser_state, state):
        raise _state_mismatch()
    # GETDEL: a state is good for exactly one callback, even under a replay race.
    raw = await redis.getdel(_state_key(settings, state))
    if raw is None:
        raise _state_mismatch()
    pending = msgspec.json.decode(raw, type=PendingSignIn)
    if error:
        error = error[:100]  # echoed back, so keep whatever the query held short
        raise ApiError(
            f"The sign-in provider reported an error: {error}",
            code="oidc_denied",
            status_code=400,
            details={"provider_error": error},
        )
    if not code:
        raise Unprocessable("code is required", field="code")
    metadata = await client.metadata()
    id_token = await client.exchange_code(
        metadata, code=code, code_verifier=pending.code_verifier, redirect_uri=pending.redirect_uri
    )
    claims = await client.verify_id_token(metadata, id_token, nonce=pending.nonce)
    email = claims.get("email")
    if not isinstance(email, str) or "@" not in email:
        raise _invalid_token("email", "it carries no email address")
    if not _email_verified(claims):
        raise Forbidden("The email address is not verified", code="oidc_email_unverified")
    email = email.strip().lower()
    domain = email.rsplit("@", 1)[1]
    allowed = {d.lower().lstrip("@") for d in settings.oidc_allowed_domains}
    if allowed and domain not in allowed:
        raise Forbidden(
            f"Sign-in with addresses at {domain} is not allowed here",
            code="oidc_domain_not_allowed",
            details={"allowed_domains": sorted(allowed)},
        )
    name = claims.get("name")
    return VerifiedIdentity(
        # A multi-tenant issuer's accounts are per tenant: the token's own issuer.
        issuer=str(claims["iss"]) if TENANT_PLACEHOLDER in metadata.issuer else metadata.issuer,
        subject=str(claims["sub"]),
        email=email,
        name=name if isinstance(name, str) and name.strip() else email,
        next_path=pending.next_path,
        link_user_id=pending.link_user_id,
        invite_token=pending.invite_token,
    )
