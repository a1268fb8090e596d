"""``safexam db``: database migrations."""

from __future__ import annotations

import argparse

from safexam.cli.common import Commands, out, read_settings, require_database


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    from safexam.core.migrate import upgrade

    url = require_database(read_settings())
    upgrade(url, args.revision)
    out(f"database upgraded to {args.revision}")
    return 0


def cmd_db_downgrade(args: argparse.Namespace) -> int:
    from safexam.core.migrate import downgrade

    url = require_database(read_settings())
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
