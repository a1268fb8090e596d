"""A small OpenID Connect provider on 127.0.0.1 for the sign-in tests.

It serves discovery, a JWKS and a token endpoint, with RSA keys generated once
per test run. The authorization step (a person at Google's consent screen) is
played by the test: it reads the parameters our app put in the redirect and
calls :meth:`LocalOidcProvider.authorize`, which returns the code the browser
would bring back. For a real browser, ``browser_host`` makes the provider serve the
authorization step as a consent page at ``http://<browser_host>:<port>/authorize``
(``localhost``: another site than the app's ``127.0.0.1``, as Google is), whose
"Continue" link goes back to the app with a code for ``consent_email``, and
any page of the app can be linked from there (:meth:`LocalOidcProvider.link_url`).
The token endpoint checks what a real provider checks:
client authentication, the redirect URI, single use of the code and the PKCE
verifier.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from html import escape
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote_plus, urlencode, urlsplit

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

CLIENT_ID = "safexam-test-client"
CLIENT_SECRET = "test-client-secret"


def new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@dataclass
class Grant:
    params: dict[str, str]
    claims: dict[str, Any]
    signing_key: rsa.RSAPrivateKey
    kid: str
    used: bool = False


@dataclass
class LocalOidcProvider:
    key: rsa.RSAPrivateKey = field(default_factory=new_key)
    kid: str = field(default_factory=lambda: secrets.token_hex(8))
    requests: list[str] = field(default_factory=list)
    grants: dict[str, Grant] = field(default_factory=dict)
    token_errors: list[str] = field(default_factory=list)
    # Set: the consent page is served at this host (see the module's docstring).
    browser_host: str | None = None
    consent_email: str = "student@college.edu"
    # Set: a multi-tenant issuer as Microsoft Entra's, configured as
    # ``{root}/organizations/v2.0``, documenting ``{root}/{tenantid}/v2.0`` and
    # issuing tokens whose ``iss`` names the user's tenant (``tid``).
    multi_tenant: bool = False
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def issuer(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> None:
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                provider._record(f"GET {self.path}")
                if (
                    self.path == "/organizations/v2.0/.well-known/openid-configuration"
                    or self.path == "/.well-known/openid-configuration"
                ):
                    self._json(200, provider.discovery())
                elif self.path == "/jwks":
                    self._json(200, provider.jwks())
                elif self.path.startswith("/link?") and provider.browser_host:
                    query = {k: v[0] for k, v in parse_qs(urlsplit(self.path).query).items()}
                    self._html(200, provider.link_page(query["to"]))
                elif self.path.startswith("/authorize?") and provider.browser_host:
                    query = {k: v[0] for k, v in parse_qs(urlsplit(self.path).query).items()}
                    self._html(200, provider.consent_page(query))
                else:
                    self._json(404, {"error": "not_found"})

            def do_POST(self) -> None:
                provider._record(f"POST {self.path}")
                length = int(self.headers.get("Content-Length") or 0)
                form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
                if self.path != "/token":
                    self._json(404, {"error": "not_found"})
                    return
                status, body = provider.token(form, self.headers.get("Authorization"))
                self._json(status, body)

            def _html(self, status: int, body: str) -> None:
                raw = body.encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def _json(self, status: int, body: dict[str, Any]) -> None:
                raw = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self.grants.clear()
            self.token_errors.clear()
            self.multi_tenant = False

    def _record(self, line: str) -> None:
        with self._lock:
            self.requests.append(line)

    @property
    def authorization_endpoint(self) -> str:
        if self.browser_host is None:
            return f"{self.issuer}/authorize"
        assert self._server is not None
        return f"http://{self.browser_host}:{self._server.server_address[1]}/authorize"

    def consent_page(self, params: dict[str, str]) -> str:
        """Google's consent screen, played: one link back to the app with a code."""
        code = self.authorize(params, email=self.consent_email)
        back = params["redirect_uri"] + "?" + urlencode({"code": code, "state": params["state"]})
        return (
            '<!doctype html><html lang="en"><head><meta charset="utf-8">'
            "<title>Sign in - Test provider</title></head><body><main>"
            "<h1>Choose an account</h1>"
            f'<p><a href="{escape(back)}">Continue as {escape(self.consent_email)}</a></p>'
            "</main></body></html>"
        )

    def link_page(self, target: str) -> str:
        """Another site's page (an LMS, webmail) with a link to ``target`` on the app."""
        return (
            '<!doctype html><html lang="en"><head><meta charset="utf-8">'
            "<title>Course page</title></head><body><main>"
            f'<h1>Course page</h1><p><a href="{escape(target)}">Open the exam</a></p>'
            "</main></body></html>"
        )

    def link_url(self, target: str) -> str:
        """The address of :meth:`link_page` at ``browser_host``."""
        assert self._server is not None and self.browser_host is not None
        port = self._server.server_address[1]
        return f"http://{self.browser_host}:{port}/link?" + urlencode({"to": target})

    @property
    def root(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def tenants_issuer(self) -> str:
        """What a deployment configures for the multi-tenant issuer."""
        return f"{self.root}/organizations/v2.0"

    def tenant_issuer(self, tenant: str) -> str:
        return f"{self.root}/{tenant}/v2.0"

    def discovery(self) -> dict[str, Any]:
        return {
            "issuer": self.tenant_issuer("{tenantid}") if self.multi_tenant else self.issuer,
            "authorization_endpoint": self.authorization_endpoint,
            "token_endpoint": f"{self.issuer}/token",
            "jwks_uri": f"{self.issuer}/jwks",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "code_challenge_methods_supported": ["S256"],
        }

    def jwks(self) -> dict[str, Any]:
        jwk = json.loads(RSAAlgorithm.to_jwk(self.key.public_key()))
        jwk.update({"kid": self.kid, "use": "sig", "alg": "RS256"})
        return {"keys": [jwk]}

    def authorize(
        self,
        params: dict[str, str],
        *,
        email: str = "student@college.edu",
        subject: str = "1001",
        signing_key: rsa.RSAPrivateKey | None = None,
        kid: str | None = None,
        **overrides: Any,
    ) -> str:
        """The user consents: a code for an ID token with these claims (``None`` drops one)."""
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": params["client_id"],
            "sub": subject,
            "email": email,
            "email_verified": True,
            "name": "Test Student",
            "iat": now,
            "exp": now + 600,
            "nonce": params["nonce"],
        }
        claims.update(overrides)
        claims = {k: v for k, v in claims.items() if v is not None}
        code = secrets.token_urlsafe(16)
        with self._lock:
            self.grants[code] = Grant(
                params=params,
                claims=claims,
                signing_key=signing_key or self.key,
                kid=kid or self.kid,
            )
        return code

    def token(self, form: dict[str, str], authorization: str | None) -> tuple[int, dict[str, Any]]:
        def refuse(error: str) -> tuple[int, dict[str, Any]]:
            self.token_errors.append(error)
            return 400, {"error": error}

        if authorization is None or not authorization.startswith("Basic "):
            return 401, {"error": "invalid_client"}
        client_id, _, secret = base64.b64decode(authorization[6:]).decode().partition(":")
        if (unquote_plus(client_id), unquote_plus(secret)) != (CLIENT_ID, CLIENT_SECRET):
            return 401, {"error": "invalid_client"}
        if form.get("grant_type") != "authorization_code":
            return refuse("unsupported_grant_type")
        with self._lock:
            grant = self.grants.get(form.get("code", ""))
            if grant is None or grant.used:
                return refuse("invalid_grant")
            grant.used = True
        if form.get("redirect_uri") != grant.params["redirect_uri"]:
            return refuse("invalid_grant")
        verifier = form.get("code_verifier", "")
        digest = hashlib.sha256(verifier.encode()).digest()
        challenge = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
        if grant.params.get("code_challenge_method") != "S256" or challenge != grant.params.get(
            "code_challenge"
        ):
            return refuse("invalid_grant")
        id_token = jwt.encode(
            grant.claims, grant.signing_key, algorithm="RS256", headers={"kid": grant.kid}
        )
        return 200, {
            "access_token": secrets.token_urlsafe(16),
            "token_type": "Bearer",
            "expires_in": 3600,
            "id_token": id_token,
        }
