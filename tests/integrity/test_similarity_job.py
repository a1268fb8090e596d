"""The similarity job's service: final programs compared, pairs kept across reruns, the sweep."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from safexam.integrity.cohort import run_similarity, sweep_closed_exams
from safexam.integrity.models import SimilarityPair
from safexam.jobs.models import Job
from tests.integrity.world import cohort_world


async def _pairs(db: AsyncSession, exam_id: object) -> list[SimilarityPair]:
    return list(
        (
            await db.execute(select(SimilarityPair).where(SimilarityPair.exam_id == exam_id))
        ).scalars()
    )


async def test_the_copied_pair_is_stored_with_regions_and_a_rerun_keeps_the_decision(
    db: AsyncSession,
) -> None:
    world = await cohort_world(db)
    summary = await run_similarity(db, world.exam.id, world.question.id)
    await db.commit()
    assert summary["languages"]["python"]["programs"] == 4
    pairs = await _pairs(db, world.exam.id)
    copied = {world.sessions["ada"].id, world.sessions["ben"].id}
    assert [{p.session_a_id, p.session_b_id} for p in pairs] == [copied]
    pair = pairs[0]
    pair_id = pair.id
    assert pair.score >= 0.9 and pair.regions
    # The regions' lines are lines of the stored programs.
    for region in pair.regions:
        assert 1 <= region["a_first"] <= region["a_last"] <= len(pair.a_source.splitlines())
        assert 1 <= region["b_first"] <= region["b_last"] <= len(pair.b_source.splitlines())
    await db.execute(
        update(SimilarityPair).where(SimilarityPair.id == pair_id).values(decision="escalated")
    )
    await db.commit()
    await run_similarity(db, world.exam.id, world.question.id)
    await db.commit()
    again = (
        await db.execute(
            select(SimilarityPair.id, SimilarityPair.decision).where(
                SimilarityPair.exam_id == world.exam.id
            )
        )
    ).all()
    assert [tuple(row) for row in again] == [(pair_id, "escalated")]


async def test_a_closed_exam_is_queued_once_and_an_open_one_waits(db: AsyncSession) -> None:
    closed = await cohort_world(db, closed=True)
    still_open = await cohort_world(db, closed=False)
    now = datetime.now(UTC)
    assert await sweep_closed_exams(db, now) >= 1
    jobs = list((await db.execute(select(Job).where(Job.kind == "similarity"))).scalars())
    exams = {j.exam_id for j in jobs}
    assert closed.exam.id in exams and still_open.exam.id not in exams
    mine = [j for j in jobs if j.exam_id == closed.exam.id]
    assert [(j.queue, j.args["question_id"]) for j in mine] == [
        ("regrade", str(closed.question.id))
    ]
    assert await sweep_closed_exams(db, now) == 0
