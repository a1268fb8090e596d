"""The integrity review: one place where an exam's owner weighs the evidence and decides.

Per exam, the similar pairs and clusters the similarity job found and the
sessions whose integrity log holds flagged events (which kinds count, and
from what duration or size, are the exam's own settings); per session, a
timeline of its events beside the answers it saved and the time extensions
and announcements it received; per pair, both programs and their matching
regions. Decisions (reviewed, dismissed, escalated, with a note) are
audited, and nothing here changes a score. Everything is the owner's (or an
admin's): anyone else is told the exam does not exist.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import datetime
from typing import Any

import msgspec
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from safexam.auth.guards import Principal, ensure_owner
from safexam.auth.models import User
from safexam.coding.models import CodingSubmission
from safexam.core.audit import AuditEvent, record_audit
from safexam.core.errors import NotFound
from safexam.exams.models import Exam, Question
from safexam.exams.schemas import DEFAULT_FLAG_KINDS
from safexam.integrity.models import (
    ActivityLog,
    SessionReview,
    SimilarityCluster,
    SimilarityPair,
)
from safexam.integrity.saves import (
    MAX_EVENTS_WITH_SAVES,
    RETURN_KINDS,
    SAVE_WINDOW,
    Around,
    event_times,
    saves_around,
)
from safexam.integrity.schemas import (
    ClusterOut,
    DecisionIn,
    FlaggedSession,
    IntegrityReviewOut,
    PairOut,
    PairSummary,
    RegionOut,
    ReviewThresholds,
    SessionTimelineOut,
    SimilarityJobOut,
    StudentRef,
    TimelineItem,
    TimelineQuestion,
)
from safexam.integrity.service import flag_kinds_of
from safexam.jobs.kinds import SIMILARITY
from safexam.jobs.models import Job
from safexam.sessions.models import Announcement, ExamSession
from safexam.sessions.results import question_labels
from safexam.sessions.review import answered_paper
from safexam.sessions.rules import db_now

__all__ = [
    "decide_pair",
    "decide_session",
    "integrity_review",
    "pair_detail",
    "session_timeline",
    "set_thresholds",
    "thresholds_of",
]

REVIEW_KEY = "review"
MAX_PAIRS_LISTED = 500


def _flag_kinds(integrity: dict[str, Any] | None) -> set[str]:
    # An exam that never chose shows the defaults its settings page shows.
    if isinstance((integrity or {}).get("flag_kinds"), list):
        return set(flag_kinds_of(integrity))
    return set(DEFAULT_FLAG_KINDS)


def thresholds_of(integrity: dict[str, Any] | None) -> ReviewThresholds:
    """The exam's review thresholds; lenient on read (an older row has none)."""
    stored = (integrity or {}).get(REVIEW_KEY)
    try:
        return msgspec.convert(stored or {}, ReviewThresholds)
    except msgspec.ValidationError:
        return ReviewThresholds()


async def _owned_exam(db: AsyncSession, exam_id: uuid.UUID, principal: Principal) -> Exam:
    exam = await db.get(Exam, exam_id)
    if exam is None:
        raise NotFound("exam not found")
    ensure_owner(exam.owner_id, principal, "exam", organization_id=exam.organization_id)
    return exam


async def _students(db: AsyncSession, exam_id: uuid.UUID) -> dict[uuid.UUID, StudentRef]:
    rows = await db.execute(
        select(ExamSession.id, User.name, User.email)
        .join(User, User.id == ExamSession.user_id)
        .where(ExamSession.exam_id == exam_id)
    )
    return {sid: StudentRef(session_id=sid, name=name, email=email) for sid, name, email in rows}


def _unknown(session_id: uuid.UUID) -> StudentRef:
    return StudentRef(session_id=session_id, name="(removed)", email="")


def _summary(
    pair: SimilarityPair, students: dict[uuid.UUID, StudentRef], questions: dict[uuid.UUID, str]
) -> dict[str, Any]:
    return {
        "id": pair.id,
        "question_id": pair.question_id,
        "question": questions.get(pair.question_id, ""),
        "language": pair.language,
        "score": pair.score,
        "a_coverage": pair.a_coverage,
        "b_coverage": pair.b_coverage,
        "a": students.get(pair.session_a_id) or _unknown(pair.session_a_id),
        "b": students.get(pair.session_b_id) or _unknown(pair.session_b_id),
        "decision": pair.decision,
        "note": pair.note,
        "decided_at": pair.decided_at,
    }


async def _question_prompts(db: AsyncSession, ids: set[uuid.UUID]) -> dict[uuid.UUID, str]:
    if not ids:
        return {}
    rows = await db.execute(select(Question.id, Question.prompt).where(Question.id.in_(ids)))
    return {qid: _first_line(prompt) for qid, prompt in rows}


def _first_line(prompt: str | None) -> str:
    """A question's prompt in a line: its first, cut at 120 characters."""
    return prompt.splitlines()[0][:120] if prompt else ""


def _focus_durations(events: list[ActivityLog], end: datetime | None) -> dict[int, float | None]:
    """Seconds each ``focus_lost`` lasted (to the next ``focus_gained``; else to the end)."""
    out: dict[int, float | None] = {}
    open_since: list[ActivityLog] = []
    for e in events:
        if e.kind == "focus_lost":
            open_since.append(e)
        elif e.kind == "focus_gained" and open_since:
            for lost in open_since:
                out[lost.id] = (e.server_at - lost.server_at).total_seconds()
            open_since = []
    for lost in open_since:
        out[lost.id] = (end - lost.server_at).total_seconds() if end else None
    return out


def _is_flag(
    e: ActivityLog,
    kinds: set[str],
    thresholds: ReviewThresholds,
    focus: dict[int, float | None],
) -> bool:
    if e.kind not in kinds:
        return False
    if e.kind == "focus_lost" and thresholds.focus_lost_min_seconds:
        seconds = focus.get(e.id)
        return seconds is None or seconds >= thresholds.focus_lost_min_seconds
    if e.kind == "paste" and thresholds.paste_min_chars:
        length = e.details.get("length") if isinstance(e.details, dict) else None
        return isinstance(length, int) and length >= thresholds.paste_min_chars
    return True


async def integrity_review(
    db: AsyncSession, exam_id: uuid.UUID, principal: Principal
) -> IntegrityReviewOut:
    """The exam's similar pairs (highest first), clusters, flagged sessions and recent jobs."""
    exam = await _owned_exam(db, exam_id, principal)
    thresholds = thresholds_of(exam.integrity)
    students = await _students(db, exam_id)
    pairs = list(
        (
            await db.execute(
                select(SimilarityPair)
                .where(
                    SimilarityPair.exam_id == exam_id,
                    SimilarityPair.score >= thresholds.similarity_threshold,
                )
                .order_by(SimilarityPair.score.desc(), SimilarityPair.id)
                .limit(MAX_PAIRS_LISTED)
            )
        ).scalars()
    )
    clusters = list(
        (
            await db.execute(
                select(SimilarityCluster)
                .where(SimilarityCluster.exam_id == exam_id)
                .order_by(SimilarityCluster.top_score.desc(), SimilarityCluster.id)
            )
        ).scalars()
    )
    questions = await _question_prompts(
        db, {p.question_id for p in pairs} | {c.question_id for c in clusters}
    )
    kinds = _flag_kinds(exam.integrity)
    events = list(
        (
            await db.execute(
                select(ActivityLog)
                .join(ExamSession, ExamSession.id == ActivityLog.session_id)
                .where(
                    ExamSession.exam_id == exam_id,
                    ActivityLog.kind.in_(kinds | {"focus_gained"}),
                )
                .order_by(ActivityLog.session_id, ActivityLog.id)
            )
        ).scalars()
    )
    ends = dict(
        (
            await db.execute(
                select(ExamSession.id, ExamSession.submitted_at).where(
                    ExamSession.exam_id == exam_id
                )
            )
        ).all()
    )
    by_session: dict[uuid.UUID, list[ActivityLog]] = defaultdict(list)
    for e in events:
        by_session[e.session_id].append(e)
    reviews = {
        r.session_id: r
        for r in (
            await db.execute(select(SessionReview).where(SessionReview.exam_id == exam_id))
        ).scalars()
    }
    flagged: list[FlaggedSession] = []
    for sid, evs in by_session.items():
        focus = _focus_durations(evs, ends.get(sid))
        counts: dict[str, int] = defaultdict(int)
        for e in evs:
            if _is_flag(e, kinds, thresholds, focus):
                counts[e.kind] += 1
        total = sum(counts.values())
        if not total:
            continue
        review = reviews.get(sid)
        flagged.append(
            FlaggedSession(
                student=students.get(sid) or _unknown(sid),
                flags=total,
                counts=dict(sorted(counts.items())),
                decision=review.decision if review else "open",  # type: ignore[arg-type]
                note=review.note if review else None,
            )
        )
    flagged.sort(key=lambda f: (-f.flags, f.student.email))
    jobs = (
        await db.execute(
            select(Job)
            .where(Job.exam_id == exam_id, Job.kind == SIMILARITY.name)
            .order_by(Job.created_at.desc())
            .limit(10)
        )
    ).scalars()
    return IntegrityReviewOut(
        exam_id=exam.id,
        title=exam.title,
        thresholds=thresholds,
        flag_kinds=sorted(kinds),
        pairs=[PairSummary(**_summary(p, students, questions)) for p in pairs],
        clusters=[
            ClusterOut(
                id=c.id,
                question_id=c.question_id,
                question=questions.get(c.question_id, ""),
                language=c.language,
                top_score=c.top_score,
                sessions=[students.get(s) or _unknown(s) for s in c.session_ids],
            )
            for c in clusters
        ],
        sessions=flagged,
        jobs=[
            SimilarityJobOut(
                id=j.id,
                status=j.status,
                question_id=j.args.get("question_id"),
                created_at=j.created_at,
            )
            for j in jobs
        ],
    )


async def _owned_pair(
    db: AsyncSession, exam_id: uuid.UUID, pair_id: uuid.UUID, principal: Principal
) -> SimilarityPair:
    await _owned_exam(db, exam_id, principal)
    pair = await db.get(SimilarityPair, pair_id)
    if pair is None or pair.exam_id != exam_id:
        raise NotFound("pair not found")
    return pair


async def _pair_out(db: AsyncSession, pair: SimilarityPair) -> PairOut:
    students = await _students(db, pair.exam_id)
    questions = await _question_prompts(db, {pair.question_id})
    return PairOut(
        **_summary(pair, students, questions),
        a_source=pair.a_source,
        b_source=pair.b_source,
        regions=[msgspec.convert(r, RegionOut) for r in pair.regions],
    )


async def pair_detail(
    db: AsyncSession, exam_id: uuid.UUID, pair_id: uuid.UUID, principal: Principal
) -> PairOut:
    """Both programs of a similar pair and their matching regions (lines, 1-based)."""
    return await _pair_out(db, await _owned_pair(db, exam_id, pair_id, principal))


async def decide_pair(
    db: AsyncSession,
    exam_id: uuid.UUID,
    pair_id: uuid.UUID,
    data: DecisionIn,
    principal: Principal,
) -> PairOut:
    """Record the owner's decision on a pair, audited; commit. No score changes."""
    pair = await _owned_pair(db, exam_id, pair_id, principal)
    previous = pair.decision
    pair.decision = data.decision
    pair.note = data.note.strip() or None
    pair.decided_by = principal.id
    pair.decided_at = await _now(db)
    record_audit(
        db,
        actor_id=principal.id,
        action="similarity.decide",
        subject_type="similarity_pair",
        subject_id=pair.id,
        exam_id=exam_id,
        reason=pair.note,
        details={
            "decision": data.decision,
            "previous": previous,
            "sessions": [str(pair.session_a_id), str(pair.session_b_id)],
            "score": pair.score,
        },
    )
    await db.commit()
    return await _pair_out(db, pair)


async def _now(db: AsyncSession) -> datetime:
    return await db_now(db)


async def _owned_session(
    db: AsyncSession, exam_id: uuid.UUID, session_id: uuid.UUID, principal: Principal
) -> tuple[Exam, ExamSession]:
    exam = await _owned_exam(db, exam_id, principal)
    session = await db.get(ExamSession, session_id)
    if session is None or session.exam_id != exam_id:
        raise NotFound("session not found")
    return exam, session


def _event_text(e: ActivityLog, seconds: float | None) -> str:
    details = e.details if isinstance(e.details, dict) else {}
    if e.kind == "focus_lost":
        if seconds is None:
            return "The exam window lost focus and did not get it back"
        return f"The exam window lost focus for {_duration(seconds)}"
    if e.kind == "paste":
        length = details.get("length")
        return f"Pasted {length} characters" if isinstance(length, int) else "Pasted text"
    if e.kind == "ip_changed":
        return "The network address or browser changed"
    return {
        "focus_gained": "The exam window got focus back",
        "visibility_hidden": "Switched to another tab or hid the window",
        "visibility_visible": "Came back to the exam tab",
        "fullscreen_exit": "Left full screen",
        "fullscreen_enter": "Went back to full screen",
        "copy": "Copied text",
        "context_menu": "Opened the context menu",
        "devtools_opened": "Opened the browser's developer tools",
        "offline": "The connection dropped",
        "online": "The connection came back",
        "resize": "Resized the window",
        "multiple_screens": "More than one screen was detected",
    }.get(e.kind, e.kind.replace("_", " ").capitalize())


def _duration(seconds: float) -> str:
    whole = round(seconds)
    if whole < 60:
        return f"{whole} second" + ("" if whole == 1 else "s")
    minutes, rest = divmod(whole, 60)
    return f"{minutes} min {rest} s"


async def session_timeline(
    db: AsyncSession, exam_id: uuid.UUID, session_id: uuid.UUID, principal: Principal
) -> SessionTimelineOut:
    """The session's events in time order, beside its saved answers, runs, submissions,
    time extensions and the exam's announcements; each integrity event with the
    answers saved within :data:`SAVE_WINDOW` before and after it."""
    exam, session = await _owned_session(db, exam_id, session_id, principal)
    thresholds = thresholds_of(exam.integrity)
    kinds = _flag_kinds(exam.integrity)
    student = (await _students(db, exam_id)).get(session_id) or _unknown(session_id)
    events = list(
        (
            await db.execute(
                select(ActivityLog)
                .where(ActivityLog.session_id == session_id)
                .order_by(ActivityLog.id)
                .limit(5_000)
            )
        ).scalars()
    )
    focus = _focus_durations(events, session.submitted_at)
    labels = await question_labels(db, exam_id)
    happened = event_times(events)
    departures = [e for e in events if e.kind not in RETURN_KINDS][:MAX_EVENTS_WITH_SAVES]
    around: dict[int, Around] = dict(
        zip(
            (e.id for e in departures),
            await saves_around(db, session_id, [happened[e.id] for e in departures], labels),
            strict=True,
        )
    )
    items: list[TimelineItem] = []
    flags = 0
    for e in events:
        flag = _is_flag(e, kinds, thresholds, focus)
        flags += flag
        before, after, more_before, more_after = around.get(e.id, ([], [], 0, 0))
        items.append(
            TimelineItem(
                at=e.server_at,
                kind=e.kind,
                text=_event_text(e, focus.get(e.id)),
                flagged=flag,
                seconds=focus.get(e.id) if e.kind == "focus_lost" else None,
                happened_at=happened[e.id],
                saves_listed=e.id in around,
                saves_before=before,
                saves_after=after,
                more_before=more_before,
                more_after=more_after,
            )
        )
    # The paper with each answer's last save (a question with a save cannot be deleted).
    _, paper = await answered_paper(db, session)
    for p in paper:
        if p.response is None:
            continue
        answer = p.response.answer
        size = ""
        if isinstance(answer, dict) and isinstance(answer.get("source"), str):
            size = f" ({len(answer['source'].splitlines())} lines of code)"
        items.append(
            TimelineItem(
                at=p.response.saved_at,
                kind="answer_saved",
                text=f"Last saved the answer to “{_first_line(p.question.prompt)}”{size}",
            )
        )
    for kind, created_at, source, verdict in (
        await db.execute(
            select(
                CodingSubmission.kind,
                CodingSubmission.created_at,
                CodingSubmission.source,
                CodingSubmission.verdict,
            )
            .where(CodingSubmission.session_id == session_id)
            .order_by(CodingSubmission.created_at)
            .limit(1_000)
        )
    ).all():
        what = "Submitted" if kind == "submit" else "Ran"
        outcome = f", {verdict.replace('_', ' ')}" if verdict else ""
        items.append(
            TimelineItem(
                at=created_at,
                kind=f"code_{kind}",
                text=f"{what} a program of {len(source.splitlines())} lines{outcome}",
            )
        )
    for action, at, details in (
        await db.execute(
            select(AuditEvent.action, AuditEvent.at, AuditEvent.details).where(
                AuditEvent.exam_id == exam_id,
                AuditEvent.action.in_(("session.extend", "exam.extend")),
                (AuditEvent.subject_id == session_id) | (AuditEvent.action == "exam.extend"),
                AuditEvent.at >= session.started_at,
            )
        )
    ).all():
        minutes = (details or {}).get("minutes")
        whom = "this student" if action == "session.extend" else "everyone"
        items.append(
            TimelineItem(
                at=at, kind="time_extended", text=f"Time extended by {minutes} min for {whom}"
            )
        )
    end = session.submitted_at or session.deadline_at
    for at, message in (
        await db.execute(
            select(Announcement.created_at, Announcement.message).where(
                Announcement.exam_id == exam_id,
                Announcement.created_at >= session.started_at,
                Announcement.created_at <= end,
            )
        )
    ).all():
        items.append(TimelineItem(at=at, kind="announcement", text=f"Announcement: {message}"))
    items.append(TimelineItem(at=session.started_at, kind="started", text="Started the exam"))
    if session.submitted_at is not None:
        ended = "Submitted" if session.status != "expired" else "Submitted at the deadline"
        items.append(TimelineItem(at=session.submitted_at, kind="submitted", text=ended))
    items.sort(key=lambda i: i.at)
    review = await db.get(SessionReview, session_id)
    return SessionTimelineOut(
        exam_id=exam_id,
        student=student,
        status=session.status,
        started_at=session.started_at,
        deadline_at=session.deadline_at,
        submitted_at=session.submitted_at,
        flags=flags,
        decision=review.decision if review else "open",  # type: ignore[arg-type]
        note=review.note if review else None,
        items=items,
        questions=[
            TimelineQuestion(
                question_id=p.question.id,
                label=labels.get(p.question.id, "Q?"),
                kind=p.question.kind,
                prompt=_first_line(p.prompt),
                choices=p.view.get("choices"),
            )
            for p in paper
        ],
        save_window_seconds=int(SAVE_WINDOW.total_seconds()),
    )


async def decide_session(
    db: AsyncSession,
    exam_id: uuid.UUID,
    session_id: uuid.UUID,
    data: DecisionIn,
    principal: Principal,
) -> SessionTimelineOut:
    """Record the owner's decision on a session's integrity evidence, audited; commit."""
    await _owned_session(db, exam_id, session_id, principal)
    review = await db.get(SessionReview, session_id)
    previous = review.decision if review else "open"
    now = await _now(db)
    note = data.note.strip() or None
    if review is None:
        review = SessionReview(session_id=session_id, exam_id=exam_id)
        db.add(review)
    review.decision = data.decision
    review.note = note
    review.decided_by = principal.id
    review.decided_at = now
    record_audit(
        db,
        actor_id=principal.id,
        action="session.integrity_review",
        subject_type="session",
        subject_id=session_id,
        exam_id=exam_id,
        reason=note,
        details={"decision": data.decision, "previous": previous},
    )
    await db.commit()
    return await session_timeline(db, exam_id, session_id, principal)


async def set_thresholds(
    db: AsyncSession, exam_id: uuid.UUID, data: ReviewThresholds, principal: Principal
) -> ReviewThresholds:
    """Store the exam's review thresholds beside its other integrity settings, audited; commit."""
    exam = await _owned_exam(db, exam_id, principal)
    stored = msgspec.to_builtins(data)
    exam.integrity = {**(exam.integrity or {}), REVIEW_KEY: stored}
    record_audit(
        db,
        actor_id=principal.id,
        action="exam.integrity_thresholds",
        subject_type="exam",
        subject_id=exam_id,
        exam_id=exam_id,
        details=stored,
    )
    await db.commit()
    return data
