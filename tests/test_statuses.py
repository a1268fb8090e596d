"""The status types the code is checked against name exactly what the tables allow."""

from __future__ import annotations

import re
from typing import Any, get_args

import pytest
from sqlalchemy import CheckConstraint

from safexam.exams.models import Exam, ExamStatus, Question, QuestionStatus
from safexam.jobs.models import Job, JobStatus
from safexam.sessions.models import ExamSession, SessionStatus


@pytest.mark.parametrize(
    ("model", "status_type"),
    [
        (ExamSession, SessionStatus),
        (Exam, ExamStatus),
        (Question, QuestionStatus),
        (Job, JobStatus),
    ],
)
def test_status_type_matches_the_check_constraint(model: Any, status_type: Any) -> None:
    [check] = [
        c
        for c in model.__table__.constraints
        if isinstance(c, CheckConstraint) and str(c.sqltext).startswith("status IN")
    ]
    assert set(re.findall(r"'([^']+)'", str(check.sqltext))) == set(get_args(status_type))
