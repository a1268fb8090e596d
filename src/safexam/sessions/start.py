"""Starting an exam: the student's exam list, start or resume, and building the paper.

The database decides who may start: the insert itself re-checks the window
and the attempt count against PostgreSQL's clock, and unique indexes make
two simultaneous starts produce one session.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import structlog
from redis.asyncio import Redis
from sqlalchemy import bindparam, func, or_, select, text, true
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from safexam.auth.guards import Principal
from safexam.core.errors import Conflict, NotFound
from safexam.exams.banks import usable_questions
from safexam.exams.models import Enrollment, Exam, ExamItem, Question
from safexam.grading.models import Result
from safexam.integrity.service import note_client
from safexam.jobs import enqueue
from safexam.jobs.kinds import AUTOSUBMIT
from safexam.sessions.closing import expire_sessions
from safexam.sessions.models import ExamSession
from safexam.sessions.notify import publish_delta, started_delta
from safexam.sessions.paper import ItemSpec, QuestionSpec, build_paper
from safexam.sessions.review import session_view
from safexam.sessions.rules import db_now, results_visible, time_allowed
from safexam.sessions.schemas import SessionOut, StudentExam, StudentExamsOut, StudentExamState

__all__ = ["list_student_exams", "start_session"]

log = structlog.get_logger(__name__)

# A concurrent start loses the unique-index race at most once; a third failure is a bug.
START_ATTEMPTS = 3


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


async def list_student_exams(
    db: AsyncSession, principal: Principal, *, exam_id: uuid.UUID | None = None
) -> StudentExamsOut:
    """The student's enrolled, published exams with their state, soonest first
    (only ``exam_id``, when given: a lobby reads one exam, not the whole list).

    States: ``upcoming`` (not open yet), ``open`` (may start), ``in_progress``
    (a session is running), ``submitted`` (finished, results not visible),
    ``results_released``, and ``closed`` (the window passed without a start).
    """
    now = await db_now(db)
    exams = list(
        (
            await db.execute(
                select(Exam)
                .join(Enrollment, Enrollment.exam_id == Exam.id)
                .where(
                    Exam.status == "published",
                    or_(Enrollment.user_id == principal.id, Enrollment.email == principal.email),
                    Exam.organization_id == principal.organization_id,
                    true() if exam_id is None else Exam.id == exam_id,
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
                session_status=latest.status if latest else None,
                deadline_at=latest.deadline_at if latest else None,
            )
        )
    return StudentExamsOut(items=items, total=len(items))


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
        # A draw takes active questions only (never a draft): the exam owner's
        # own and those of banks shared with their organization at this moment.
        pools[tag] = list(
            (
                await db.execute(
                    select(Question.id).where(
                        usable_questions(exam.owner_id, exam.organization_id),
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
    redis: Redis | None = None,
) -> tuple[SessionOut, bool]:
    """Start the student's next attempt, or resume the running one; ``(view, created)``.

    With ``redis``, a new attempt is told to the exam's live monitor.

    The database decides: the insert itself re-checks the window and the
    attempt count, and the unique indexes (one active session per student and
    exam; one row per attempt number) make two simultaneous starts produce one
    session. The loser of that race rolls back and resumes the winner's.
    """
    for _ in range(START_ATTEMPTS):
        try:
            view, created = await _start_once(
                db, exam_id, principal, ip=ip, user_agent=user_agent, grace_seconds=grace_seconds
            )
            if created:
                await publish_delta(redis, started_delta(view, principal.id))
            return view, created
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
    now = await db_now(db)
    row = (
        await db.execute(
            select(Exam, Enrollment)
            .join(Enrollment, Enrollment.exam_id == Exam.id)
            .where(
                Exam.id == exam_id,
                Exam.status == "published",
                or_(Enrollment.user_id == principal.id, Enrollment.email == principal.email),
                Exam.organization_id == principal.organization_id,
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
            view = await session_view(db, active, exam, now)
            await db.commit()
            return view, False
        # Its deadline passed and no auto-submit has run yet: finalize it now, so a
        # lost message never blocks the next attempt. Committed on its own, on
        # purpose: the expiry (and its grading job) stands even when this start is
        # then refused (no attempt left, exam closed).
        await expire_sessions(db, [active])
        await db.commit()
        now = await db_now(db)
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
    allowed = time_allowed(
        exam.duration_minutes, enrollment.time_multiplier, enrollment.extra_minutes
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
    session = await db.get(ExamSession, session_id)
    assert session is not None
    view = await session_view(db, session, exam, now)
    await db.commit()
    log.info(
        "session_started",
        session_id=str(session_id),
        exam_id=str(exam.id),
        attempt=inserted,
        deadline_at=deadline_at.isoformat(),
    )
    return view, True
