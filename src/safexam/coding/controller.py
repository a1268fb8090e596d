"""HTTP: run and submit code, read a submission, watch it live, and Judge0's callbacks."""

from __future__ import annotations

import uuid
from typing import Any

from litestar import Controller, Request, get, post, put
from litestar.channels import ChannelsPlugin
from litestar.datastructures import State
from litestar.params import JSONBody
from litestar.response import ServerSentEvent
from litestar.status_codes import HTTP_202_ACCEPTED, HTTP_204_NO_CONTENT

from safexam.auth.guards import CurrentUser, authenticated, educator_or_admin, student_only
from safexam.coding.callbacks import StaleCallback, record_judge0_callback
from safexam.coding.judge0 import (
    CALLBACK_ROUTE,
    InvalidCallback,
    parse_callback,
    verify_callback_token,
)
from safexam.coding.schemas import RunCreate, SubmissionCreate, SubmissionOut, SubmissionQueued
from safexam.coding.submissions import create_submission, get_submission
from safexam.coding.trials import TrialCreate, TrialOut, get_trial, start_trial
from safexam.core.deps import DB, RedisDep, SettingsDep
from safexam.core.errors import ApiError, Conflict
from safexam.core.events import sse_stream, submission_channel
from safexam.core.openapi import EVENT_STREAM
from safexam.exams.questions_service import get_owned_question

__all__ = ["CodingController", "Judge0CallbackController", "QuestionTrialController"]

#: While a submission is queued its stream re-reads it this often (its place and wait).
QUEUE_REFRESH_SECONDS = 2.0

# Judge0 bodies are small; a flood of large ones is not a callback.
_MAX_CALLBACK_BYTES = 2 * 1024 * 1024


class CodingController(Controller):
    tags = ["coding"]

    @post(
        "/sessions/{session_id:uuid}/runs",
        guards=[student_only],
        status_code=HTTP_202_ACCEPTED,
    )
    async def create_run(
        self,
        session_id: uuid.UUID,
        data: JSONBody[RunCreate],
        db: DB,
        redis: RedisDep,
        settings: SettingsDep,
        principal: CurrentUser,
    ) -> SubmissionQueued:
        """Run the code on the visible tests or on ``stdin``; not graded. 202 with the id."""
        return await create_submission(
            db,
            redis,
            session_id,
            principal,
            kind="run",
            question_id=data.question_id,
            language=data.language,
            source=data.source,
            stdin=data.stdin,
            namespace=settings.redis_namespace,
        )

    @post(
        "/sessions/{session_id:uuid}/submissions",
        guards=[student_only],
        status_code=HTTP_202_ACCEPTED,
    )
    async def create_submission(
        self,
        session_id: uuid.UUID,
        data: JSONBody[SubmissionCreate],
        db: DB,
        redis: RedisDep,
        settings: SettingsDep,
        principal: CurrentUser,
    ) -> SubmissionQueued:
        """Submit the code for grading on every test. 202 with the id."""
        return await create_submission(
            db,
            redis,
            session_id,
            principal,
            kind="submit",
            question_id=data.question_id,
            language=data.language,
            source=data.source,
            namespace=settings.redis_namespace,
        )

    @get("/submissions/{submission_id:uuid}", guards=[authenticated])
    async def read_submission(
        self, submission_id: uuid.UUID, db: DB, principal: CurrentUser
    ) -> SubmissionOut:
        """Status, verdict, score, compile output and per-test results (hidden tests redacted)."""
        return await get_submission(db, submission_id, principal)

    @get(
        "/submissions/{submission_id:uuid}/events",
        guards=[authenticated],
        media_type=EVENT_STREAM,
    )
    async def submission_events(
        self,
        submission_id: uuid.UUID,
        db: DB,
        principal: CurrentUser,
        state: State,
        channels: ChannelsPlugin,
    ) -> ServerSentEvent:
        """SSE: the submission now, then again at each change (queued, running n/N, done)."""
        await get_submission(db, submission_id, principal)
        await db.close()

        async def read_state() -> SubmissionOut:
            async with state.sessionmaker() as fresh:
                return await get_submission(fresh, submission_id, principal)

        return ServerSentEvent(
            sse_stream(
                channels,
                submission_channel(submission_id),
                read_state,
                event="submission",
                # Its place in the queue moves as others finish, which no one announces.
                refresh_after=lambda out: QUEUE_REFRESH_SECONDS if out.status == "queued" else None,
            )
        )


class QuestionTrialController(Controller):
    """An author's trials of a coding question: a reference solution against every test."""

    path = "/questions/{question_id:uuid}/trials"
    tags = ["coding"]
    guards = [educator_or_admin]

    @post("/", status_code=HTTP_202_ACCEPTED)
    async def start(
        self,
        question_id: uuid.UUID,
        data: JSONBody[TrialCreate],
        db: DB,
        principal: CurrentUser,
    ) -> TrialOut:
        """Queue the source against every test (hidden ones too); 202 with the trial.
        409 ``trial_in_progress`` while the author's last trial of the question runs."""
        question = await get_owned_question(db, question_id, principal)
        return await start_trial(db, question, principal, data)

    @get("/{trial_id:uuid}")
    async def read(
        self, question_id: uuid.UUID, trial_id: uuid.UUID, db: DB, principal: CurrentUser
    ) -> TrialOut:
        """The trial's status and, once judged, each test's verdict and output."""
        question = await get_owned_question(db, question_id, principal)
        return await get_trial(db, question, trial_id, principal)


class Judge0CallbackController(Controller):
    """Judge0 PUTs each finished submission here; the token in the path is our signature."""

    tags = ["coding"]

    @put(
        f"{CALLBACK_ROUTE}/{{token:str}}",
        status_code=HTTP_204_NO_CONTENT,
        # Judge0 is not a browser: no cookie, no CSRF token; the signed token authenticates.
        exclude_from_csrf=True,
        include_in_schema=False,
    )
    async def judge0_callback(
        self,
        token: str,
        request: Request[Any, Any, Any],
        db: DB,
        redis: RedisDep,
        settings: SettingsDep,
    ) -> None:
        """Store one test result from Judge0 after verifying the signed token.

        403 ``invalid_callback`` / ``callback_expired`` for a token we did not
        sign or that expired, 422 ``invalid_callback_body`` for a body that is
        not Judge0's submission shape, 409 ``stale_callback`` for a Judge0
        submission the test no longer waits for; none of them changes anything.
        A repeated callback is answered 204 and changes nothing either.
        """
        try:
            # The signature first: nothing in an unsigned request is read further.
            verify_callback_token(settings.secret_key, token)
        except InvalidCallback as exc:
            raise ApiError(str(exc), code=exc.code, status_code=403) from None
        body = await request.body()
        if len(body) > _MAX_CALLBACK_BYTES:
            raise ApiError("callback body too large", code="payload_too_large", status_code=413)
        try:
            result = parse_callback(body)
        except InvalidCallback as exc:
            raise ApiError(str(exc), code="invalid_callback_body", status_code=422) from None
        try:
            await record_judge0_callback(db, redis, settings.secret_key, token, result)
        except InvalidCallback as exc:
            raise ApiError(str(exc), code=exc.code, status_code=403) from None
        except StaleCallback as exc:
            raise Conflict(str(exc), code="stale_callback") from None
