"""An exam with one coding question whose cohort holds copied and original programs."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from safexam.auth.models import User
from safexam.exams.models import Exam, Question
from safexam.sessions.models import ExamSession
from tests.factories import (
    coding_body,
    make_exam,
    make_question,
    make_session,
    make_user,
    paper_for,
)
from tests.integrity.labelled import CASES

RLE = CASES / "rle_py"
# Student name -> the program they hand in: Ada and Ben hand in the same
# program (Ben's disguised), Cy and Dee each write their own.
PROGRAMS = {
    "ada": "orig_a.py",
    "ben": "copy_a_rename_reorder.py",
    "cy": "orig_b.py",
    "dee": "orig_c.py",
}
NAMES = {"ada": "Ada Byron", "ben": "Ben Jonson", "cy": "Cy Twombly", "dee": "Dee Rees"}


@dataclass
class CohortWorld:
    owner: User
    other_educator: User
    exam: Exam
    question: Question
    students: dict[str, User]
    sessions: dict[str, ExamSession]


async def cohort_world(db: AsyncSession, *, closed: bool = True) -> CohortWorld:
    owner = await make_user(db, "educator")
    other = await make_user(db, "educator")
    body = coding_body(
        languages=("python",),
        starter_code={"python": (RLE / "starter.py").read_text()},
        template=None,
    )
    question = await make_question(db, owner, "coding", body=body, prompt="Run-length encoding")
    now = datetime.now(UTC)
    exam = await make_exam(
        db,
        owner,
        [(question, 10.0)],
        title="Strings midterm",
        opens_at=now - timedelta(hours=3),
        closes_at=now - timedelta(minutes=5) if closed else now + timedelta(hours=1),
    )
    students: dict[str, User] = {}
    sessions: dict[str, ExamSession] = {}
    for name, file in PROGRAMS.items():
        student = await make_user(
            db, "student", email=f"{name}-{exam.id.hex[:6]}@college.edu", name=NAMES[name]
        )
        students[name] = student
        answer = {"language": "python", "source": (RLE / file).read_text()}
        sessions[name] = await make_session(
            db, exam, student, paper_for([question], [10.0]), {question.id: answer}
        )
    return CohortWorld(owner, other, exam, question, students, sessions)
