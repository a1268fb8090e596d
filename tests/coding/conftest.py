"""Fixtures shared by the sandbox tests."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator

import pytest


@pytest.fixture
def box() -> Iterator[str]:
    """An empty working directory for one sandbox, readable by its throw-away uid."""
    path = tempfile.mkdtemp(prefix="sandbox-test-box-")
    os.chmod(path, 0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)
