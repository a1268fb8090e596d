"""HTTP routes of the integrity review: an exam owner's similar pairs, flagged sessions, decisions.

Guarded so that a student is told none of it exists (404), and every service
call checks the exam is the caller's (or the caller is an admin).
"""

from __future__ import annotations

import uuid

from litestar import Controller, get, post, put
from litestar.params import FromPath, JSONBody
from litestar.status_codes import HTTP_200_OK, HTTP_202_ACCEPTED

from safexam.auth.guards import CurrentUser, educator_or_admin_unseen
from safexam.core.deps import DB
from safexam.integrity import review
from safexam.integrity.cohort import request_similarity
from safexam.integrity.schemas import (
    DecisionIn,
    IntegrityReviewOut,
    PairOut,
    ReviewThresholds,
    SessionTimelineOut,
    SimilarityRequested,
)

__all__ = ["IntegrityReviewController"]


class IntegrityReviewController(Controller):
    """``/exams/{id}/integrity``: the review of one exam."""

    path = "/exams/{exam_id:uuid}/integrity"
    tags = ["integrity"]
    guards = [educator_or_admin_unseen]

    @get("/")
    async def overview(
        self, exam_id: FromPath[uuid.UUID], db: DB, principal: CurrentUser
    ) -> IntegrityReviewOut:
        """Similar pairs (highest first), clusters, flagged sessions and the similarity jobs."""
        return await review.integrity_review(db, exam_id, principal)

    @put("/thresholds", status_code=HTTP_200_OK)
    async def thresholds(
        self,
        exam_id: FromPath[uuid.UUID],
        data: JSONBody[ReviewThresholds],
        db: DB,
        principal: CurrentUser,
    ) -> ReviewThresholds:
        """Set when events and similarity count as flags for this exam (audited)."""
        return await review.set_thresholds(db, exam_id, data, principal)

    @post("/similarity", status_code=HTTP_202_ACCEPTED)
    async def compare(
        self, exam_id: FromPath[uuid.UUID], db: DB, principal: CurrentUser
    ) -> SimilarityRequested:
        """Compare the coding answers now: one job per coding question (audited)."""
        jobs = await request_similarity(db, exam_id, principal)
        return SimilarityRequested(job_ids=[j.id for j in jobs])

    @get("/pairs/{pair_id:uuid}")
    async def pair(
        self,
        exam_id: FromPath[uuid.UUID],
        pair_id: FromPath[uuid.UUID],
        db: DB,
        principal: CurrentUser,
    ) -> PairOut:
        """Both programs of a similar pair and their matching line ranges."""
        return await review.pair_detail(db, exam_id, pair_id, principal)

    @post("/pairs/{pair_id:uuid}/decision", status_code=HTTP_200_OK)
    async def decide_pair(
        self,
        exam_id: FromPath[uuid.UUID],
        pair_id: FromPath[uuid.UUID],
        data: JSONBody[DecisionIn],
        db: DB,
        principal: CurrentUser,
    ) -> PairOut:
        """Mark a pair reviewed, dismissed or escalated, with a note (audited; no score changes)."""
        return await review.decide_pair(db, exam_id, pair_id, data, principal)

    @get("/sessions/{session_id:uuid}")
    async def session(
        self,
        exam_id: FromPath[uuid.UUID],
        session_id: FromPath[uuid.UUID],
        db: DB,
        principal: CurrentUser,
    ) -> SessionTimelineOut:
        """A session's timeline: events, saved answers, runs, extensions, announcements."""
        return await review.session_timeline(db, exam_id, session_id, principal)

    @post("/sessions/{session_id:uuid}/decision", status_code=HTTP_200_OK)
    async def decide_session(
        self,
        exam_id: FromPath[uuid.UUID],
        session_id: FromPath[uuid.UUID],
        data: JSONBody[DecisionIn],
        db: DB,
        principal: CurrentUser,
    ) -> SessionTimelineOut:
        """Mark a session reviewed, dismissed or escalated, with a note (audited)."""
        return await review.decide_session(db, exam_id, session_id, data, principal)
