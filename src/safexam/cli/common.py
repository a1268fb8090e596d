"""What every ``safexam`` command shares: settings, the database, output and errors."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeAlias, TypeVar

from safexam.core.settings import Settings, SettingsError, load_settings

T = TypeVar("T")

# The checkout (editable install): where the Procfile and migrations live.
PROJECT_ROOT = Path(__file__).resolve().parents[3]


# What each command group adds its subcommands to (a string: argparse's class
# is generic only to type checkers).
Commands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


class CliError(Exception):
    """A problem the user can fix; printed as ``error: <message>``, exit code 1."""


def out(text: str = "") -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def err(text: str) -> None:
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


def read_settings(environ: dict[str, str] | None = None) -> Settings:
    """The settings, or a ``CliError`` naming the malformed variable."""
    try:
        return load_settings(environ)
    except SettingsError as exc:
        raise CliError(str(exc)) from None


def require_database(settings: Settings) -> str:
    if settings.database_url is None:
        raise CliError(
            "SAFEXAM_DATABASE_URL is not set (`make run` starts an embedded PostgreSQL and sets it)"
        )
    return settings.database_url


def run_db(settings: Settings, work: Callable[[Any], Coroutine[Any, Any, T]]) -> T:
    """Run ``work(session)`` against the configured database, then dispose the engine."""
    from safexam.core.db import create_engine, create_sessionmaker

    async def runner() -> T:
        engine = create_engine(settings.async_database_url, pool_size=1)
        try:
            async with create_sessionmaker(engine)() as session:
                return await work(session)
        finally:
            await engine.dispose()

    return asyncio.run(runner())
