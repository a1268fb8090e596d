"""``safexam doctor``: what is configured, reachable and working, one line each."""

from __future__ import annotations

import argparse
import asyncio
import os
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

from safexam.cli.common import Commands, T, out, read_settings
from safexam.core.settings import Settings


@dataclass(frozen=True)
class CheckResult:
    """One line of ``safexam doctor``: ok (works), warn (off or degraded), fail (broken)."""

    name: str
    status: Literal["ok", "warn", "fail"]
    detail: str


DoctorCheck = Callable[[Settings], CheckResult | list[CheckResult]]

# Each check gets the settings and says what it found. Domains add theirs with
# ``@doctor_check`` (e.g. the code runner checks the sandbox or Judge0).
DOCTOR_CHECKS: list[DoctorCheck] = []


def doctor_check(check: DoctorCheck) -> DoctorCheck:
    """Register a ``safexam doctor`` check."""
    DOCTOR_CHECKS.append(check)
    return check


def _probe(coro: Coroutine[Any, Any, T], timeout: float = 5.0) -> T:
    async def bounded() -> T:
        return await asyncio.wait_for(coro, timeout)

    return asyncio.run(bounded())


def schema_differences(settings: Settings) -> list[str]:
    """How the database's schema differs from the models (empty when they agree).

    The initial migration is still edited in place before the first release, so
    a database migrated by an older checkout can carry the head revision and
    still lack a column; this says so instead of failing at the first query.
    """
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from sqlalchemy.engine import Connection

    from safexam.core.db import create_engine
    from safexam.models import Base

    def compare(connection: Connection) -> list[str]:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return [repr(diff) for diff in compare_metadata(context, Base.metadata)]

    async def run() -> list[str]:
        engine = create_engine(settings.async_database_url, pool_size=1)
        try:
            async with engine.connect() as conn:
                return await conn.run_sync(compare)
        finally:
            await engine.dispose()

    return _probe(run(), timeout=30)


@doctor_check
def check_database(settings: Settings) -> CheckResult:
    if settings.database_url is None:
        return CheckResult(
            "database", "warn", "SAFEXAM_DATABASE_URL not set (`make run` embeds PostgreSQL)"
        )
    from alembic.script import ScriptDirectory
    from sqlalchemy import text

    from safexam.core.db import create_engine
    from safexam.core.migrate import alembic_config

    async def revision() -> str | None:
        engine = create_engine(settings.async_database_url, pool_size=1)
        try:
            async with engine.connect() as conn:
                exists = await conn.scalar(text("SELECT to_regclass('alembic_version')"))
                if exists is None:
                    return None
                value = await conn.scalar(text("SELECT version_num FROM alembic_version"))
                return None if value is None else str(value)
        finally:
            await engine.dispose()

    try:
        current = _probe(revision())
    except Exception as exc:
        return CheckResult("database", "fail", f"unreachable: {type(exc).__name__}: {exc}")
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if current != head:
        return CheckResult(
            "database", "fail", f"at revision {current}, code expects {head}: `safexam db upgrade`"
        )
    differences = schema_differences(settings)
    if differences:
        return CheckResult(
            "database", "fail", f"schema differs from the code in {len(differences)} places"
        )
    return CheckResult("database", "ok", f"reachable, schema at {head}")


@doctor_check
def check_redis(settings: Settings) -> list[CheckResult]:
    if settings.redis_url is None:
        return [CheckResult("redis", "warn", "SAFEXAM_REDIS_URL not set (`make run` embeds Redis)")]
    from safexam.core.redis import create_redis

    async def ping() -> bool:
        client = create_redis(settings.redis_url or "")
        try:
            return bool(await client.ping())
        finally:
            await client.aclose()

    results: list[CheckResult] = []
    try:
        _probe(ping())
        results.append(CheckResult("redis", "ok", "reachable"))
    except Exception as exc:
        results.append(CheckResult("redis", "fail", f"unreachable: {type(exc).__name__}: {exc}"))
    broker = settings.broker_url or settings.redis_url
    kind = "RabbitMQ" if broker.startswith("amqp") else "Redis"
    results.append(CheckResult("broker", "ok", f"{kind} ({_redact(broker)})"))
    return results


@doctor_check
def check_security(settings: Settings) -> list[CheckResult]:
    results = [CheckResult("environment", "ok", settings.env)]
    if os.environ.get("SAFEXAM_SECRET_KEY"):
        results.append(CheckResult("secret key", "ok", "set"))
    else:
        results.append(
            CheckResult("secret key", "warn", "not set: a random key per process, sessions die")
        )
    if settings.cookie_secure:
        results.append(CheckResult("cookies", "ok", "Secure (HTTPS only)"))
    else:
        results.append(CheckResult("cookies", "warn", "Secure flag off (plain-HTTP development)"))
    return results


@doctor_check
def check_outside_services(settings: Settings) -> list[CheckResult]:
    results: list[CheckResult] = []
    if settings.oidc_client_id:
        domains = ", ".join(settings.oidc_allowed_domains) or "any domain"
        results.append(CheckResult("google sign-in", "ok", f"{settings.oidc_issuer} ({domains})"))
    else:
        results.append(CheckResult("google sign-in", "warn", "off (SAFEXAM_OIDC_CLIENT_ID)"))
    # The runner, the sandbox's set-up, and each language: a hello world
    # compiled and run through the real sandbox.
    from safexam.coding.backends import doctor_checks

    results += [CheckResult(*check) for check in doctor_checks(settings)]
    if settings.llm_base_url:
        model = settings.llm_model or "default model"
        results.append(
            CheckResult("question generator", "ok", f"{settings.llm_base_url} ({model})")
        )
    else:
        results.append(
            CheckResult("question generator", "ok", "embedded (SAFEXAM_LLM_BASE_URL adds an LLM)")
        )
    return results


def _redact(url: str) -> str:
    """The URL without its password, fit to print."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username or ''}:***@{parts.hostname or ''}"
    if parts.port is not None:
        netloc += f":{parts.port}"
    return urlunsplit(parts._replace(netloc=netloc))


def cmd_doctor(args: argparse.Namespace) -> int:
    settings = read_settings()
    failed = False
    for check in DOCTOR_CHECKS:
        try:
            outcome = check(settings)
        except Exception as exc:
            outcome = CheckResult(check.__name__, "fail", f"{type(exc).__name__}: {exc}")
        for result in outcome if isinstance(outcome, list) else [outcome]:
            failed = failed or result.status == "fail"
            out(f"{result.status:<4}  {result.name:<20} {result.detail}")
    return 1 if failed else 0


def add_commands(commands: Commands) -> None:
    commands.add_parser("doctor", help="show what is configured and reachable").set_defaults(
        handler=cmd_doctor
    )
