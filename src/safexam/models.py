"""Every table, imported in one place for Alembic and for tests."""

from safexam.auth.models import User
from safexam.coding.models import CodingSubmission, Judge0Test
from safexam.core.audit import AuditEvent
from safexam.core.db import Base
from safexam.exams.models import Enrollment, Exam, ExamItem, Question, QuestionBank
from safexam.grading.models import Result
from safexam.integrity.models import ActivityLog, SessionReview, SimilarityCluster, SimilarityPair
from safexam.jobs.models import Job
from safexam.onboarding.models import OnboardingRequest
from safexam.orgs.models import Invitation, Organization
from safexam.sessions.models import Announcement, ExamSession, Response, ResponseHistory

__all__ = [
    "ActivityLog",
    "Announcement",
    "AuditEvent",
    "Base",
    "CodingSubmission",
    "Enrollment",
    "Exam",
    "ExamItem",
    "ExamSession",
    "Invitation",
    "Job",
    "Judge0Test",
    "OnboardingRequest",
    "Organization",
    "Question",
    "QuestionBank",
    "Response",
    "ResponseHistory",
    "Result",
    "SessionReview",
    "SimilarityCluster",
    "SimilarityPair",
    "User",
]
