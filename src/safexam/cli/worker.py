"""``safexam worker``: a Dramatiq worker pool whose every log line is ours.

The same as ``dramatiq workers --queues ...`` (the broker module is
``workers``), except that logging is configured before Dramatiq starts: its
main process's lines (booting, signals, restarts) and its worker processes'
are rendered by :func:`safexam.core.logging.configure_logging`, JSON in
production, instead of Dramatiq's own text format.
"""

from __future__ import annotations

import argparse

from safexam.cli.common import Commands, read_settings

__all__ = ["add_commands", "dramatiq_argv"]


def dramatiq_argv(args: argparse.Namespace) -> list[str]:
    """The ``dramatiq`` arguments this worker runs with."""
    return [
        "workers",
        "--queues",
        *args.queues,
        "--processes",
        str(args.processes),
        "--threads",
        str(args.threads),
        # Dramatiq would otherwise call basicConfig() with its own format.
        "--skip-logging",
    ]


def cmd_worker(args: argparse.Namespace) -> int:
    import dramatiq.cli

    from safexam.core.logging import configure_logging

    configure_logging(read_settings())
    parser = dramatiq.cli.make_argument_parser()  # type: ignore[no-untyped-call]
    code: int = dramatiq.cli.main(parser.parse_args(dramatiq_argv(args)))  # type: ignore[no-untyped-call]
    return code


def _positive(raw: str) -> int:
    value = int(raw)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def add_commands(commands: Commands) -> None:
    worker = commands.add_parser(
        "worker", help="run a worker pool (Dramatiq) with SafeExam's log format"
    )
    worker.add_argument("--queues", nargs="+", required=True, help="the queues it consumes")
    worker.add_argument("--processes", type=_positive, default=1, help="worker processes")
    worker.add_argument("--threads", type=_positive, default=1, help="threads per process")
    worker.set_defaults(handler=cmd_worker)
