"""Autosave: the student's answer to one question, saved unless a newer one is stored.

Nearly every request of an exam day is an autosave, so this path is measured
(bench/autosave.py) and kept lean: one statement on the driver's connection,
whose guard and deadline check run in that same statement against the
database's clock.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import msgspec
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from safexam.auth.guards import Principal
from safexam.core.db import driver_connection
from safexam.core.errors import Conflict, NotFound
from safexam.exams.kinds import decode_answer
from safexam.integrity.service import note_client
from safexam.sessions.notify import MonitorDelta, publish_delta
from safexam.sessions.schemas import AutosaveOut

__all__ = ["autosave"]

# Answer validation needs the question's kind and choices. They are cached per
# process for a minute: a published question's choices do not change under a
# running exam, and an answer naming a choice removed meanwhile just scores zero.
QUESTION_CACHE_SECONDS = 60.0
QUESTION_CACHE_SIZE = 10_000
_question_cache: dict[uuid.UUID, tuple[float, str, dict[str, Any]]] = {}


def _cached_question(question_id: uuid.UUID) -> tuple[str, dict[str, Any]] | None:
    hit = _question_cache.get(question_id)
    if hit is not None and hit[0] > time.monotonic():
        return hit[1], hit[2]
    return None


async def _question_for_answer(
    driver: Any, question_id: uuid.UUID
) -> tuple[str, dict[str, Any]] | None:
    row = await driver.fetchrow(
        "SELECT kind, CAST(body AS text) AS body FROM questions WHERE id = $1::uuid", question_id
    )
    if row is None:
        return None
    body: dict[str, Any] = msgspec.json.decode(row["body"])
    if len(_question_cache) >= QUESTION_CACHE_SIZE:
        _question_cache.clear()
    _question_cache[question_id] = (time.monotonic() + QUESTION_CACHE_SECONDS, row["kind"], body)
    return row["kind"], body


# The whole save in one statement, run outside an explicit transaction:
#  - the session must be the student's, active, before its deadline, and have the
#    question on its paper; FOR SHARE makes a concurrent submit wait for this save
#    or this save see the submit (no answer slips in after a submit commits);
#  - an older client_seq never overwrites a newer one;
#  - ``xmax = 0`` is true for a row the statement inserted (not updated): the
#    question's first saved answer, which the live monitor counts as answered;
#  - an applied save (and only that: ``saved`` returns no row otherwise) is also
#    appended to ``response_history``, in this statement, so the history costs no
#    round trip and can never miss or invent a save;
#  - the outer SELECT reads the row as it was before the statement, which is the
#    newer answer that won when this one was not applied.
# It runs on the asyncpg connection itself (see ``autosave``), so the parameters
# are positional and JSON travels as text, whatever codecs the pool installed:
#  $1 new row id, $2 session id, $3 user id, $4 question id, $5 answer (JSON text),
#  $6 client_seq.
_AUTOSAVE = """
    WITH s AS (
        SELECT id, exam_id, ip_address, user_agent,
               status = 'active' AND deadline_at > now() AS open,
               paper @> jsonb_build_array(
                   jsonb_build_object('question_id', CAST($4::uuid AS text))) AS on_paper
        FROM exam_sessions
        WHERE id = $2::uuid AND user_id = $3::uuid
        FOR SHARE
    ),
    saved AS (
        INSERT INTO responses (id, session_id, question_id, answer, client_seq, saved_at)
        SELECT $1::uuid, s.id, $4::uuid, CAST($5::text AS jsonb), $6::bigint, clock_timestamp()
        FROM s WHERE s.open AND s.on_paper
        ON CONFLICT (session_id, question_id) DO UPDATE
           SET answer = excluded.answer, client_seq = excluded.client_seq,
               saved_at = excluded.saved_at
         WHERE responses.client_seq < excluded.client_seq
        RETURNING session_id, question_id, answer, client_seq, saved_at, xmax = 0 AS first
    ),
    kept AS (
        INSERT INTO response_history (session_id, question_id, client_seq, answer, saved_at)
        SELECT session_id, question_id, client_seq, answer, saved_at FROM saved
    )
    SELECT s.open, s.on_paper, s.ip_address, s.user_agent, s.exam_id,
           saved.client_seq AS saved_seq, saved.saved_at AS saved_at, saved.first AS first,
           r.client_seq AS current_seq, r.saved_at AS current_saved_at,
           CAST(r.answer AS text) AS current_answer
    FROM s
    LEFT JOIN saved ON true
    LEFT JOIN responses r ON r.session_id = s.id AND r.question_id = $4::uuid
"""

_AUTOSAVE_CURRENT = (
    "SELECT client_seq, saved_at, CAST(answer AS text) AS answer FROM responses"
    " WHERE session_id = $1::uuid AND question_id = $2::uuid"
)


async def autosave(
    engine: AsyncEngine,
    session_id: uuid.UUID,
    question_id: uuid.UUID,
    principal: Principal,
    *,
    answer: dict[str, Any],
    client_seq: int,
    ip: str | None = None,
    user_agent: str | None = None,
    redis: Redis | None = None,
) -> AutosaveOut:
    """Save the student's answer to one question unless a newer one is already stored.

    The hot path: one statement in autocommit (plus, once a minute per
    question, the question's kind). 404 for a session that is not the
    student's or a question not on their paper; 409 ``session_closed`` after
    submit or the deadline, changing nothing; 422 naming the field when the
    answer does not fit the question's kind. With ``redis``, an applied save
    is told to the exam's live monitor: one PUBLISH, no database work.
    """
    # The statement runs on the driver's connection: outside a transaction it is
    # its own (no BEGIN/COMMIT round trips), and it skips the ORM session and the
    # SQLAlchemy result machinery, which the profile showed on every save.
    async with driver_connection(engine) as driver:
        question = _cached_question(question_id)
        if question is None:
            question = await _question_for_answer(driver, question_id)
        if question is None:
            raise NotFound("question not found on this paper")
        kind, body = question
        stored = msgspec.to_builtins(decode_answer(kind, body, answer))
        row = await driver.fetchrow(
            _AUTOSAVE,
            uuid.uuid4(),
            session_id,
            principal.id,
            question_id,
            _json_text(stored),
            client_seq,
        )
        if row is None:
            raise NotFound("session not found")
        if not row["on_paper"]:
            raise NotFound("question not found on this paper")
        if not row["open"]:
            raise Conflict(
                "This session has ended; answers can no longer be changed", code="session_closed"
            )
        if row["saved_seq"] is not None:
            applied, seq, saved_at = True, row["saved_seq"], row["saved_at"]
            await publish_delta(
                redis,
                MonitorDelta(
                    id=row["exam_id"],
                    kind="save",
                    session=session_id,
                    at=saved_at,
                    question=question_id,
                    seq=seq,
                    first=bool(row["first"]),
                ),
            )
        else:
            if row["current_seq"] is None:
                # A concurrent first save of the same question won; read what it stored.
                current = await driver.fetchrow(_AUTOSAVE_CURRENT, session_id, question_id)
                if current is None:
                    # Only a session deleted in between takes the answer away.
                    raise NotFound("session not found")
                seq, saved_at, held = current["client_seq"], current["saved_at"], current["answer"]
            else:
                seq, saved_at = row["current_seq"], row["current_saved_at"]
                held = row["current_answer"]
            # A retry of the very save already stored counts as applied (idempotent).
            applied = seq == client_seq and held is not None and msgspec.json.decode(held) == stored
    if (ip, user_agent) != (row["ip_address"], row["user_agent"]):
        # Rare (the student moved or changed browser): the ORM path is fine here, on
        # a connection of its own once the first one is back in the pool.
        async with AsyncSession(engine, expire_on_commit=False) as db:
            await note_client(
                db,
                session_id=session_id,
                start_ip=row["ip_address"],
                start_user_agent=row["user_agent"],
                ip=ip,
                user_agent=user_agent,
            )
            await db.commit()
    return AutosaveOut(question_id=question_id, client_seq=seq, applied=applied, saved_at=saved_at)


def _json_text(value: Any) -> str:
    return msgspec.json.encode(value).decode()
