"""The warm pool: first-step sandboxes set up between judgings, before their program is known.

After each judging a fresh sandbox for the same language and limits is
started around a new, empty box and waits; the next judging writes its
source into that box and lets it go. Each sandbox still serves exactly one
program, under a uid of its own.
"""

from __future__ import annotations

import atexit
import collections
import contextlib
import os
import shutil
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import msgspec
import structlog

from safexam.coding.execution import Limits
from safexam.coding.languages import Language
from safexam.coding.sandbox.boxes import new_box, own_box
from safexam.coding.sandbox.launcher import compiled_launcher
from safexam.coding.sandbox.process import Sandbox

log = structlog.get_logger(__name__)

#: A sandbox set up ahead and unused this long is retired rather than used: its
#: box must stay well clear of the stale-box sweep of a restarting worker.
WARM_MAX_AGE_S = 600.0

# What a first-step sandbox depends on: the language, and the question's limits
# unless that step is a compile (compiles run under the runner's own limits).
WarmKey = tuple[str, Limits | None]
# Makes the first step's sandbox for (language, box, uid, the question's limits).
FirstStep = Callable[[Language, str, int, Limits], Sandbox]


class Ready(msgspec.Struct):
    """A first-step sandbox set up before its program was known, around an empty box."""

    sandbox: Sandbox
    box: str
    uid: int
    made: float


def retire(ready: Ready) -> None:
    """Call off a sandbox set up ahead and remove its (still empty) box."""
    ready.sandbox.close()
    shutil.rmtree(ready.box, ignore_errors=True)


class WarmPool:
    """Up to ``size`` first-step sandboxes, one per (language, limits) most recently judged."""

    def __init__(
        self,
        size: int,
        *,
        work_root: str | None,
        first_step: FirstStep,
        new_uid: Callable[[], int],
    ) -> None:
        self.size = size
        self._work_root = work_root
        self._first_step = first_step
        self._new_uid = new_uid
        self._ready: collections.OrderedDict[WarmKey, Ready] = collections.OrderedDict()
        self._lock = threading.Lock()
        self._closed = False
        # bwrap's parent-death signal fires when the *thread* that started it
        # exits, so sandboxes that wait between judgings are started on one
        # thread of ours that lives as long as the pool, never on a pool an
        # event loop may shut down. Only our launcher can hold a program back.
        self._warmer = (
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="sandbox-warm")
            if size > 0 and compiled_launcher() is not None
            else None
        )
        if self._warmer is not None:
            atexit.register(self.close)

    def uids(self) -> set[int]:
        """The uids of the sandboxes now waiting for a judging (their processes are expected)."""
        with self._lock:
            return {ready.uid for ready in self._ready.values()}

    def waiting(self) -> list[tuple[WarmKey, Ready]]:
        """The sandboxes now waiting, oldest first."""
        with self._lock:
            return list(self._ready.items())

    def close(self) -> None:
        """Call off the sandboxes set up ahead and remove their boxes."""
        self._closed = True
        if self._warmer is not None:
            self._warmer.shutdown(wait=True)
        with self._lock:
            waiting = list(self._ready.values())
            self._ready.clear()
        for ready in waiting:
            retire(ready)

    def _key(self, lang: Language, limits: Limits) -> WarmKey:
        return (lang.name, None if lang.compile_argv is not None else limits)

    def take(self, lang: Language, limits: Limits) -> Ready | None:
        """The sandbox waiting for this language and limits, if there is a usable one."""
        if self._warmer is None:
            return None
        with self._lock:
            ready = self._ready.pop(self._key(lang, limits), None)
        if ready is None:
            return None
        if time.monotonic() - ready.made > WARM_MAX_AGE_S or ready.sandbox.ended():
            try:
                self._warmer.submit(retire, ready)
            except RuntimeError:  # the pool was closed meanwhile
                retire(ready)
            return None
        return ready

    def refill_later(self, lang: Language, limits: Limits) -> None:
        """Set up a sandbox for the next judging of this language and limits, on our thread."""
        if self._warmer is None or self._closed:
            return
        with contextlib.suppress(RuntimeError):  # shut down meanwhile
            self._warmer.submit(self._fill, lang, limits)

    def _fill(self, lang: Language, limits: Limits) -> None:
        key = self._key(lang, limits)
        with self._lock:
            if self._closed or key in self._ready:
                return
        uid = self._new_uid()
        box = new_box(self._work_root)
        try:
            if os.geteuid() == 0:
                own_box(box, uid)
            sandbox = self._first_step(lang, box, uid, limits)
        except BaseException:
            shutil.rmtree(box, ignore_errors=True)
            log.warning("sandbox.warm_failed", language=lang.name, exc_info=True)
            return
        ready = Ready(sandbox=sandbox, box=box, uid=uid, made=time.monotonic())
        evicted: list[Ready] = []
        with self._lock:
            if self._closed or key in self._ready:
                evicted.append(ready)
            else:
                self._ready[key] = ready
                while len(self._ready) > self.size:
                    evicted.append(self._ready.popitem(last=False)[1])
        for old in evicted:
            retire(old)
