"""The student's pages: sign-in, my exams, the lobby, the exam page and the review."""

from __future__ import annotations

from safexam.web.student.account import AccountController
from safexam.web.student.exams import StudentExamsController
from safexam.web.student.review import StudentReviewController
from safexam.web.student.signin import SignInController

__all__ = [
    "AccountController",
    "SignInController",
    "StudentExamsController",
    "StudentReviewController",
]
