"""Typed settings read once from ``SAFEXAM_*`` environment variables.

Every value has a default that runs on a laptop; a value that is present but
malformed stops the process with a message naming the variable, because a
typo in a deployment should fail loudly at start, not at the first request.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

import msgspec

from safexam.core.languages import LANGUAGE_NAMES

__all__ = ["Settings", "SettingsError", "get_settings", "load_settings"]

Environment = Literal["development", "production", "test"]
CodeRunnerName = Literal["sandbox", "judge0"]


class SettingsError(RuntimeError):
    """A required setting is missing or malformed; the message names the variable."""


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    """The whole configuration of one SafeExam process."""

    env: Environment = "development"
    database_url: str | None = None
    redis_url: str | None = None
    broker_url: str | None = None
    # Prefix for every Redis key we own (sessions, rate limits, channels, broker),
    # so several deployments or test runs can share one Redis server.
    redis_namespace: str = "safexam"
    secret_key: str = ""
    cookie_secure: bool = True
    host: str = "127.0.0.1"
    port: int = 8000
    # Addresses (or CIDR networks) of the reverse proxies whose X-Forwarded-For
    # and X-Forwarded-Proto are believed. Anyone else's are ignored: the
    # per-address sign-in limit and the ip_changed integrity flag would
    # otherwise be the client's to choose.
    trusted_proxies: tuple[str, ...] = ()
    # Bearer token a Prometheus scrape of /metrics must carry. Without one,
    # /metrics is served only outside production (make run, tests).
    metrics_token: str | None = None
    data_dir: str = ".safexam"
    log_format: Literal["json", "console"] | None = None
    log_level: str = "INFO"
    session_idle_seconds: int = 2 * 60 * 60
    session_absolute_seconds: int = 12 * 60 * 60
    login_max_failures_per_email: int = 5
    login_max_failures_per_ip: int = 20
    login_failure_window_seconds: int = 15 * 60
    oidc_issuer: str = "https://accounts.google.com"
    oidc_client_id: str | None = None
    oidc_client_secret: str | None = None
    oidc_allowed_domains: tuple[str, ...] = ()
    oidc_redirect_url: str | None = None
    code_runner: CodeRunnerName = "sandbox"
    # Sandboxes each judge process keeps set up ahead (one per language most
    # recently judged), so a run starts without waiting for bwrap; 0: none.
    sandbox_warm: int = 2
    judge0_url: str | None = None
    judge0_token: str | None = None
    # Public base URL at which Judge0 reaches our API; set: callback mode, unset: polling.
    judge0_callback_url: str | None = None
    # How long callback mode waits for Judge0's PUTs before polling the batch instead.
    judge0_callback_wait_seconds: int = 60
    # (language, Judge0 language id) pairs overriding the ids in coding/languages.py:
    # every Judge0 install numbers its languages its own way.
    judge0_language_ids: tuple[tuple[str, int], ...] = ()
    llm_base_url: str | None = None
    llm_api_key: str | None = None
    llm_model: str | None = None
    autosubmit_grace_seconds: int = 30
    # A running job whose heartbeat is older than this is presumed abandoned
    # (its worker died or its host dropped off the network): the maintenance
    # sweep re-sends it and another worker takes over. Workers beat at a third
    # of it. Shorter recovers faster; too short takes over jobs whose worker
    # is merely slow to reach PostgreSQL (the fenced final write keeps that
    # from counting twice, but the work is done twice).
    job_stale_after_seconds: int = 30
    # Bounds on waiting for PostgreSQL, so an outage or a hung server answers
    # 503 within seconds instead of holding requests (and worker threads):
    # opening a connection, one statement, and a free connection from the pool.
    database_connect_timeout_seconds: int = 5
    database_command_timeout_seconds: int = 30
    database_pool_timeout_seconds: int = 10
    # Pre-warm of the judge pool (``safexam_judge_prewarm_replicas``): exams
    # with code opening within this many minutes (or opened as recently), and
    # how many of their enrolled students one judge replica serves.
    prewarm_minutes: int = 15
    prewarm_students_per_judge: int = 40
    # Retention, pruned by the maintenance pool: finished jobs, and integrity
    # events (which hold students' IP addresses) with the answer history (every
    # applied save, integrity evidence), older than this many days; 0 keeps them
    # forever.
    job_retention_days: int = 30
    integrity_retention_days: int = 365

    @property
    def async_database_url(self) -> str:
        """The database URL in the form SQLAlchemy's asyncpg dialect wants."""
        if self.database_url is None:
            raise SettingsError("SAFEXAM_DATABASE_URL is not set and no embedded database runs")
        return to_asyncpg_url(self.database_url)

    @property
    def effective_broker_url(self) -> str:
        url = self.broker_url or self.redis_url
        if url is None:
            raise SettingsError("SAFEXAM_BROKER_URL (or SAFEXAM_REDIS_URL) is not set")
        return url

    @property
    def data_path(self) -> Path:
        return Path(self.data_dir).resolve()

    @property
    def judge0_language_map(self) -> dict[str, int]:
        """The configured Judge0 language ids by language name (only the overridden ones)."""
        return dict(self.judge0_language_ids)


def to_asyncpg_url(url: str) -> str:
    for prefix in ("postgresql+asyncpg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix) :]
    raise SettingsError(
        "SAFEXAM_DATABASE_URL must start with postgresql:// or postgresql+asyncpg://"
    )


_BOOL_TRUE = {"1", "true", "yes", "on"}
_BOOL_FALSE = {"0", "false", "no", "off"}


def _convert(name: str, raw: str, annotation: object) -> object:
    """Turn one environment string into the field's type, naming the variable on failure."""
    var = f"SAFEXAM_{name.upper()}"
    if annotation is bool:
        value = raw.strip().lower()
        if value in _BOOL_TRUE:
            return True
        if value in _BOOL_FALSE:
            return False
        raise SettingsError(f"{var} must be a boolean (true/false), got {raw!r}")
    if annotation is int:
        try:
            return int(raw)
        except ValueError:
            raise SettingsError(f"{var} must be an integer, got {raw!r}") from None
    if annotation == tuple[str, ...]:
        return tuple(part.strip().lower() for part in raw.split(",") if part.strip())
    if annotation == tuple[tuple[str, int], ...]:
        return _language_ids(var, raw)
    return raw


def _language_ids(var: str, raw: str) -> tuple[tuple[str, int], ...]:
    """``python=71,c=50``: every name one of our languages, every id a positive integer."""
    known = LANGUAGE_NAMES
    pairs: dict[str, int] = {}
    for entry in (part.strip() for part in raw.split(",")):
        if not entry:
            continue
        name, sep, value = (piece.strip() for piece in entry.partition("="))
        name = name.lower()
        if not sep or not name:
            raise SettingsError(f"{var} must look like python=71,c=50; got the entry {entry!r}")
        if name not in known:
            raise SettingsError(
                f"{var} names an unknown language {name!r} (known: {', '.join(known)})"
            )
        if name in pairs:
            raise SettingsError(f"{var} gives the language {name!r} twice")
        if not (value.isascii() and value.isdigit()) or int(value) <= 0:
            raise SettingsError(
                f"{var}: the Judge0 id of {name!r} must be a positive integer, got {value!r}"
            )
        pairs[name] = int(value)
    return tuple(pairs.items())


def _callback_url(raw: str) -> str:
    """An absolute http(s) base URL without query or fragment, trailing slash dropped."""
    var = "SAFEXAM_JUDGE0_CALLBACK_URL"
    parts = urlsplit(raw.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SettingsError(
            f"{var} must be an absolute http(s) URL such as http://api:8000, got {raw!r}"
        )
    if parts.query or parts.fragment:
        raise SettingsError(f"{var} must be a base URL without a query or fragment, got {raw!r}")
    try:
        _ = parts.port  # raises for a port that is not a number in range
    except ValueError:
        raise SettingsError(f"{var} has an invalid port: {raw!r}") from None
    return raw.strip().rstrip("/")


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Build settings from the environment (``os.environ`` by default)."""
    environ = os.environ if environ is None else environ
    values: dict[str, object] = {}
    for field in msgspec.structs.fields(Settings):
        var = f"SAFEXAM_{field.name.upper()}"
        raw = environ.get(var)
        if raw is None or raw == "":
            continue
        annotation = field.type
        base = annotation
        # Optional[str] and Literal fields are validated by msgspec.convert below.
        if base in (bool, int, tuple[str, ...], tuple[tuple[str, int], ...]):
            values[field.name] = _convert(field.name, raw, base)
        else:
            values[field.name] = raw
    try:
        settings = msgspec.convert(values, Settings)
    except msgspec.ValidationError as exc:
        # msgspec says "at `$.code_runner`": turn the path into the variable name.
        message = str(exc)
        for field in msgspec.structs.fields(Settings):
            if f"`$.{field.name}`" in message:
                raise SettingsError(f"SAFEXAM_{field.name.upper()} is invalid: {message}") from None
        raise SettingsError(message) from None
    if settings.database_url is not None:
        to_asyncpg_url(settings.database_url)
    if settings.judge0_callback_url is not None:
        settings = msgspec.structs.replace(
            settings, judge0_callback_url=_callback_url(settings.judge0_callback_url)
        )
    if settings.judge0_callback_wait_seconds <= 0:
        raise SettingsError(
            "SAFEXAM_JUDGE0_CALLBACK_WAIT_SECONDS must be a positive number of seconds,"
            f" got {settings.judge0_callback_wait_seconds}"
        )
    if settings.port <= 0 or settings.port > 65535:
        raise SettingsError(f"SAFEXAM_PORT must be between 1 and 65535, got {settings.port}")
    if not settings.secret_key:
        if settings.env == "production":
            raise SettingsError("SAFEXAM_SECRET_KEY is required when SAFEXAM_ENV=production")
        if settings.judge0_callback_url:
            # Workers sign the callback URLs and the API verifies them: one key for all.
            raise SettingsError(
                "SAFEXAM_SECRET_KEY is required when SAFEXAM_JUDGE0_CALLBACK_URL is set"
            )
        # Development and tests: a per-process key means sessions die on restart,
        # which is acceptable off production; `make run` writes a stable one.
        settings = msgspec.structs.replace(settings, secret_key=secrets.token_urlsafe(32))
    elif len(settings.secret_key) < 16:
        raise SettingsError("SAFEXAM_SECRET_KEY must be at least 16 characters")
    if settings.env == "production" and not settings.cookie_secure:
        raise SettingsError("SAFEXAM_COOKIE_SECURE=false is only allowed outside production")
    if settings.code_runner == "judge0" and not settings.judge0_url:
        raise SettingsError("SAFEXAM_JUDGE0_URL is required when SAFEXAM_CODE_RUNNER=judge0")
    for name in (
        "database_connect_timeout_seconds",
        "database_command_timeout_seconds",
        "database_pool_timeout_seconds",
        "job_stale_after_seconds",
    ):
        if getattr(settings, name) <= 0:
            raise SettingsError(
                f"SAFEXAM_{name.upper()} must be a positive number of seconds,"
                f" got {getattr(settings, name)}"
            )
    for name in ("prewarm_minutes", "prewarm_students_per_judge"):
        if getattr(settings, name) <= 0:
            raise SettingsError(
                f"SAFEXAM_{name.upper()} must be a positive number, got {getattr(settings, name)}"
            )
    for name in ("job_retention_days", "integrity_retention_days"):
        if getattr(settings, name) < 0:
            raise SettingsError(
                f"SAFEXAM_{name.upper()} must be a number of days (0: keep forever),"
                f" got {getattr(settings, name)}"
            )
    if not 0 <= settings.sandbox_warm <= 32:
        raise SettingsError(
            f"SAFEXAM_SANDBOX_WARM must be between 0 and 32, got {settings.sandbox_warm}"
        )
    return settings


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return load_settings()
