"""The queues page: queues and their pools, jobs by status, failed and dead jobs with
Retry, workers and their heartbeats, readiness of PostgreSQL and Redis; kept live.

The page reads the same overview as ``GET /api/v1/ops/queues`` and retries through
the same services as ``POST /api/v1/jobs/{id}/retry`` and ``POST /api/v1/ops/jobs/retry``.
It is kept current by ``js/queues.js``: the stream ``/api/v1/ops/queues/events``
says when the overview changed, and the script fetches the live part of the page
again (``/operator/queues/live``), so every number is worded here, once.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import urlencode

import msgspec
from litestar import Controller, Request, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath, FromQuery
from litestar.response import Redirect, Template

from safexam.auth.guards import CurrentUser, operator_only
from safexam.core.deps import DB, RedisDep, SettingsDep
from safexam.core.errors import ApiError
from safexam.core.http import API_PREFIX
from safexam.jobs.models import JOB_STATUSES
from safexam.ops.queues import queues_overview, retry_dead_jobs, retry_one_job
from safexam.web.layout import page

__all__ = ["OperatorQueuesController", "age_words", "ago_words"]

QUEUES_PATH = "/operator/queues"

#: How each job status is headed in the table of jobs.
STATUS_LABELS = {
    "pending": "Pending",
    "queued": "Queued",
    "running": "Running",
    "succeeded": "Succeeded",
    "failed": "Failed",
    "dead": "Dead",
}


def _plural(count: int, unit: str) -> str:
    return f"{count} {unit}" if count == 1 else f"{count} {unit}s"


def age_words(seconds: float | None) -> str:
    """``190.4`` -> ``3 minutes``; under a minute in seconds, a day and more in hours."""
    if seconds is None:
        return "nothing waiting"
    whole = int(seconds)
    if whole < 60:
        return _plural(whole, "second")
    minutes = whole // 60
    if minutes < 60:
        return _plural(minutes, "minute")
    hours, minutes = divmod(minutes, 60)
    return _plural(hours, "hour") + (f" {_plural(minutes, 'minute')}" if minutes else "")


def ago_words(seconds: float) -> str:
    """A heartbeat's age: ``just now`` under two seconds, else ``12 seconds ago``."""
    return "just now" if seconds < 2 else f"{age_words(seconds)} ago"


def rate_words(per_minute: float, window_seconds: int) -> str:
    """``1.4`` -> ``1.4 a minute``; none finished in the window says so."""
    if per_minute <= 0:
        return f"none in {age_words(window_seconds)}"
    shown = f"{per_minute:.1f}".removesuffix(".0")
    return f"{shown} a minute"


def _when(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _view(overview: dict[str, Any]) -> dict[str, Any]:
    """The overview as the page words it."""
    window = int(overview["throughput_window_seconds"])
    queues = [
        {
            **q,
            "oldest": age_words(q["oldest_age_seconds"]) if q["depth"] else "nothing waiting",
            "throughput": rate_words(q["throughput_per_minute"], window),
        }
        for q in overview["queues"]
    ]
    counts: dict[str, dict[str, int]] = {}
    for row in overview["jobs"]:
        counts.setdefault(row["kind"], dict.fromkeys(JOB_STATUSES, 0))[row["status"]] = row["count"]
    failed = [{**job, "finished": _when(job["finished_at"])} for job in overview["failed_jobs"]]
    kinds_failed = {
        kind: by_status["failed"] + by_status["dead"]
        for kind, by_status in counts.items()
        if by_status["failed"] + by_status["dead"]
    }
    workers = [
        {**w, "heartbeat": ago_words(w["seen_seconds_ago"]), "pool": ", ".join(w["queues"])}
        for w in overview["workers"]
    ]
    readiness = [
        {
            "name": label,
            "ok": overview["readiness"][key] == "ok",
            "detail": overview["readiness"][key],
        }
        for key, label in (("database", "PostgreSQL"), ("redis", "Redis"))
    ]
    return {
        "broker": overview["broker"],
        "queues": queues,
        "window": age_words(window),
        "statuses": [(s, STATUS_LABELS[s]) for s in JOB_STATUSES],
        "counts": sorted(counts.items()),
        "failed": failed,
        "kinds_failed": sorted(kinds_failed.items()),
        "workers": workers,
        "readiness": readiness,
    }


class RetryAllForm(msgspec.Struct):
    kind: str = ""


_DONE = {
    "one": "The job was sent again. It leaves this list as soon as a worker takes it.",
}


def _done_sentence(done: str | None, retried: int | None, skipped: int | None) -> str | None:
    if done == "all" and retried is not None:
        sentence = f"{_plural(retried, 'job')} sent again."
        if skipped:
            sentence += (
                f" {_plural(skipped, 'job')} could not be: another regrade of the same exam"
                " is running."
            )
        return sentence
    return _DONE.get(done or "")


class OperatorQueuesController(Controller):
    path = "/queues"
    guards = [operator_only]
    include_in_schema = False

    async def _page(
        self,
        request: Request[Any, Any, Any],
        db: Any,
        redis: Any,
        settings: Any,
        *,
        notice: str | None = None,
        problem: str | None = None,
        status_code: int = 200,
    ) -> Template:
        overview = await queues_overview(db, redis, settings)
        return page(
            request,
            "operator/queues.html",
            title="Queues",
            nav="queues",
            notice=notice,
            problem=problem,
            live_url=f"{QUEUES_PATH}/live",
            events_url=f"{API_PREFIX}/ops/queues/events",
            status_code=status_code,
            **_view(overview),
        )

    @get("/")
    async def queues(
        self,
        request: Request[Any, Any, Any],
        db: DB,
        redis: RedisDep,
        settings: SettingsDep,
        done: FromQuery[str | None] = None,
        retried: FromQuery[int | None] = None,
        skipped: FromQuery[int | None] = None,
    ) -> Template:
        return await self._page(
            request, db, redis, settings, notice=_done_sentence(done, retried, skipped)
        )

    @get("/live")
    async def live(
        self, request: Request[Any, Any, Any], db: DB, redis: RedisDep, settings: SettingsDep
    ) -> Template:
        """The live part of the page alone, for the page's script to put in place."""
        overview = await queues_overview(db, redis, settings)
        return page(request, "operator/queues_live.html", **_view(overview))

    @post("/jobs/{job_id:uuid}/retry", status_code=303)
    async def retry(
        self,
        request: Request[Any, Any, Any],
        db: DB,
        redis: RedisDep,
        settings: SettingsDep,
        principal: CurrentUser,
        job_id: FromPath[uuid.UUID],
    ) -> Redirect | Template:
        try:
            await retry_one_job(db, job_id, principal.id)
        except ApiError as exc:
            await db.rollback()
            return await self._page(
                request,
                db,
                redis,
                settings,
                problem=exc.message.rstrip(".") + ".",
                status_code=exc.status_code,
            )
        return Redirect(f"{QUEUES_PATH}?done=one", status_code=303)

    @post("/retry-all", status_code=303)
    async def retry_all(
        self,
        request: Request[Any, Any, Any],
        db: DB,
        redis: RedisDep,
        settings: SettingsDep,
        principal: CurrentUser,
        data: Annotated[RetryAllForm, Body(media_type=RequestEncodingType.URL_ENCODED)],
    ) -> Redirect | Template:
        try:
            retried, skipped = await retry_dead_jobs(db, data.kind, principal.id)
        except ApiError as exc:
            await db.rollback()
            return await self._page(
                request,
                db,
                redis,
                settings,
                problem="Choose a kind of job from the list to retry.",
                status_code=exc.status_code,
            )
        query = urlencode({"done": "all", "retried": retried, "skipped": skipped})
        return Redirect(f"{QUEUES_PATH}?{query}", status_code=303)
