"""Leaving nothing behind when a judge process stops.

A judge worker's sandboxes set up ahead, their boxes, and its private
directory (the launcher and the sandbox's root) were removed only at
interpreter exit, by ``atexit``; Dramatiq's worker processes end with
``os._exit`` and never get there. :class:`SandboxCleanup` does it from the
worker's own shutdown instead.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import dramatiq
import structlog
from dramatiq.middleware import Middleware

from safexam.coding.sandbox.cgroups import release_cgroups
from safexam.coding.sandbox.launcher import remove_private_dir
from safexam.coding.sandbox.root import forget_roots

if TYPE_CHECKING:
    from safexam.coding.sandbox.sandbox_runner import SandboxRunner

__all__ = ["SandboxCleanup", "release_sandboxes", "track_runner"]

log = structlog.get_logger(__name__)

_lock = threading.Lock()
_runners: weakref.WeakSet[SandboxRunner] = weakref.WeakSet()


def track_runner(runner: SandboxRunner) -> None:
    """Remember ``runner``, so a shutdown calls off its sandboxes set up ahead."""
    with _lock:
        _runners.add(runner)


def release_sandboxes() -> None:
    """Call off every runner's waiting sandboxes, remove their boxes and this process's directory.

    A runner used after this starts over: the launcher and the root are made anew.
    """
    with _lock:
        runners = list(_runners)
        _runners.clear()
    for runner in runners:
        try:
            runner.close()
        except Exception:
            log.warning("sandbox.close_failed", exc_info=True)
    forget_roots()
    release_cgroups()
    removed = remove_private_dir()
    log.info("sandbox.released", runners=len(runners), private_dir=removed)


class SandboxCleanup(Middleware):
    """Releases the sandboxes of a judge worker process when the worker stops.

    ``on_boot`` runs before a worker that consumes ``queue`` takes any message:
    a judge that cannot hold its sandboxes' limits raises there and does not start.
    """

    def __init__(self, on_boot: Callable[[], object] | None = None, queue: str = "judge") -> None:
        self.on_boot = on_boot
        self.queue = queue

    def before_worker_boot(self, broker: dramatiq.Broker, worker: Any) -> None:
        queues = worker.consumer_whitelist or broker.get_declared_queues()
        if self.on_boot is not None and self.queue in queues:
            self.on_boot()

    def after_worker_shutdown(self, broker: dramatiq.Broker, worker: Any) -> None:
        release_sandboxes()
