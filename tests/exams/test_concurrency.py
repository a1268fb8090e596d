"""Authoring under concurrent requests: no lost rules, no 500s."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from safexam.auth.guards import Principal
from safexam.core.errors import Unprocessable
from safexam.exams import service
from safexam.exams.models import Enrollment, Question
from tests.factories import new_exam, new_question
from tests.helpers import login, make_user


async def test_publish_racing_a_retire_never_leaves_a_draft_in_a_published_exam(
    make_client: Any, db: AsyncSession
) -> None:
    educator = await make_user(db, "educator")
    first, second = await make_client(), await make_client()
    await login(first, educator.email)
    await login(second, educator.email)
    for _ in range(4):
        question = await new_question(first)
        exam = await new_exam(first, [{"question_id": question["id"]}])
        published, retired = await asyncio.wait_for(
            asyncio.gather(
                first.post(f"/api/v1/exams/{exam['id']}/publish"),
                second.patch(f"/api/v1/questions/{question['id']}", json={"status": "draft"}),
            ),
            timeout=30,
        )
        assert published.status_code in (200, 422), published.text
        assert retired.status_code in (200, 409), retired.text
        exam_now = (await first.get(f"/api/v1/exams/{exam['id']}")).json()
        question_now = (await first.get(f"/api/v1/questions/{question['id']}")).json()
        # Exactly one of the two wins, and the loser says why.
        if exam_now["status"] == "published":
            assert question_now["status"] == "active"
            assert retired.json()["error"]["code"] == "question_in_published_exam"
        else:
            assert question_now["status"] == "draft"
            assert published.json()["error"]["code"] == "not_publishable"


async def test_simultaneous_enrollments_of_one_email_make_one_row(
    make_client: Any, db: AsyncSession
) -> None:
    educator = await make_user(db, "educator")
    clients = [await make_client() for _ in range(3)]
    for c in clients:
        await login(c, educator.email)
    question = await new_question(clients[0])
    exam = await new_exam(clients[0], [{"question_id": question["id"]}])
    url = f"/api/v1/exams/{exam['id']}/enrollments"
    payload = {"students": [{"email": "same@college.edu", "extra_minutes": 5}]}
    responses = await asyncio.wait_for(
        asyncio.gather(*(c.put(url, json=payload) for c in clients)), timeout=30
    )
    assert [r.status_code for r in responses] == [200, 200, 200]
    rows = await db.execute(
        select(func.count()).select_from(Enrollment).where(Enrollment.email == "same@college.edu")
    )
    assert rows.scalar_one() == 1


async def test_publish_waits_for_an_uncommitted_retire(
    make_client: Any, db: AsyncSession, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    """The interleaving a lock must prevent: the retire has checked "no published
    exam uses me" and not committed yet when publish reads the question."""
    educator = await make_user(db, "educator")
    client = await make_client()
    await login(client, educator.email)
    question = await new_question(client)
    exam = await new_exam(client, [{"question_id": question["id"]}])
    principal = Principal(
        id=educator.id,
        email=educator.email,
        name=educator.name,
        role=educator.role,
        organization_id=educator.organization_id,
    )
    async with sessionmaker() as retire, sessionmaker() as publish:
        # The retire holds its row lock, as PATCH /questions/{id} does, and has
        # written its new status, but has not committed.
        await retire.execute(
            select(Question).where(Question.id == uuid.UUID(question["id"])).with_for_update()
        )
        await retire.execute(
            update(Question).where(Question.id == uuid.UUID(question["id"])).values(status="draft")
        )

        async def publish_it() -> str:
            locked = await service.get_owned_exam(
                publish, uuid.UUID(exam["id"]), principal, for_update=True
            )
            try:
                return (await service.publish_exam(publish, locked)).status
            except Unprocessable:
                await publish.rollback()
                return "refused"

        task = asyncio.create_task(publish_it())
        await asyncio.sleep(0.5)
        waiting = not task.done()
        await retire.commit()
        outcome = await asyncio.wait_for(task, timeout=10)
    assert waiting, "publish read the question while a retire of it was in flight"
    assert outcome == "refused"
    assert (await client.get(f"/api/v1/exams/{exam['id']}")).json()["status"] == "draft"
