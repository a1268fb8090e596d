"""The ``regrade`` queue: bulk regrade of an exam after an answer key change."""

from __future__ import annotations

from typing import Any

import dramatiq
import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from safexam.core.broker import worker_resources
from safexam.core.events import exam_channel, job_channel, publish, session_channel
from safexam.grading.regrade import RegradeStale, run_regrade
from safexam.jobs.runner import JobFailed, run_job
from safexam.jobs.service import Claim

log = structlog.get_logger(__name__)


@dramatiq.actor(
    queue_name="regrade", actor_name="regrade_exam", max_retries=50, time_limit=30 * 60 * 1000
)
async def regrade_exam(job_id: str, exam_id: str, **_: Any) -> None:
    """Rescore an exam's graded sessions (or dry-run the diff), in chunks, with progress."""
    resources = worker_resources()
    assert resources.sessionmaker is not None
    maker = resources.sessionmaker
    redis = resources.redis
    changed: list[str] = []

    async def progress(done: int, total: int) -> None:
        if redis is not None:
            await publish(
                redis,
                job_channel(job_id),
                {"id": job_id, "status": "running", "progress": {"done": done, "total": total}},
            )

    async def work(db: AsyncSession, claim: Claim) -> dict[str, Any]:
        try:
            result = await run_regrade(db, claim, maker, on_progress=progress)
        except RegradeStale as exc:
            raise JobFailed(str(exc)) from exc
        changed.extend(s["session_id"] for s in result.get("students", []))
        return result

    done = await run_job(job_id, work, sessionmaker=maker, redis=redis)
    if done is not None and redis is not None and not done.args.get("dry_run"):
        await publish(redis, exam_channel(exam_id), {"id": exam_id, "regraded": len(changed)})
        for session_id in changed:
            await publish(redis, session_channel(session_id), {"id": session_id, "regraded": True})
