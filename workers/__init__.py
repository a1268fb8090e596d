"""Dramatiq workers: ``dramatiq workers --queues grading`` (one pool per queue).

The broker module is imported (and configured from the environment) before
any actor module, so every actor registers with it (under the queue and
name its job kind declares, ``safexam.jobs.kinds``). Actors are thin: they
decode the message and hand ``run_job`` a work coroutine that calls a domain
service and returns the result and the live events; the runner commits and
publishes.
"""

import safexam.models  # noqa: F401 - every table, so foreign keys resolve in the worker
from safexam.core.broker import configure_broker

broker = configure_broker()

from workers import grading, judge, maintenance, qie, regrade, similarity  # noqa: E402

__all__ = ["broker", "grading", "judge", "maintenance", "qie", "regrade", "similarity"]
