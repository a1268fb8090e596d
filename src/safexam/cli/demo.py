"""``safexam demo``: the demo users and exam (``safexam dev`` loads them too)."""

from __future__ import annotations

import argparse
from typing import Any

from safexam.cli.common import Commands, out, read_settings, require_database, run_db
from safexam.core.settings import Settings


def load_demo(settings: Settings) -> Any:
    from safexam.demo import load_demo as load_into

    return run_db(settings, load_into)


def print_demo(summary: Any) -> None:
    out(f"    organization: {summary.organization_slug}")
    out(f"    educator: {summary.educator_email}")
    out(f"    students: {', '.join(summary.student_emails)}")
    out(f"    password (all three): {summary.password}")
    out(f"    exam: {summary.exam_id} (published, open now)")


def cmd_demo(args: argparse.Namespace) -> int:
    settings = read_settings()
    require_database(settings)
    summary = load_demo(settings)
    out("demo loaded" if summary.created else "demo already present")
    print_demo(summary)
    return 0


def add_commands(commands: Commands) -> None:
    commands.add_parser("demo", help="load the demo users and exam").set_defaults(handler=cmd_demo)
