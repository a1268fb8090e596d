"""The judge pool's pre-warm signal and the exam-day figures, as /metrics publishes them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from safexam.exams.models import Enrollment, Exam
from safexam.ops.capacity import judge_prewarm_replicas
from tests.factories import make_exam, make_question, make_session, move_deadline
from tests.helpers import make_user


def _metric(text: str, name: str) -> float:
    (value,) = [
        float(line.split()[-1]) for line in text.splitlines() if line.startswith(f"{name} ")
    ]
    return value


async def _students(db: AsyncSession, exam: Exam, n: int) -> None:
    db.add_all(Enrollment(exam_id=exam.id, email=f"s{i}-{exam.id.hex[:6]}@x.edu") for i in range(n))
    await db.commit()


async def test_judge_replicas_rise_ahead_of_an_exam_with_code(
    db: AsyncSession, client: Any
) -> None:
    educator = await make_user(db, "educator")
    code = await make_question(db, educator, "coding")
    mcq = await make_question(db, educator, "mcq_single")
    now = datetime.now(UTC)
    soon = now + timedelta(minutes=10)

    async def wanted(at: datetime) -> int:
        return await judge_prewarm_replicas(db, now=at, minutes=15, students_per_judge=4)

    # Nothing near: no replica asked for.
    assert await wanted(now) == 0
    coding_exam = await make_exam(
        db, educator, [mcq, code], opens_at=soon, closes_at=soon + timedelta(hours=1)
    )
    await _students(db, coding_exam, 9)
    # Not counted: an exam without code, a draft, an exam opening in three hours.
    quiz = await make_exam(db, educator, [mcq], opens_at=soon, closes_at=soon + timedelta(hours=1))
    await _students(db, quiz, 40)
    draft = await make_exam(
        db, educator, [code], opens_at=soon, closes_at=soon + timedelta(hours=1), status="draft"
    )
    await _students(db, draft, 40)
    later = now + timedelta(hours=3)
    tomorrow = await make_exam(
        db, educator, [code], opens_at=later, closes_at=later + timedelta(hours=1)
    )
    await _students(db, tomorrow, 40)
    # A draw from the bank may hold code: it counts.
    drawn = await make_exam(
        db,
        educator,
        [{"tag": "arith", "count": 2}],
        opens_at=now - timedelta(minutes=5),
        closes_at=now + timedelta(hours=1),
    )
    await _students(db, drawn, 3)

    assert await wanted(now) == 3  # ceil((9 + 3) / 4)
    # Twenty minutes earlier the coding exam was 30 minutes away: the drawn one only.
    assert await wanted(now - timedelta(minutes=20)) == 1
    assert await wanted(now - timedelta(minutes=30)) == 0
    # Well after the openings the queue's length decides alone.
    assert await wanted(now + timedelta(minutes=40)) == 0
    assert await wanted(later - timedelta(minutes=5)) == 10

    # /metrics publishes it with the configured ratio (40 students per judge).
    text = (await client.get("/metrics")).text
    assert _metric(text, "safexam_judge_prewarm_replicas") == 1
    assert _metric(text, "safexam_exams_open") == 1  # the drawn exam opened 5 minutes ago


async def test_auto_submit_lag_and_queue_age_are_published(db: AsyncSession, client: Any) -> None:
    educator = await make_user(db, "educator")
    student = await make_user(db, "student")
    exam = await make_exam(db, educator, [await make_question(db, educator, "mcq_single")])
    text = (await client.get("/metrics")).text
    assert _metric(text, "safexam_sessions_overdue") == 0
    assert _metric(text, "safexam_autosubmit_lag_seconds") == 0
    session = await make_session(db, exam, student, [], {}, status="active")
    # Past its deadline by 5 minutes; the grace is 30 s, so auto-submit is 270 s late.
    await move_deadline(db, session.id, -300)
    text = (await client.get("/metrics")).text
    assert _metric(text, "safexam_sessions_overdue") == 1
    assert 269 <= _metric(text, "safexam_autosubmit_lag_seconds") <= 280
    assert 'safexam_queue_oldest_age_seconds{queue="judge"} 0.0' in text
