"""Wire shapes of code runs and submissions (field names are a public contract)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

import msgspec

from safexam.coding.execution import Verdict
from safexam.coding.models import SubmissionKind, SubmissionStatus

__all__ = [
    "RunCreate",
    "SubmissionCreate",
    "SubmissionOut",
    "SubmissionQueued",
    "TestOut",
]

# The same cap as a coding answer's autosaved draft.
MAX_SOURCE_CHARS = 64_000
MAX_STDIN_CHARS = 64_000


class SubmissionCreate(msgspec.Struct, forbid_unknown_fields=True):
    """Submit: all tests, graded."""

    question_id: uuid.UUID
    language: Annotated[str, msgspec.Meta(min_length=1, max_length=32)]
    source: str


class RunCreate(msgspec.Struct, forbid_unknown_fields=True):
    """Run: the visible tests, or the student's own input; never graded."""

    question_id: uuid.UUID
    language: Annotated[str, msgspec.Meta(min_length=1, max_length=32)]
    source: str
    stdin: str | None = None


class SubmissionQueued(msgspec.Struct):
    id: uuid.UUID
    status: SubmissionStatus


class TestOut(msgspec.Struct, omit_defaults=True):
    """One test's outcome; a hidden test shows its student only its name and verdict.

    Not its time either, until the results are released: a program that
    burns time in proportion to its input would read a hidden test's input
    back from the time reported. The exam's educators see everything.
    """

    __test__ = False

    name: str
    hidden: bool
    verdict: Verdict
    time_ms: int | msgspec.UnsetType = msgspec.UNSET
    memory_kb: int | msgspec.UnsetType | None = msgspec.UNSET
    stdout: str | msgspec.UnsetType = msgspec.UNSET
    stderr: str | msgspec.UnsetType = msgspec.UNSET


class SubmissionOut(msgspec.Struct):
    """A run or a submission as its author (or the exam's educator) sees it."""

    id: uuid.UUID
    kind: SubmissionKind
    session_id: uuid.UUID
    question_id: uuid.UUID
    language: str
    status: SubmissionStatus
    verdict: Verdict | None
    score: float | None
    max_score: float | None
    compile_output: str | None
    tests_done: int
    tests_total: int
    tests: list[TestOut]
    created_at: datetime
    finished_at: datetime | None
    #: While queued: 1 when next to be judged; null once judging has started.
    queue_position: int | None = None
    #: While queued: seconds until judging starts, from the judge pool's recent
    #: throughput; null when not queued or when nothing was judged lately.
    estimated_wait_seconds: int | None = None
