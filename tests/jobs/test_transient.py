"""Workers retry exactly what the API answers 503 for: one definition of "a dependency is down"."""

from __future__ import annotations

import pytest

from safexam.core.redis import create_redis
from safexam.jobs.runner import is_transient
from tests.fault_servers import free_port


async def test_a_wrapped_outage_is_retried_and_a_bug_is_not() -> None:
    client = create_redis(f"redis://127.0.0.1:{free_port()}/0")
    with pytest.raises(Exception) as refused:
        await client.get("x")
    await client.aclose()
    assert is_transient(refused.value)
    try:
        raise RuntimeError("could not publish the result") from refused.value
    except RuntimeError as wrapped:
        assert is_transient(wrapped)
    assert not is_transient(ValueError("bad question body"))
    assert not is_transient(KeyError("missing"))
