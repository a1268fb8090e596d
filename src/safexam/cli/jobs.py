"""``safexam jobs``: inspect background jobs and run failed ones again."""

from __future__ import annotations

import argparse
from typing import Any

from safexam.cli.common import (
    CliError,
    Commands,
    err,
    out,
    read_settings,
    require_database,
    run_db,
)

JOB_STATUSES = ("pending", "queued", "running", "succeeded", "failed", "dead")


def _positive_int(text: str) -> int:
    # PostgreSQL refuses a negative LIMIT: say so here rather than with a traceback.
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def cmd_jobs_list(args: argparse.Namespace) -> int:
    from sqlalchemy import select

    from safexam.jobs.models import Job

    settings = read_settings()
    require_database(settings)

    async def work(db: Any) -> list[Any]:
        query = select(Job).order_by(Job.created_at.desc()).limit(args.limit)
        if args.status:
            query = query.where(Job.status == args.status)
        if args.kind:
            query = query.where(Job.kind == args.kind)
        return list((await db.execute(query)).scalars())

    jobs = run_db(settings, work)
    for job in jobs:
        error = (job.error or "").strip().splitlines()
        out(
            f"{job.id}  {job.kind:<12} {job.status:<9} attempts {job.attempts}/{job.max_attempts}"
            f"  created {job.created_at:%Y-%m-%d %H:%M:%S}"
            + (f"  error: {error[-1][:120]}" if error else "")
        )
    if not jobs:
        out("no jobs match")
    return 0


def cmd_jobs_retry(args: argparse.Namespace) -> int:
    import uuid

    from sqlalchemy import select

    from safexam.core.errors import ApiError
    from safexam.jobs.models import Job
    from safexam.jobs.service import requeue_job

    settings = read_settings()
    require_database(settings)
    if bool(args.job_ids) == bool(args.all_dead):
        raise CliError("give job ids or --all-dead (not both)")
    if args.kind and not args.all_dead:
        raise CliError("--kind goes with --all-dead; job ids name their jobs already")
    ids: list[uuid.UUID] = []
    for text_id in args.job_ids:
        try:
            ids.append(uuid.UUID(text_id))
        except ValueError:
            raise CliError(f"{text_id!r} is not a job id") from None

    async def work(db: Any) -> tuple[int, list[str]]:
        targets = ids
        if args.all_dead:
            query = select(Job.id).where(Job.status == "dead").order_by(Job.created_at)
            if args.kind:
                query = query.where(Job.kind == args.kind)
            targets = list((await db.execute(query)).scalars())
        done, problems = 0, []
        for job_id in targets:
            try:
                await requeue_job(db, job_id)
                done += 1
            except ApiError as exc:
                await db.rollback()
                problems.append(f"{job_id}: {exc.message}")
        return done, problems

    done, problems = run_db(settings, work)
    for problem in problems:
        err(f"error: {problem}")
    # This process has no broker: the rows are pending, and the maintenance
    # pool's outbox sweep sends them (its whole job is to send pending rows).
    out(f"requeued {done} job(s); the maintenance pool sends them within seconds")
    return 1 if problems else 0


def add_commands(commands: Commands) -> None:
    jobs = commands.add_parser("jobs", help="inspect and retry background jobs").add_subparsers(
        dest="jobs_command", required=True, metavar="ACTION"
    )
    listing = jobs.add_parser("list", help="the newest jobs, optionally by status and kind")
    listing.add_argument("--status", choices=JOB_STATUSES)
    listing.add_argument("--kind", help="grade_session, judge, regrade, qie, ...")
    listing.add_argument("--limit", type=_positive_int, default=50)
    listing.set_defaults(handler=cmd_jobs_list)
    retry = jobs.add_parser("retry", help="run failed or dead jobs again (attempts start over)")
    retry.add_argument("job_ids", nargs="*", metavar="JOB_ID")
    retry.add_argument("--all-dead", action="store_true", help="every dead job (see --kind)")
    retry.add_argument("--kind", help="with --all-dead: only jobs of this kind")
    retry.set_defaults(handler=cmd_jobs_retry)
