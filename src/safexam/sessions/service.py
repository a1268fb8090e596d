"""Students take the exam: start or resume, autosave, submit, auto-submit, release, review.

Time is the database's: every rule about windows and deadlines compares with
PostgreSQL's ``now()`` so API replicas with drifting clocks agree, and the
autosave guard and the deadline check run in the same statement.
"""

from __future__ import annotations

import secrets
import time
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import msgspec
import structlog
from sqlalchemy import bindparam, func, or_, select, text, update
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from safexam.auth.guards import Principal
from safexam.core.db import driver_connection
from safexam.core.errors import Conflict, Forbidden, NotFound
from safexam.exams.kinds import concrete_question, correct_answer, decode_answer, public_view
from safexam.exams.models import Enrollment, Exam, ExamItem, Question
from safexam.exams.variants import variant_seed
from safexam.grading.models import Result
from safexam.integrity.service import note_client
from safexam.jobs import enqueue
from safexam.jobs.kinds import AUTOSUBMIT, GRADE_SESSION
from safexam.jobs.models import Job
from safexam.sessions.models import ExamSession, Response
from safexam.sessions.paper import ItemSpec, QuestionSpec, build_paper, paper_question_ids
from safexam.sessions.schemas import (
    AutosaveOut,
    PaperQuestion,
    ReleaseOut,
    ReviewItem,
    ReviewOut,
    SavedResponse,
    ScoreOut,
    SessionOut,
    StudentExam,
    StudentExamsOut,
    StudentExamState,
    SubmitOut,
)

__all__ = [
    "autosave",
    "finalize_expired_session",
    "get_session",
    "list_student_exams",
    "release_results",
    "results_visible",
    "review_session",
    "start_session",
    "submit_session",
    "sweep_expired_sessions",
]

log = structlog.get_logger(__name__)

FINISHED = ("submitted", "expired", "graded")
# A concurrent start loses the unique-index race at most once; a third failure is a bug.
START_ATTEMPTS = 3
SWEEP_BATCH = 500
SWEEP_MAX_BATCHES = 100


async def _db_now(db: AsyncSession) -> datetime:
    now: datetime = (await db.execute(select(func.now()))).scalar_one()
    return now


def _remaining(status: str, deadline_at: datetime, now: datetime) -> int:
    if status != "active":
        return 0
    return max(0, int((deadline_at - now).total_seconds()))


def results_visible(
    *,
    release_policy: str,
    closes_at: datetime,
    exam_released_at: datetime | None,
    result: Result | None,
    now: datetime,
) -> bool:
    """Whether a student may see their score and review, per the exam's release policy.

    Nothing is visible before a result exists. Then: ``immediate`` at once,
    ``after_close`` once the window has closed, ``manual`` once the owner
    released (which stamps ``exams.released_at`` and ``results.released_at``).
    """
    if result is None:
        return False
    if result.released_at is not None or exam_released_at is not None:
        return True
    if release_policy == "immediate":
        return True
    if release_policy == "after_close":
        return now >= closes_at
    return False


# ---------------------------------------------------------------- exam list


def _student_state(
    exam: Exam,
    sessions: Sequence[ExamSession],
    latest_result: Result | None,
    now: datetime,
) -> StudentExamState:
    active = next((s for s in sessions if s.status == "active"), None)
    window_open = exam.opens_at <= now < exam.closes_at
    if active is not None and now < active.deadline_at:
        return "in_progress"
    if sessions:
        if window_open and len(sessions) < exam.attempts_allowed and active is None:
            return "open"
        visible = results_visible(
            release_policy=exam.release_policy,
            closes_at=exam.closes_at,
            exam_released_at=exam.released_at,
            result=latest_result,
            now=now,
        )
        return "results_released" if visible else "submitted"
    if now < exam.opens_at:
        return "upcoming"
    return "open" if window_open else "closed"


async def list_student_exams(db: AsyncSession, principal: Principal) -> StudentExamsOut:
    """The student's enrolled, published exams with their state, soonest first.

    States: ``upcoming`` (not open yet), ``open`` (may start), ``in_progress``
    (a session is running), ``submitted`` (finished, results not visible),
    ``results_released``, and ``closed`` (the window passed without a start).
    """
    now = await _db_now(db)
    exams = list(
        (
            await db.execute(
                select(Exam)
                .join(Enrollment, Enrollment.exam_id == Exam.id)
                .where(
                    Exam.status == "published",
                    or_(Enrollment.user_id == principal.id, Enrollment.email == principal.email),
                )
                .distinct()
                .order_by(Exam.opens_at, Exam.id)
            )
        ).scalars()
    )
    by_exam: dict[uuid.UUID, list[ExamSession]] = {e.id: [] for e in exams}
    results: dict[uuid.UUID, Result] = {}
    if exams:
        sessions = (
            await db.execute(
                select(ExamSession)
                .where(
                    ExamSession.user_id == principal.id,
                    ExamSession.exam_id.in_(list(by_exam)),
                )
                .order_by(ExamSession.attempt)
            )
        ).scalars()
        for s in sessions:
            by_exam[s.exam_id].append(s)
        ids = [s.id for group in by_exam.values() for s in group]
        if ids:
            results = {
                r.session_id: r
                for r in (await db.execute(select(Result).where(Result.session_id.in_(ids))))
                .scalars()
                .all()
            }
    items: list[StudentExam] = []
    for exam in exams:
        sessions_of = by_exam[exam.id]
        latest = sessions_of[-1] if sessions_of else None
        items.append(
            StudentExam(
                id=exam.id,
                title=exam.title,
                description=exam.description,
                state=_student_state(
                    exam, sessions_of, results.get(latest.id) if latest else None, now
                ),
                opens_at=exam.opens_at,
                closes_at=exam.closes_at,
                duration_minutes=exam.duration_minutes,
                attempts_allowed=exam.attempts_allowed,
                attempts_used=len(sessions_of),
                session_id=latest.id if latest else None,
                session_status=latest.status if latest else None,  # type: ignore[arg-type]
                deadline_at=latest.deadline_at if latest else None,
            )
        )
    return StudentExamsOut(items=items, total=len(items))


# ---------------------------------------------------------------- session view


async def _session_view(
    db: AsyncSession, session: ExamSession, exam: Exam, now: datetime
) -> SessionOut:
    question_ids = paper_question_ids(session.paper)
    questions = {
        row.id: row
        for row in (
            await db.execute(
                select(Question.id, Question.kind, Question.prompt, Question.body).where(
                    Question.id.in_(question_ids)
                )
            )
        ).all()
    }
    shown: list[PaperQuestion] = []
    for entry in session.paper:
        q = questions.get(uuid.UUID(str(entry["question_id"])))
        if q is None:
            continue
        prompt, body = concrete_question(
            q.kind, q.prompt, q.body, entry.get("variant"), variant_seed(session.seed, q.id)
        )
        # Allow-listed student view: no answer key, hidden test or template.
        view = public_view(q.kind, body, entry.get("choice_order"))
        shown.append(
            PaperQuestion(
                id=q.id,
                kind=q.kind,
                prompt=prompt,
                points=float(entry["points"]),
                choices=view.get("choices"),
                multiple=view.get("multiple"),
                languages=view.get("languages"),
                starter_code=view.get("starter_code"),
                visible_tests=view.get("visible_tests"),
                limits=view.get("limits"),
            )
        )
    saved = {
        str(r.question_id): SavedResponse(
            answer=r.answer, client_seq=r.client_seq, saved_at=r.saved_at
        )
        for r in (
            await db.execute(
                select(
                    Response.question_id, Response.answer, Response.client_seq, Response.saved_at
                ).where(Response.session_id == session.id)
            )
        ).all()
    }
    result = await db.get(Result, session.id)
    visible = results_visible(
        release_policy=exam.release_policy,
        closes_at=exam.closes_at,
        exam_released_at=exam.released_at,
        result=result,
        now=now,
    )
    return SessionOut(
        id=session.id,
        exam_id=session.exam_id,
        attempt=session.attempt,
        status=session.status,  # type: ignore[arg-type]
        started_at=session.started_at,
        deadline_at=session.deadline_at,
        submitted_at=session.submitted_at,
        server_time=now,
        remaining_seconds=_remaining(session.status, session.deadline_at, now),
        questions=shown,
        responses=saved,
        result=ScoreOut(score=result.score, max_score=result.max_score)
        if visible and result is not None
        else None,
    )


async def _own_session(
    db: AsyncSession, session_id: uuid.UUID, principal: Principal, *, lock: bool = False
) -> ExamSession:
    stmt = select(ExamSession).where(
        ExamSession.id == session_id, ExamSession.user_id == principal.id
    )
    if lock:
        stmt = stmt.with_for_update()
    session = (await db.execute(stmt)).scalar_one_or_none()
    if session is None:
        # Another student's session is "not found", never "forbidden": ids cannot be probed.
        raise NotFound("session not found")
    return session


async def get_session(
    db: AsyncSession,
    session_id: uuid.UUID,
    principal: Principal,
    *,
    ip: str | None = None,
    user_agent: str | None = None,
) -> SessionOut:
    """The student's own session with every saved answer; 404 for anyone else's."""
    now = await _db_now(db)
    session = await _own_session(db, session_id, principal)
    exam = await db.get(Exam, session.exam_id)
    assert exam is not None  # foreign key
    view = await _session_view(db, session, exam, now)
    if session.status == "active" and await note_client(
        db,
        session_id=session.id,
        start_ip=session.ip_address,
        start_user_agent=session.user_agent,
        ip=ip,
        user_agent=user_agent,
    ):
        await db.commit()
    return view


# ---------------------------------------------------------------- start


async def _build_paper_for(db: AsyncSession, exam: Exam, seed: int) -> list[dict[str, Any]]:
    items = [
        ItemSpec(
            position=i.position,
            points=i.points,
            question_id=i.question_id,
            draw_tag=i.draw_tag,
            draw_count=i.draw_count,
        )
        for i in (
            await db.execute(
                select(ExamItem).where(ExamItem.exam_id == exam.id).order_by(ExamItem.position)
            )
        ).scalars()
    ]
    pools: dict[str, list[uuid.UUID]] = {}
    for tag in sorted({i.draw_tag for i in items if i.draw_tag is not None}):
        # A draw takes from the exam owner's active questions only: never a draft,
        # never another educator's bank.
        pools[tag] = list(
            (
                await db.execute(
                    select(Question.id).where(
                        Question.owner_id == exam.owner_id,
                        Question.status == "active",
                        Question.tags.contains([tag]),
                    )
                )
            ).scalars()
        )
    wanted = {i.question_id for i in items if i.question_id is not None}
    for pool in pools.values():
        wanted.update(pool)
    specs: dict[uuid.UUID, QuestionSpec] = {}
    if wanted:
        for row in (
            await db.execute(
                select(Question.id, Question.kind, Question.body["choices"].label("choices")).where(
                    Question.id.in_(list(wanted))
                )
            )
        ).all():
            choices = row.choices if isinstance(row.choices, list) else []
            specs[row.id] = QuestionSpec(
                id=row.id,
                kind=row.kind,
                choice_ids=tuple(str(c["id"]) for c in choices if isinstance(c, dict)),
            )
    for tag, pool in pools.items():
        needed = sum(i.draw_count or 0 for i in items if i.draw_tag == tag)
        if len(pool) < needed:
            log.warning(
                "draw_pool_too_small", exam_id=str(exam.id), tag=tag, pool=len(pool), needed=needed
            )
    return build_paper(
        seed,
        items,
        specs,
        pools,
        shuffle_questions=exam.shuffle_questions,
        shuffle_choices=exam.shuffle_choices,
    )


_INSERT_SESSION = text(
    """
    INSERT INTO exam_sessions
        (id, exam_id, user_id, attempt, status, started_at, deadline_at, seed, paper,
         ip_address, user_agent)
    SELECT :id, e.id, :user_id, prior.n + 1, 'active', :started_at, :deadline_at, :seed, :paper,
           :ip_address, :user_agent
    FROM exams e
    CROSS JOIN (
        SELECT COALESCE(max(attempt), 0) AS n FROM exam_sessions
        WHERE exam_id = :exam_id AND user_id = :user_id
    ) prior
    WHERE e.id = :exam_id
      AND e.status = 'published'
      AND e.opens_at <= :started_at AND e.closes_at > :started_at
      AND prior.n < e.attempts_allowed
    RETURNING attempt
    """
).bindparams(
    bindparam("id", type_=UUID(as_uuid=True)),
    bindparam("exam_id", type_=UUID(as_uuid=True)),
    bindparam("user_id", type_=UUID(as_uuid=True)),
    bindparam("paper", type_=JSONB),
)


async def start_session(
    db: AsyncSession,
    exam_id: uuid.UUID,
    principal: Principal,
    *,
    ip: str | None,
    user_agent: str | None,
    grace_seconds: int,
) -> tuple[SessionOut, bool]:
    """Start the student's next attempt, or resume the running one; ``(view, created)``.

    The database decides: the insert itself re-checks the window and the
    attempt count, and the unique indexes (one active session per student and
    exam; one row per attempt number) make two simultaneous starts produce one
    session. The loser of that race rolls back and resumes the winner's.
    """
    for _ in range(START_ATTEMPTS):
        try:
            return await _start_once(
                db, exam_id, principal, ip=ip, user_agent=user_agent, grace_seconds=grace_seconds
            )
        except IntegrityError:
            await db.rollback()
            log.info("session_start_race", exam_id=str(exam_id), user_id=str(principal.id))
    raise Conflict("The session could not be started; try again", code="start_conflict")


async def _start_once(
    db: AsyncSession,
    exam_id: uuid.UUID,
    principal: Principal,
    *,
    ip: str | None,
    user_agent: str | None,
    grace_seconds: int,
) -> tuple[SessionOut, bool]:
    now = await _db_now(db)
    row = (
        await db.execute(
            select(Exam, Enrollment)
            .join(Enrollment, Enrollment.exam_id == Exam.id)
            .where(
                Exam.id == exam_id,
                Exam.status == "published",
                or_(Enrollment.user_id == principal.id, Enrollment.email == principal.email),
            )
            .order_by(Enrollment.user_id.is_(None))
            .limit(1)
        )
    ).first()
    if row is None:
        raise NotFound("exam not found")
    exam, enrollment = row
    active = (
        await db.execute(
            select(ExamSession)
            .where(
                ExamSession.exam_id == exam.id,
                ExamSession.user_id == principal.id,
                ExamSession.status == "active",
            )
            .with_for_update()
        )
    ).scalar_one_or_none()
    if active is not None:
        if now < active.deadline_at:
            await note_client(
                db,
                session_id=active.id,
                start_ip=active.ip_address,
                start_user_agent=active.user_agent,
                ip=ip,
                user_agent=user_agent,
            )
            view = await _session_view(db, active, exam, now)
            await db.commit()
            return view, False
        # Its deadline passed and no auto-submit has run yet: finalize it now, so a
        # lost message never blocks the next attempt.
        await _expire(db, [active])
        await db.commit()
        now = await _db_now(db)
    if now < exam.opens_at:
        raise Conflict("This exam has not opened yet", code="exam_not_open")
    if now >= exam.closes_at:
        raise Conflict("This exam has closed", code="exam_closed")
    used = (
        await db.execute(
            select(func.coalesce(func.max(ExamSession.attempt), 0)).where(
                ExamSession.exam_id == exam.id, ExamSession.user_id == principal.id
            )
        )
    ).scalar_one()
    if used >= exam.attempts_allowed:
        raise Conflict(
            f"All {exam.attempts_allowed} attempt(s) of this exam are used",
            code="no_attempts_left",
        )
    seed = secrets.randbits(63)
    paper = await _build_paper_for(db, exam, seed)
    if not paper:
        raise Conflict("This exam has no questions", code="exam_empty")
    allowed = timedelta(
        minutes=exam.duration_minutes * float(enrollment.time_multiplier) + enrollment.extra_minutes
    )
    deadline_at = min(now + allowed, exam.closes_at)
    session_id = uuid.uuid4()
    inserted = (
        await db.execute(
            _INSERT_SESSION,
            {
                "id": session_id,
                "exam_id": exam.id,
                "user_id": principal.id,
                "started_at": now,
                "deadline_at": deadline_at,
                "seed": seed,
                "paper": paper,
                "ip_address": ip,
                "user_agent": user_agent,
            },
        )
    ).scalar_one_or_none()
    if inserted is None:
        # The exam changed between our checks and the insert (closed, attempts used).
        raise Conflict("This exam can no longer be started", code="exam_unavailable")
    delay = (deadline_at - now).total_seconds() + grace_seconds
    await enqueue(
        db,
        AUTOSUBMIT,
        args={"session_id": str(session_id)},
        exam_id=exam.id,
        session_id=session_id,
        requested_by=principal.id,
        delay_ms=max(0, int(delay * 1000)),
    )
    await db.commit()
    session = await db.get(ExamSession, session_id)
    assert session is not None
    log.info(
        "session_started",
        session_id=str(session_id),
        exam_id=str(exam.id),
        attempt=inserted,
        deadline_at=deadline_at.isoformat(),
    )
    return await _session_view(db, session, exam, now), True


# ---------------------------------------------------------------- autosave

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
#  - the outer SELECT reads the row as it was before the statement, which is the
#    newer answer that won when this one was not applied.
# It runs on the asyncpg connection itself (see ``autosave``), so the parameters
# are positional and JSON travels as text, whatever codecs the pool installed:
#  $1 new row id, $2 session id, $3 user id, $4 question id, $5 answer (JSON text),
#  $6 client_seq.
_AUTOSAVE = """
    WITH s AS (
        SELECT id, ip_address, user_agent,
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
        RETURNING client_seq, saved_at
    )
    SELECT s.open, s.on_paper, s.ip_address, s.user_agent,
           saved.client_seq AS saved_seq, saved.saved_at AS saved_at,
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
) -> AutosaveOut:
    """Save the student's answer to one question unless a newer one is already stored.

    The hot path: one statement in autocommit (plus, once a minute per
    question, the question's kind). 404 for a session that is not the
    student's or a question not on their paper; 409 ``session_closed`` after
    submit or the deadline, changing nothing; 422 naming the field when the
    answer does not fit the question's kind.
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


# ---------------------------------------------------------------- submit and auto-submit


async def _enqueue_grading(db: AsyncSession, session: ExamSession) -> Job:
    return await enqueue(
        db,
        GRADE_SESSION,
        args={"session_id": str(session.id)},
        exam_id=session.exam_id,
        session_id=session.id,
        requested_by=None,
    )


async def _grading_job_id(db: AsyncSession, session_id: uuid.UUID) -> uuid.UUID | None:
    job_id: uuid.UUID | None = (
        await db.execute(
            select(Job.id)
            .where(Job.session_id == session_id, Job.kind == "grade_session")
            .order_by(Job.created_at, Job.id)
            .limit(1)
        )
    ).scalar_one_or_none()
    return job_id


async def _expire(db: AsyncSession, sessions: Sequence[ExamSession]) -> list[uuid.UUID]:
    """Mark locked, active, past-deadline sessions ``expired`` and queue their grading.

    Every answer saved before the deadline stays as it is; the autosave guard
    already refused anything later.
    """
    job_ids: list[uuid.UUID] = []
    for session in sessions:
        session.status = "expired"
        session.submitted_at = session.deadline_at
        job = await _enqueue_grading(db, session)
        job_ids.append(job.id)
        log.info("session_expired", session_id=str(session.id), job_id=str(job.id))
    await db.flush()
    return job_ids


async def submit_session(
    db: AsyncSession, session_id: uuid.UUID, principal: Principal, *, grace_seconds: int
) -> SubmitOut:
    """End the student's session and queue its grading; idempotent.

    A second submit (or a submit after the server finalized the session)
    changes nothing and answers with the current status and the same grading
    job. A submit that arrives after the deadline plus grace finds the session
    ``expired``: the server's deadline, not the client's, decides.
    """
    session = await _own_session(db, session_id, principal, lock=True)
    if session.status != "active":
        done = SubmitOut(
            status=session.status,  # type: ignore[arg-type]
            job_id=await _grading_job_id(db, session.id),
            submitted_at=session.submitted_at,
        )
        await db.rollback()
        return done
    now = await _db_now(db)
    if now > session.deadline_at + timedelta(seconds=grace_seconds):
        job_ids = await _expire(db, [session])
        await db.commit()
        return SubmitOut(status="expired", job_id=job_ids[0], submitted_at=session.submitted_at)
    session.status = "submitted"
    session.submitted_at = min(now, session.deadline_at)
    job = await _enqueue_grading(db, session)
    await db.commit()
    log.info("session_submitted", session_id=str(session.id), job_id=str(job.id))
    return SubmitOut(status="submitted", job_id=job.id, submitted_at=session.submitted_at)


async def finalize_expired_session(
    db: AsyncSession, session_id: uuid.UUID, *, commit: bool = True
) -> uuid.UUID | None:
    """Auto-submit one session whose deadline has passed; the grading job's id.

    Called by the ``autosubmit_session`` actor (a delayed message sent at
    start). Does nothing and returns None when the session is already
    finished, unknown, or not yet past its deadline, so duplicate or early
    messages are harmless. ``commit=False`` leaves the commit (or rollback) to
    the caller, e.g. to finish its own job row in the same transaction.
    """
    session = (
        await db.execute(
            select(ExamSession)
            .where(
                ExamSession.id == session_id,
                ExamSession.status == "active",
                ExamSession.deadline_at <= func.now(),
            )
            .with_for_update(skip_locked=True)
        )
    ).scalar_one_or_none()
    if session is None:
        return None
    job_ids = await _expire(db, [session])
    if commit:
        await db.commit()
    return job_ids[0]


async def sweep_expired_sessions(
    db: AsyncSession, now: datetime | None = None, *, grace_seconds: int | None = None
) -> int:
    """Auto-submit every active session past its deadline plus grace; commit; how many.

    The periodic safety net behind the delayed messages: a lost message or a
    restarted worker still leaves no session open. Rows locked by someone else
    (a submit in flight, another sweeper) are skipped, not waited for.
    """
    if grace_seconds is None:
        from safexam.core.settings import get_settings

        grace_seconds = get_settings().autosubmit_grace_seconds
    if now is None:
        now = await _db_now(db)
    cutoff = now - timedelta(seconds=grace_seconds)
    total = 0
    for _ in range(SWEEP_MAX_BATCHES):
        batch = list(
            (
                await db.execute(
                    select(ExamSession)
                    .where(ExamSession.status == "active", ExamSession.deadline_at <= cutoff)
                    .order_by(ExamSession.deadline_at)
                    .limit(SWEEP_BATCH)
                    .with_for_update(skip_locked=True)
                )
            ).scalars()
        )
        if not batch:
            break
        await _expire(db, batch)
        await db.commit()
        total += len(batch)
        if len(batch) < SWEEP_BATCH:
            break
    if total:
        log.info("sessions_swept", count=total)
    return total


# ---------------------------------------------------------------- release and review


async def release_results(db: AsyncSession, exam_id: uuid.UUID, principal: Principal) -> ReleaseOut:
    """Release an exam's results to its students now (any policy); owner only; commit."""
    from safexam.auth.guards import ensure_owner

    exam = (
        await db.execute(select(Exam).where(Exam.id == exam_id).with_for_update())
    ).scalar_one_or_none()
    if exam is None:
        raise NotFound("exam not found")
    ensure_owner(exam.owner_id, principal, "exam")
    if exam.status == "draft":
        raise Conflict("Publish the exam before releasing results", code="exam_not_published")
    now = await _db_now(db)
    if exam.released_at is None:
        exam.released_at = now
    released = await db.execute(
        update(Result)
        .where(
            Result.session_id.in_(select(ExamSession.id).where(ExamSession.exam_id == exam.id)),
            Result.released_at.is_(None),
        )
        .values(released_at=now)
    )
    released_at = exam.released_at
    await db.commit()
    count = int(getattr(released, "rowcount", 0) or 0)
    log.info("results_released", exam_id=str(exam.id), count=count)
    return ReleaseOut(exam_id=exam.id, released_at=released_at, results_released=count)


async def review_session(
    db: AsyncSession, session_id: uuid.UUID, principal: Principal
) -> ReviewOut:
    """Each question with the student's answer, the correct answer, score and feedback.

    403 ``results_not_released`` until the exam's release policy allows it.
    """
    now = await _db_now(db)
    session = await _own_session(db, session_id, principal)
    exam = await db.get(Exam, session.exam_id)
    assert exam is not None
    result = await db.get(Result, session.id)
    if not results_visible(
        release_policy=exam.release_policy,
        closes_at=exam.closes_at,
        exam_released_at=exam.released_at,
        result=result,
        now=now,
    ):
        raise Forbidden("Results of this exam are not released yet", code="results_not_released")
    assert result is not None
    question_ids = paper_question_ids(session.paper)
    questions = {
        q.id: q
        for q in (await db.execute(select(Question).where(Question.id.in_(question_ids)))).scalars()
    }
    responses = {
        r.question_id: r
        for r in (
            await db.execute(select(Response).where(Response.session_id == session.id))
        ).scalars()
    }
    items: list[ReviewItem] = []
    for entry in session.paper:
        q = questions.get(uuid.UUID(str(entry["question_id"])))
        if q is None:
            continue
        r = responses.get(q.id)
        prompt, body = concrete_question(
            q.kind, q.prompt, q.body, entry.get("variant"), variant_seed(session.seed, q.id)
        )
        view = public_view(q.kind, body, entry.get("choice_order"))
        score = None
        if r is not None:
            score = r.override_score if r.override_score is not None else r.score
        items.append(
            ReviewItem(
                id=q.id,
                kind=q.kind,
                prompt=prompt,
                points=float(entry["points"]),
                answer=r.answer if r is not None else None,
                correct_answer=correct_answer(q.kind, body),
                score=score,
                feedback=(r.override_comment or r.feedback) if r is not None else None,
                choices=view.get("choices"),
                languages=view.get("languages"),
            )
        )
    return ReviewOut(
        session_id=session.id,
        exam_id=session.exam_id,
        status=session.status,  # type: ignore[arg-type]
        score=result.score,
        max_score=result.max_score,
        released_at=result.released_at or exam.released_at,
        questions=items,
    )
