"""Bulk regrade throughput through a real ``regrade`` worker.

Seeds the same exam as ``bench/grading.py`` (``--sessions`` x ``--questions``
MCQ), grades it, changes the answer key of every question, then times a dry
run and a real regrade of all responses, each from commit to ``succeeded``.
Target: 100,000 responses regraded in 10 s or less on a 2-core machine.

    SAFEXAM_BENCH_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres \\
    SAFEXAM_BENCH_REDIS_URL=redis://127.0.0.1:6379/0 \\
    .venv/bin/python bench/regrade.py --sessions 2000 --questions 50
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from grading import bench_database, close_exam, graded_count, seed, workers
from safexam.core.broker import create_broker, use_broker
from safexam.core.db import create_engine, create_sessionmaker
from safexam.jobs import enqueue
from safexam.jobs.kinds import REGRADE
from safexam.jobs.models import Job


async def run_regrade(
    maker: async_sessionmaker[AsyncSession], exam: uuid.UUID, *, dry_run: bool, limit_s: float
) -> tuple[float, Job]:
    async with maker() as db:
        job = await enqueue(
            db,
            REGRADE,
            args={"exam_id": str(exam), "question_ids": None, "dry_run": dry_run},
            exam_id=exam,
        )
        await db.commit()
    started = time.perf_counter()
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        await asyncio.sleep(0.02)
        async with maker() as db:
            row = await db.get(Job, job.id)
            assert row is not None
            if row.status in ("succeeded", "failed", "dead"):
                return time.perf_counter() - started, row
    raise RuntimeError("regrade did not finish in time")


async def main_async(args: argparse.Namespace) -> None:
    async with bench_database() as (_, settings):
        engine = create_engine(settings.async_database_url)
        maker = create_sessionmaker(engine)
        broker = create_broker(settings)
        use_broker(broker)
        exam, qids, sids = await seed(maker, args.sessions, args.questions)
        with workers(settings, ["grading", "regrade"], args.processes, args.threads):
            await close_exam(maker, exam, sids)
            for _ in range(int(args.timeout / 0.1)):
                if await graded_count(engine, exam) == len(sids):
                    break
                await asyncio.sleep(0.1)
            async with maker() as db:
                # The key changes for every question: "b" was right, now "c" is.
                await db.execute(
                    text(
                        "UPDATE questions SET body = jsonb_set(body, '{answer}', '[\"c\"]')"
                        " WHERE id = ANY(:ids)"
                    ),
                    {"ids": qids},
                )
                before = (await db.execute(text("SELECT sum(score) FROM results"))).scalar_one()
                await db.commit()
            responses = args.sessions * args.questions
            figures: dict[str, Any] = {}
            for dry_run in (True, False):
                elapsed, job = await run_regrade(maker, exam, dry_run=dry_run, limit_s=args.timeout)
                assert job.status == "succeeded", job.error
                totals = (job.result or {}).get("totals", {})
                figures["dry run" if dry_run else "regrade"] = (elapsed, totals)
            async with maker() as db:
                after = (await db.execute(text("SELECT sum(score) FROM results"))).scalar_one()
        for label, (elapsed, totals) in figures.items():
            print(
                f"{label}: {responses} responses in {elapsed:.2f} s"
                f" ({responses / elapsed:.0f} responses/s); changed"
                f" {totals.get('responses_changed')} responses of"
                f" {totals.get('students_changed')} students"
            )
        print(f"total of all results: {before:.0f} before, {after:.0f} after the regrade")
        broker.close()
        await engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sessions", type=int, default=2000)
    parser.add_argument("--questions", type=int, default=50)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--timeout", type=float, default=180)
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
