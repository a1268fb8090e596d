"""The ``safexam`` command: migrations, users, the demo, the API server, checks and ``dev``.

Every subcommand reads the same ``SAFEXAM_*`` settings as the API. Output
meant for the person at the terminal goes to stdout/stderr directly (it is the
interface, not a log); progress of long-running work is logged with structlog.
A failure exits non-zero with one line that says what was wrong.

One module per command group adds its subcommands to the parser; each keeps
its heavy imports inside the handlers, so ``safexam --help`` stays quick.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from safexam.cli import db, demo, dev, doctor, jobs, orgs, serve, users, worker
from safexam.cli.common import PROJECT_ROOT, CliError, err
from safexam.cli.dev import WORKER_POOLS, dev_judge_processes
from safexam.cli.doctor import DOCTOR_CHECKS, CheckResult, doctor_check

__all__ = [
    "DOCTOR_CHECKS",
    "PROJECT_ROOT",
    "WORKER_POOLS",
    "CheckResult",
    "build_parser",
    "dev_judge_processes",
    "doctor_check",
    "main",
]


def build_parser() -> argparse.ArgumentParser:
    """The whole command tree (tests check Procfile and compose commands against it)."""
    parser = argparse.ArgumentParser(
        prog="safexam", description="SafeExam: exams, autosave and asynchronous grading."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    # In this order in ``safexam --help``.
    for group in (db, orgs, users, jobs, demo, serve, worker, doctor, dev):
        group.add_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``safexam`` console script."""
    args = build_parser().parse_args(argv)
    try:
        code: int = args.handler(args)
    except CliError as exc:
        err(f"error: {exc}")
        return 1
    except KeyboardInterrupt:
        return 130
    return code
