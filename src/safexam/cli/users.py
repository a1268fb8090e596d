"""``safexam users``: accounts created from the terminal."""

from __future__ import annotations

import argparse
import getpass
import sys
from typing import Any

from safexam.cli.common import CliError, Commands, out, read_settings, require_database, run_db


def _read_password(args: argparse.Namespace) -> str | None:
    if args.no_password:
        return None
    if args.password_stdin:
        line = sys.stdin.readline()
        password = line.rstrip("\r\n")
        if not password:
            raise CliError("--password-stdin: no password on standard input")
        return password
    if not sys.stdin.isatty():
        raise CliError(
            "no terminal to prompt for a password: use --password-stdin or --no-password"
        )
    first = getpass.getpass("Password: ")
    if first != getpass.getpass("Repeat password: "):
        raise CliError("the two passwords differ")
    return first


def cmd_users_create(args: argparse.Namespace) -> int:
    from safexam.auth.service import create_user
    from safexam.core.errors import ApiError

    settings = read_settings()
    require_database(settings)
    email = args.email.strip()
    if "@" not in email.strip("@") or any(c.isspace() for c in email):
        raise CliError(f"--email: {args.email!r} is not an email address")
    password = _read_password(args)

    async def work(db: Any) -> Any:
        from safexam.orgs.service import get_organization

        organization_id = None
        if args.org:
            org = await get_organization(db, args.org)
            if org is None:
                raise CliError(f"--org: no organization with slug {args.org!r}")
            organization_id = org.id
        return await create_user(
            db,
            email=email,
            name=args.name,
            role=args.role,
            password=password,
            organization_id=organization_id,
        )

    try:
        user = run_db(settings, work)
    except ApiError as exc:
        raise CliError(exc.message) from None
    out(f"created {user.role} {user.email} (id {user.id})")
    return 0


def add_commands(commands: Commands) -> None:
    from safexam.auth.models import ROLES

    users = commands.add_parser("users", help="manage users").add_subparsers(
        dest="users_command", required=True, metavar="ACTION"
    )
    create = users.add_parser("create", help="create a user")
    create.add_argument("--email", required=True)
    create.add_argument("--name", required=True)
    create.add_argument("--role", required=True, choices=ROLES)
    create.add_argument(
        "--org", default="", help="the organization's slug (default: the default organization)"
    )
    secret = create.add_mutually_exclusive_group()
    secret.add_argument(
        "--password-stdin", action="store_true", help="read the password from standard input"
    )
    secret.add_argument(
        "--no-password", action="store_true", help="no password (Google sign-in only)"
    )
    create.set_defaults(handler=cmd_users_create)
