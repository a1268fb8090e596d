"""The monitor page's forms without a browser: errors beside the field they name."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from tests.factories import enroll, make_exam, make_question
from tests.helpers import one, signed_in


async def test_the_action_forms_put_their_errors_beside_their_fields(
    make_client: Any, db: AsyncSession
) -> None:
    teacher, educator = await signed_in(make_client, db, "educator")
    exam = await make_exam(db, educator, [await make_question(db, educator, "mcq_single")])
    student_client, student = await signed_in(make_client, db, "student")
    await enroll(db, exam, student)
    await student_client.post(f"/api/v1/exams/{exam.id}/sessions")
    base = f"/educator/exams/{exam.id}/monitor"

    page = await teacher.post(f"{base}/extend", data={"minutes": "-5", "extend_reason": ""})
    assert page.status_code == 422
    assert page.headers["content-type"].startswith("text/html")
    assert 'id="minutes-error">Give a whole number of minutes from 1 to 1440.' in page.text
    assert 'id="minutes" name="minutes" type="number" value="-5"' in page.text

    page = await teacher.post(f"{base}/extend", data={"minutes": "5", "extend_reason": " "})
    assert page.status_code == 422
    assert 'id="extend_reason-error">Say why' in page.text

    page = await teacher.post(f"{base}/announce", data={"message": "   "})
    assert page.status_code == 422
    assert 'id="message-error">Write the announcement' in page.text

    page = await teacher.post(f"{base}/force-submit", data={"force_reason": "Left"})
    assert page.status_code == 422
    assert 'id="force_session_id-error">' in page.text
    assert await one(db, "SELECT 1 FROM audit_events") is None

    done = await teacher.post(
        f"{base}/announce", data={"message": "Ten minutes left."}, follow_redirects=False
    )
    assert done.status_code == 303 and done.headers["location"] == f"{base}?done=announced"
    shown = await teacher.get(done.headers["location"])
    assert "The announcement is on every student" in shown.text
    assert "Ten minutes left." in shown.text
