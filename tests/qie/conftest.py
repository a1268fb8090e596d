"""Pure unit tests of question generation skip the per-test database cleanup.

The root ``_clean_state`` truncates every table after each test; most tests
here (expressions, parameters, text analysis, generators, the quality
filter) touch neither PostgreSQL nor Redis, and paying a TRUNCATE for each of
them would be most of this folder's run time. Tests that use the database or
Redis still get the root fixture's cleanup.
"""

from __future__ import annotations

from typing import Any

import pytest

_STATEFUL = {"db", "client", "make_client", "sessionmaker", "engine", "redis", "app", "services"}


@pytest.fixture(autouse=True)
def _clean_state(request: pytest.FixtureRequest) -> Any:
    if _STATEFUL & set(request.fixturenames):
        return request.getfixturevalue("_clean_state")
    return None
