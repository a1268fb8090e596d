"""The embedded runner, the default ``CodeRunner``: each compile and test in a fresh sandbox.

What every code runner does (this one, Judge0's) is defined in
:mod:`safexam.coding.execution`; :mod:`safexam.coding.backends` picks one.
"""

from __future__ import annotations

import asyncio
import collections
import os
import secrets
import threading
from collections.abc import Sequence

import msgspec
import structlog

from safexam.coding.execution import (
    Judgement,
    Limits,
    Progress,
    RunnerError,
    TestCase,
    TestResult,
    overall_verdict,
    score_of,
)
from safexam.coding.languages import BOX, Language, get_language
from safexam.coding.sandbox.boxes import (
    SANDBOX_UID_BASE,
    SANDBOX_UID_SPAN,
    drop_source,
    emptied,
    own_box,
    remove_stale_boxes,
    submission_box,
    write_source,
)
from safexam.coding.sandbox.cgroups import tasks_unbounded
from safexam.coding.sandbox.process import Sandbox
from safexam.coding.sandbox.root import SANDBOX_TMP
from safexam.coding.sandbox.shutdown import track_runner
from safexam.coding.sandbox.verdicts import compile_outcome, limits_for, result_of_run
from safexam.coding.sandbox.warm import Ready, WarmPool, retire

log = structlog.get_logger(__name__)

# Compilers get more room than programs, but still bounded: a compiler bomb
# (#include "/dev/zero", template recursion) ends as a compile error.
COMPILE_LIMITS = Limits(
    cpu_time_s=10.0,
    wall_time_s=20.0,
    memory_mb=1024,
    output_kb=64,
    processes=64,
    file_size_kb=64 * 1024,
)


class SandboxConfig(msgspec.Struct, frozen=True, kw_only=True):
    """Where the sandbox keeps per-submission directories and how compiles are limited."""

    work_root: str | None = None
    compile_limits: Limits = COMPILE_LIMITS
    # Bytes of stdout/stderr kept per test in the result (the comparison sees all of it).
    keep_output_bytes: int = 8 * 1024
    # First-step sandboxes (the compile or syntax check, else the first test) kept
    # set up ahead, one per (language, limits) most recently judged; 0: none.
    warm: int = 0


def _consume(step: asyncio.Future[tuple[bool, str]]) -> None:
    # Nobody waits for this compile any more; its own failure is not news.
    if not step.cancelled():
        step.exception()


def _close_unused(step: asyncio.Future[Sandbox]) -> None:
    if not step.cancelled() and step.exception() is None:
        threading.Thread(target=step.result().close, name="sandbox-close", daemon=True).start()


def _close_prepared(step: asyncio.Future[tuple[TestResult, Sandbox | None]]) -> None:
    if step.cancelled() or step.exception() is not None:
        return
    _, prepared = step.result()
    if prepared is not None:
        threading.Thread(target=prepared.close, name="sandbox-close", daemon=True).start()


class SandboxRunner:
    """The embedded bubblewrap runner (the default ``CodeRunner``).

    With ``warm`` set, the first step of a judging (the compile or syntax
    check, or the first test of a language without one) usually finds its
    sandbox already set up: after each judging, a fresh sandbox for the same
    language and limits is started around a new, empty box and waits; the
    next judging writes its source into that box and lets it go. Each sandbox
    still serves exactly one program, under a uid of its own.
    """

    name = "sandbox"

    def __init__(self, config: SandboxConfig | None = None) -> None:
        unbounded = tasks_unbounded()
        if unbounded is not None:
            raise RunnerError(f"the embedded sandbox refuses to run: {unbounded}")
        self.config = config or SandboxConfig()
        # The uids of recent submissions, so a caller can check none of them left a process.
        self.recent_uids: collections.deque[int] = collections.deque(maxlen=256)
        # How many judgings found their first sandbox set up ahead.
        self.warm_hits = 0
        self.warm_pool = WarmPool(
            self.config.warm,
            work_root=self.config.work_root,
            first_step=self._first_sandbox,
            new_uid=self.new_uid,
        )
        remove_stale_boxes(self.config.work_root)
        track_runner(self)

    def ready_uids(self) -> set[int]:
        """The uids of the sandboxes now waiting for a judging (their processes are expected)."""
        return self.warm_pool.uids()

    def close(self) -> None:
        """Call off the sandboxes set up ahead and remove their boxes."""
        self.warm_pool.close()

    def _first_sandbox(self, lang: Language, box: str, uid: int, limits: Limits) -> Sandbox:
        if lang.compile_argv is not None:
            return self._compile_sandbox(lang, box, uid)
        return self.test_sandbox(lang, box, uid, limits)

    def new_uid(self) -> int:
        """A throw-away host uid for one sandbox (remembered for leftover checks)."""
        uid = SANDBOX_UID_BASE + secrets.randbelow(SANDBOX_UID_SPAN)
        self.recent_uids.append(uid)
        return uid

    async def judge(
        self,
        language: str,
        program: str,
        tests: Sequence[TestCase],
        limits: Limits,
        comparison: str = "trimmed",
        progress: Progress | None = None,
    ) -> Judgement:
        """Compile once, then run each test in its own sandbox (in a thread: it blocks)."""
        lang = get_language(language)
        ready = self.warm_pool.take(lang, limits)
        if ready is not None:
            try:
                # Nothing has run in that sandbox yet, and it sees the box read-only
                # (or, for a compile, has not started the compiler): the box is as
                # empty as when we made it.
                write_source(ready.box, lang.source_name, program)
            except OSError:
                log.warning("sandbox.warm_box_unusable", language=lang.name, exc_info=True)
                await asyncio.to_thread(retire, ready)
                ready = None
            else:
                self.warm_hits += 1
        try:
            return await self._judge(lang, program, tests, limits, comparison, progress, ready)
        finally:
            if ready is not None:
                # Unused when there was nothing to run; closing a used one is a no-op.
                await asyncio.to_thread(ready.sandbox.close)
            self.warm_pool.refill_later(lang, limits)

    async def _judge(
        self,
        lang: Language,
        program: str,
        tests: Sequence[TestCase],
        limits: Limits,
        comparison: str,
        progress: Progress | None,
        ready: Ready | None,
    ) -> Judgement:
        max_score = float(sum(t.points for t in tests))
        first = ready.sandbox if ready is not None else None
        uid = ready.uid if ready is not None else self.new_uid()
        # Each test's sandbox is set up while the step before it (the compile,
        # the previous test) runs, so a test waits only for its own program.
        upcoming: Sandbox | None = None
        boxed = (
            emptied(ready.box)
            if ready is not None
            else submission_box(self.config.work_root, lang.source_name, program)
        )
        with boxed as box:
            try:
                if os.geteuid() == 0 and ready is None:
                    await asyncio.to_thread(own_box, box, uid)
                if lang.compile_argv is None:
                    upcoming = first
                compiling = asyncio.ensure_future(
                    asyncio.to_thread(
                        self._compile,
                        lang,
                        box,
                        uid,
                        first if lang.compile_argv is not None else None,
                    )
                )
                if lang.compile_argv is not None and tests:
                    # Started while the compile runs, on another thread.
                    preparing = asyncio.ensure_future(
                        asyncio.to_thread(self.test_sandbox, lang, box, self.new_uid(), limits)
                    )
                    try:
                        upcoming = await asyncio.shield(preparing)
                    except BaseException:
                        preparing.add_done_callback(_close_unused)
                        compiling.add_done_callback(_consume)
                        raise
                ok, compile_output = await compiling
                if not ok:
                    results = [
                        TestResult(
                            name=t.name,
                            hidden=t.hidden,
                            verdict="compile_error",
                            time_ms=0,
                            max_points=t.points,
                        )
                        for t in tests
                    ]
                    if progress is not None:
                        await progress(len(tests), len(tests), results)
                    return Judgement(
                        verdict="compile_error",
                        compile_output=compile_output,
                        tests=results,
                        score=0.0,
                        max_score=max_score,
                        executor=self.name,
                    )
                if lang.compile_argv is not None and lang.compile_writes:
                    # The tests need only what the compiler made; the source
                    # holds the question's template, which the student's own
                    # program must not be able to read back.
                    await asyncio.to_thread(drop_source, box, lang.source_name)
                results = []
                for index, test in enumerate(tests):
                    current, upcoming = upcoming, None
                    step = asyncio.ensure_future(
                        asyncio.to_thread(
                            self._run_and_prepare,
                            lang,
                            box,
                            uid,
                            test,
                            limits,
                            comparison,
                            current,
                            index + 1 < len(tests),
                        )
                    )
                    try:
                        result, upcoming = await asyncio.shield(step)
                    except asyncio.CancelledError:
                        # The thread runs on; the sandbox it prepares must not
                        # wait for a run that will never come.
                        step.add_done_callback(_close_prepared)
                        raise
                    results.append(result)
                    if progress is not None:
                        await progress(index + 1, len(tests), results)
            finally:
                if upcoming is not None:
                    await asyncio.to_thread(upcoming.close)
        return Judgement(
            verdict=overall_verdict(results),
            compile_output=compile_output,
            tests=results,
            score=score_of(results),
            max_score=max_score,
            executor=self.name,
        )

    def _compile_sandbox(self, lang: Language, box: str, uid: int) -> Sandbox:
        assert lang.compile_argv is not None
        limits = self.config.compile_limits
        return Sandbox(
            lang.compile_argv(limits.memory_mb),
            box=box,
            box_writable=lang.compile_writes,
            chdir=BOX if lang.compile_writes else SANDBOX_TMP,
            limits=limits,
            limit_address_space=lang.limit_address_space,
            address_space_extra_mb=lang.address_space_extra_mb,
            uid=uid,
            sandbox_memory_mb=limits.memory_mb + lang.runtime_memory_mb,
        )

    def _compile(
        self, lang: Language, box: str, uid: int, sandbox: Sandbox | None = None
    ) -> tuple[bool, str]:
        if lang.compile_argv is None:
            return True, ""
        with sandbox or self._compile_sandbox(lang, box, uid) as prepared:
            run = prepared.run()
        return compile_outcome(run, self.config.compile_limits)

    def _run_and_prepare(
        self,
        lang: Language,
        box: str,
        uid: int,
        test: TestCase,
        limits: Limits,
        comparison: str,
        sandbox: Sandbox | None,
        prepare_next: bool,
    ) -> tuple[TestResult, Sandbox | None]:
        # The next sandbox starts first, so its set-up overlaps this test.
        upcoming = self.test_sandbox(lang, box, self.new_uid(), limits) if prepare_next else None
        try:
            return self.run_test(lang, box, uid, test, limits, comparison, sandbox), upcoming
        except BaseException:
            if upcoming is not None:
                upcoming.close()
            raise

    @staticmethod
    def test_sandbox(lang: Language, box: str, uid: int, limits: Limits) -> Sandbox:
        """A fresh sandbox for one test run of the program compiled in ``box``."""
        effective = limits_for(lang, limits)
        return Sandbox(
            lang.run_argv(limits.memory_mb),
            box=box,
            limits=effective,
            limit_address_space=lang.limit_address_space,
            address_space_extra_mb=lang.address_space_extra_mb,
            uid=uid,
            sandbox_memory_mb=limits.memory_mb + lang.runtime_memory_mb,
        )

    def run_test(
        self,
        lang: Language,
        box: str,
        uid: int,
        test: TestCase,
        limits: Limits,
        comparison: str,
        sandbox: Sandbox | None = None,
    ) -> TestResult:
        """Run the compiled program once on ``test`` (in ``sandbox`` if prepared) and grade it."""
        effective = limits_for(lang, limits)
        with sandbox or self.test_sandbox(lang, box, uid, limits) as prepared:
            run = prepared.run(test.stdin.encode("utf-8"))
        return result_of_run(run, test, effective, lang, comparison, self.config.keep_output_bytes)
