"""How the review says answers, correct answers and when results come, per kind
and per release policy (no database: the structs the sessions domain returns)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from safexam.sessions.schemas import ReviewItem, ReviewSubmission, SessionOut
from safexam.web.student.review import (
    ShownAnswer,
    correct_shown,
    pending_sentence,
    student_answer_shown,
    verdict_words,
)

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
CHOICES = [{"id": "a", "text": "Red"}, {"id": "b", "text": "Green"}, {"id": "c", "text": "Blue"}]


def item(kind: str, answer: Any, key: Any, **extra: Any) -> ReviewItem:
    return ReviewItem(
        id=uuid.uuid4(),
        kind=kind,
        prompt="?",
        points=1.0,
        answer=answer,
        correct_answer=key,
        score=None,
        feedback=None,
        **extra,
    )


@pytest.mark.parametrize(
    ("question", "given", "correct"),
    [
        (
            item("mcq_single", {"choice": "b"}, {"choices": ["c"]}, choices=CHOICES),
            ShownAnswer(items=("Green",)),
            ShownAnswer(items=("Blue",)),
        ),
        (  # in the order the paper showed the choices, not the order clicked
            item("mcq_multi", {"choices": ["c", "a"]}, {"choices": ["a", "b"]}, choices=CHOICES),
            ShownAnswer(items=("Red", "Blue")),
            ShownAnswer(items=("Red", "Green")),
        ),
        (
            item("numeric", {"value": 3.0}, {"value": 3.14159, "tolerance": 0.001}),
            ShownAnswer(text="3"),
            ShownAnswer(text="3.14159 (answers within 0.001 of it count)"),
        ),
        (
            item("numeric", {"value": 0}, {"value": 2, "tolerance": 0}),
            ShownAnswer(text="0"),
            ShownAnswer(text="2"),
        ),
        (
            item("short_text", {"text": "paris"}, {"answers": ["Paris"]}),
            ShownAnswer(text="paris"),
            ShownAnswer(items=("Paris",)),
        ),
        (item("short_text", {"text": "  "}, {"answers": []}), None, None),
        (
            item("mcq_single", None, {"choices": ["a"]}, choices=CHOICES),
            None,
            ShownAnswer(items=("Red",)),
        ),
    ],
)
def test_answers_in_words(
    question: ReviewItem, given: ShownAnswer | None, correct: ShownAnswer | None
) -> None:
    assert student_answer_shown(question) == given
    assert correct_shown(question) == correct


def test_code_is_the_counted_submission_else_the_draft() -> None:
    draft = item("coding", {"language": "python", "source": "x = 1\n"}, {"tests": []})
    shown = student_answer_shown(draft)
    assert shown is not None and shown.language == "Python 3"
    assert shown.code is not None and '<span class="n">x</span>' in shown.code
    submission = ReviewSubmission(
        id=uuid.uuid4(),
        language="c",
        source="int main(void) { return 0; }\n",
        verdict=None,
        score=None,
        max_score=None,
        tests_passed=0,
        tests_total=2,
        submitted_at=NOW,
    )
    counted = student_answer_shown(draft, submission)
    assert counted is not None and counted.language == "C (GCC, C17)"
    assert counted.code is not None and '<span class="kt">int</span>' in counted.code
    assert verdict_words(submission) == "Still being judged"
    assert student_answer_shown(item("coding", {"language": "python", "source": ""}, None)) is None
    assert correct_shown(draft) is None


def session(status: str) -> SessionOut:
    return SessionOut(
        id=uuid.uuid4(),
        exam_id=uuid.uuid4(),
        attempt=1,
        status=status,  # type: ignore[arg-type]
        started_at=NOW,
        deadline_at=NOW,
        submitted_at=None if status == "active" else NOW,
        server_time=NOW,
        remaining_seconds=0,
        questions=[],
        responses={},
        result=None,
    )


class Detail:
    def __init__(self, release_policy: str) -> None:
        self.release_policy = release_policy


@pytest.mark.parametrize(
    ("status", "policy", "expected"),
    [
        ("active", "immediate", "This attempt is still running."),
        ("submitted", "immediate", "being graded. Your results appear on this page as soon"),
        ("graded", "after_close", "once the exam has closed for everyone."),
        ("graded", "manual", "when your educator releases them"),
        ("expired", "manual", "Your exam is submitted and being graded."),
    ],
)
def test_when_results_come(status: str, policy: str, expected: str) -> None:
    assert expected in pending_sentence(session(status), Detail(policy))  # type: ignore[arg-type]
