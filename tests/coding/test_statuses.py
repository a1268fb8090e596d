"""The status types the code uses are the values the tables' CHECK constraints allow."""

from __future__ import annotations

import re
from typing import Any, get_args

import pytest
from sqlalchemy import CheckConstraint, Table

from safexam.coding.execution import Verdict
from safexam.coding.models import (
    ENDED,
    IN_FLIGHT,
    CodingSubmission,
    Judge0Test,
    Judge0Via,
    SubmissionKind,
    SubmissionStatus,
)


def allowed(table: Table, column: str) -> set[str]:
    """The values a ``column IN (...)`` CHECK constraint of ``table`` allows."""
    for constraint in table.constraints:
        if isinstance(constraint, CheckConstraint):
            sql = str(constraint.sqltext)
            match = re.search(rf"\b{column} IN \(([^)]*)\)", sql)
            if match:
                return set(re.findall(r"'([^']*)'", match.group(1)))
    raise AssertionError(f"no CHECK constraint on {table.name}.{column}")


submissions: Table = CodingSubmission.__table__  # type: ignore[assignment]
judge0_tests: Table = Judge0Test.__table__  # type: ignore[assignment]


@pytest.mark.parametrize(
    ("table", "column", "kind"),
    [
        (submissions, "kind", SubmissionKind),
        (submissions, "status", SubmissionStatus),
        (submissions, "verdict", Verdict),
        (judge0_tests, "via", Judge0Via),
    ],
)
def test_each_status_type_is_what_its_column_allows(table: Table, column: str, kind: Any) -> None:
    assert set(get_args(kind)) == allowed(table, column)


def test_in_flight_and_ended_split_the_statuses() -> None:
    assert set(IN_FLIGHT) | set(ENDED) == set(get_args(SubmissionStatus))
    assert not set(IN_FLIGHT) & set(ENDED)
