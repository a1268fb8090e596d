"""Dramatiq workers: ``dramatiq workers --queues grading`` (one pool per queue).

The broker module is imported (and configured from the environment) before
any actor module, so every actor registers with it. Actors are thin: decode
the message, open a database session, call a domain service, publish the
change.
"""

import safexam.models  # noqa: F401 - every table, so foreign keys resolve in the worker
from safexam.core.broker import configure_broker

broker = configure_broker()

from workers import grading, maintenance, regrade  # noqa: E402

# Engineer-owned pools add their modules here: judge (code execution), qie.
for _optional in ("workers.judge", "workers.qie"):
    try:
        __import__(_optional)
    except ModuleNotFoundError as _exc:
        if _exc.name != _optional:
            raise

__all__ = ["broker", "grading", "maintenance", "regrade"]
