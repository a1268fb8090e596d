"""``safexam orgs``: organizations (tenants) created and listed from the terminal."""

from __future__ import annotations

import argparse
from typing import Any

from safexam.cli.common import CliError, Commands, out, read_settings, require_database, run_db


def cmd_orgs_create(args: argparse.Namespace) -> int:
    from safexam.core.errors import ApiError
    from safexam.orgs.service import add_organization, parse_domains

    settings = read_settings()
    require_database(settings)
    try:
        domains = parse_domains(args.domains or "")
    except ApiError as exc:
        raise CliError(f"--domains: {exc.message}") from None

    async def work(db: Any) -> Any:
        org = await add_organization(
            db, name=args.name, slug=args.slug, domains=domains, time_zone=args.time_zone
        )
        await db.commit()
        return org

    try:
        org = run_db(settings, work)
    except ApiError as exc:
        field = (
            exc.details[0].get("field") if isinstance(exc.details, list) and exc.details else None
        )
        raise CliError(
            f"--{field.replace('_', '-')}: {exc.message}" if field else exc.message
        ) from None
    shown = ", ".join(org.allowed_domains) or "none"
    out(
        f"created organization {org.slug} ({org.name}, id {org.id}; domains: {shown}; "
        f"time zone {org.time_zone})"
    )
    return 0


def cmd_orgs_list(args: argparse.Namespace) -> int:
    from safexam.orgs.service import list_organizations

    settings = read_settings()
    require_database(settings)
    rows = run_db(settings, list_organizations)
    for org, users in rows:
        shown = ",".join(org.allowed_domains) or "-"
        out(f"{org.slug}\t{org.name}\t{users} users\tdomains {shown}\t{org.time_zone}")
    return 0


def add_commands(commands: Commands) -> None:
    orgs = commands.add_parser("orgs", help="manage organizations (tenants)").add_subparsers(
        dest="orgs_command", required=True, metavar="ACTION"
    )
    create = orgs.add_parser("create", help="create an organization")
    create.add_argument("--name", required=True, help="e.g. 'Riverside College'")
    create.add_argument("--slug", required=True, help="short unique name, e.g. riverside")
    create.add_argument(
        "--domains",
        default="",
        help="comma-separated email domains whose Google sign-ins join as students",
    )
    create.add_argument("--time-zone", default="UTC", help="e.g. Europe/Paris (default UTC)")
    create.set_defaults(handler=cmd_orgs_create)
    orgs.add_parser("list", help="list organizations").set_defaults(handler=cmd_orgs_list)
