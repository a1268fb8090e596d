"""The peer baseline: SafeExam's autosave written the way the seed platform's stack would.

FastAPI + pydantic + the SQLAlchemy ORM (async, on asyncpg), against the same
database, tables and Redis sessions as the real API, so ``bench/peer_compare.py``
can drive both with the same load. It does the same work per save:

- the server-side session from Redis by the same ``safexam_session`` cookie
  (read and renewed in one round trip, as our store does), with the same idle
  and absolute expiry, and the same double-submit CSRF check (HMAC-signed
  token in the cookie and the ``X-CSRF-Token`` header);
- the student's role, the session's ownership, status and deadline, the
  question on the student's paper, the row locked ``FOR SHARE`` against a
  concurrent submit;
- the answer validated against the question's kind and choices by pydantic
  (the question's kind and body cached per process for a minute, as ours are);
- the ordered upsert: an older ``client_seq`` never overwrites a newer one,
  and a retry of the stored save counts as applied;
- an ``ip_changed`` integrity event when the address or browser differs from
  the session's start (no query in the common case).

What differs is what the stack makes natural: the ORM loads the session row,
Python applies the rules (the deadline against the API's clock, one query
fewer than ours), an ORM ``INSERT .. ON CONFLICT`` upserts, all in an explicit
transaction. Run (a benchmark helper, not part of the product)::

    SAFEXAM_DATABASE_URL=... SAFEXAM_REDIS_URL=... SAFEXAM_SECRET_KEY=... \\
        .venv/bin/uvicorn --app-dir bench/peers --factory fastapi_autosave:create_app --workers 2
"""

# No ``from __future__ import annotations``: FastAPI reads the handlers' annotations
# at run time, and they name dependencies local to create_app.
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import Cookie, Depends, FastAPI, Header, HTTPException, Request
from pydantic import BaseModel, Field, TypeAdapter, ValidationError
from redis.asyncio import Redis
from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

from safexam.core.settings import Settings, load_settings
from safexam.exams.models import Question
from safexam.integrity.service import note_client
from safexam.sessions.models import ExamSession, Response

CSRF_SECRET_LENGTH = 64  # Litestar's token layout: 64 hex chars of secret, then its HMAC


class McqSingle(BaseModel, extra="forbid"):
    choice: str = Field(min_length=1, max_length=64)


class McqMulti(BaseModel, extra="forbid"):
    choices: list[Annotated[str, Field(min_length=1, max_length=64)]] = Field(max_length=64)


class Numeric(BaseModel, extra="forbid"):
    value: float


class ShortText(BaseModel, extra="forbid"):
    text: str = Field(max_length=5_000)


class Coding(BaseModel, extra="forbid"):
    language: Literal["python", "c", "cpp", "java", "javascript"]
    source: str = Field(max_length=100_000)


ANSWERS: dict[str, TypeAdapter[Any]] = {
    "mcq_single": TypeAdapter(McqSingle),
    "mcq_multi": TypeAdapter(McqMulti),
    "numeric": TypeAdapter(Numeric),
    "short_text": TypeAdapter(ShortText),
    "coding": TypeAdapter(Coding),
}


class AutosaveIn(BaseModel):
    answer: dict[str, Any]
    client_seq: int = Field(ge=0, le=2**62)


class AutosaveOut(BaseModel):
    question_id: uuid.UUID
    client_seq: int
    applied: bool
    saved_at: datetime


class Principal(BaseModel):
    id: uuid.UUID
    email: str
    name: str
    role: str


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or load_settings()
    engine = create_async_engine(settings.async_database_url, pool_size=20, max_overflow=0)
    sessionmaker = async_sessionmaker(engine, expire_on_commit=False)
    redis = Redis.from_url(settings.redis_url or "redis://127.0.0.1:6379/0", max_connections=256)
    session_prefix = f"{settings.redis_namespace}:sessions:"
    secret = settings.secret_key.encode()
    question_cache: dict[uuid.UUID, tuple[float, str, dict[str, Any]]] = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        await engine.dispose()
        await redis.aclose()

    app = FastAPI(lifespan=lifespan, openapi_url=None)

    async def get_db() -> AsyncIterator[AsyncSession]:
        async with sessionmaker() as session:
            yield session

    def csrf_secret(token: str) -> str | None:
        if len(token) <= CSRF_SECRET_LENGTH:
            return None
        token_secret, signature = token[:CSRF_SECRET_LENGTH], token[CSRF_SECRET_LENGTH:]
        expected = hmac.new(secret, token_secret.encode(), hashlib.sha256).hexdigest()
        return token_secret if hmac.compare_digest(signature, expected) else None

    async def check_csrf(
        safexam_csrf: Annotated[str | None, Cookie()] = None,
        x_csrf_token: Annotated[str | None, Header()] = None,
    ) -> None:
        cookie = csrf_secret(safexam_csrf or "")
        header = csrf_secret(x_csrf_token or "")
        if cookie is None or header is None or not hmac.compare_digest(cookie, header):
            raise HTTPException(403, "CSRF token verification failed")

    async def current_student(
        safexam_session: Annotated[str | None, Cookie()] = None,
    ) -> Principal:
        if not safexam_session:
            raise HTTPException(401, "Sign in first")
        raw = await redis.getex(session_prefix + safexam_session, ex=settings.session_idle_seconds)
        if raw is None:
            raise HTTPException(401, "Sign in first")
        data = json.loads(raw)
        if time.time() - int(data.get("iat", 0)) > settings.session_absolute_seconds:
            raise HTTPException(401, "Your session has expired; sign in again")
        principal = Principal(
            id=data["uid"], email=data["email"], name=data["name"], role=data["role"]
        )
        if principal.role != "student":
            raise HTTPException(403, "This action needs the role student")
        return principal

    async def question_of(db: AsyncSession, question_id: uuid.UUID) -> tuple[str, dict[str, Any]]:
        now = time.monotonic()
        hit = question_cache.get(question_id)
        if hit is not None and hit[0] > now:
            return hit[1], hit[2]
        question = await db.get(Question, question_id)
        if question is None:
            raise HTTPException(404, "question not found on this paper")
        question_cache[question_id] = (now + 60.0, question.kind, question.body)
        return question.kind, question.body

    @app.put(
        "/api/v1/sessions/{session_id}/responses/{question_id}",
        response_model=AutosaveOut,
        dependencies=[Depends(check_csrf)],
    )
    async def save_response(
        session_id: uuid.UUID,
        question_id: uuid.UUID,
        data: AutosaveIn,
        request: Request,
        principal: Annotated[Principal, Depends(current_student)],
        db: Annotated[AsyncSession, Depends(get_db)],
    ) -> AutosaveOut:
        kind, body = await question_of(db, question_id)
        try:
            answer = ANSWERS[kind].validate_python(data.answer)
        except ValidationError as exc:
            raise HTTPException(422, exc.errors(include_url=False)) from None
        choices = {c["id"] for c in body.get("choices") or []}
        if isinstance(answer, McqSingle) and answer.choice not in choices:
            raise HTTPException(422, "choice is not one of the question's choices")
        if isinstance(answer, McqMulti) and not set(answer.choices) <= choices:
            raise HTTPException(422, "choices are not among the question's choices")
        stored = answer.model_dump()

        session = (
            await db.execute(
                select(ExamSession)
                .where(ExamSession.id == session_id, ExamSession.user_id == principal.id)
                .with_for_update(read=True)
            )
        ).scalar_one_or_none()
        if session is None:
            raise HTTPException(404, "session not found")
        if not any(item.get("question_id") == str(question_id) for item in session.paper):
            raise HTTPException(404, "question not found on this paper")
        if session.status != "active" or session.deadline_at <= datetime.now(UTC):
            raise HTTPException(409, "This session has ended; answers can no longer be changed")

        upsert = insert(Response).values(
            session_id=session_id,
            question_id=question_id,
            answer=stored,
            client_seq=data.client_seq,
            saved_at=func.clock_timestamp(),
        )
        upsert = upsert.on_conflict_do_update(
            index_elements=[Response.session_id, Response.question_id],
            set_={
                "answer": upsert.excluded.answer,
                "client_seq": upsert.excluded.client_seq,
                "saved_at": upsert.excluded.saved_at,
            },
            where=Response.client_seq < upsert.excluded.client_seq,
        ).returning(Response.client_seq, Response.saved_at)
        saved = (await db.execute(upsert)).first()
        if saved is not None:
            applied, seq, saved_at = True, saved.client_seq, saved.saved_at
        else:
            current = (
                await db.execute(
                    select(Response).where(
                        Response.session_id == session_id, Response.question_id == question_id
                    )
                )
            ).scalar_one()
            seq, saved_at = current.client_seq, current.saved_at
            applied = seq == data.client_seq and current.answer == stored
        ip = request.client.host if request.client else "unknown"
        agent = request.headers.get("user-agent")
        if (ip, agent) != (session.ip_address, session.user_agent):
            await note_client(
                db,
                session_id=session_id,
                start_ip=session.ip_address,
                start_user_agent=session.user_agent,
                ip=ip,
                user_agent=agent,
            )
        await db.commit()
        return AutosaveOut(
            question_id=question_id, client_seq=seq, applied=applied, saved_at=saved_at
        )

    return app
