"""``safexam db``: database migrations."""

from __future__ import annotations

import argparse

from safexam.cli.common import Commands, out, read_settings, require_database
from safexam.core.settings import Settings


def _settings_with_logging() -> Settings:
    from safexam.core.logging import configure_logging

    settings = read_settings()
    # Alembic reports each step on the standard library's logging: render it like ours.
    configure_logging(settings)
    return settings


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    from safexam.core.migrate import upgrade

    url = require_database(_settings_with_logging())
    upgrade(url, args.revision)
    out(f"database upgraded to {args.revision}")
    return 0


def cmd_db_downgrade(args: argparse.Namespace) -> int:
    from safexam.core.migrate import downgrade

    url = require_database(_settings_with_logging())
    downgrade(url, args.revision)
    out(f"database downgraded to {args.revision}")
    return 0


def add_commands(commands: Commands) -> None:
    db = commands.add_parser("db", help="database migrations").add_subparsers(
        dest="db_command", required=True, metavar="ACTION"
    )
    up = db.add_parser("upgrade", help="migrate to a revision (default: head)")
    up.add_argument("revision", nargs="?", default="head")
    up.set_defaults(handler=cmd_db_upgrade)
    down = db.add_parser("downgrade", help="migrate down to a revision (default: base)")
    down.add_argument("revision", nargs="?", default="base")
    down.set_defaults(handler=cmd_db_downgrade)
