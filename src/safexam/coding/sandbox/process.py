"""One sandboxed process tree: set up, let go, watched under its limits, reaped.

Isolation (bubblewrap): new user, PID, network, IPC, UTS and cgroup
namespaces; the read-only root of :mod:`.root`; a fresh /proc and minimal
/dev; a size-capped tmpfs /tmp as the only writable place during tests; a
cleared environment; ``--die-with-parent`` and ``--new-session``.

A seccomp filter (:mod:`.seccomp`) refuses the system calls no submission
needs. Limits per sandbox, where the host offers control groups (:mod:`.cgroups`):
bwrap and its child are moved into the sandbox's own group while bwrap sets
the sandbox up, and the program is let go only once they are in, so memory
(no swap) and tasks are capped for the sandbox as a whole, and its CPU time
is summed over every process while it runs and the sandbox killed at the
limit. Limits per process (set in the launcher, inherited by everything
inside) stay as a second line, and are the only one without control groups:
CPU time, address space, stack, tasks, file size, no core files.
When the worker runs as root, bwrap itself is started as a throw-away
unprivileged uid drawn per sandbox (the compile, each test run), because
RLIMIT_NPROC counts processes per real uid and does not bind root; with a
fresh uid the limit counts exactly this sandbox's tasks. The wall-time limit
and the output caps are enforced here: we read stdout/stderr from pipes, at
most N bytes, and at the limit SIGKILL bwrap's process group, whose
PID-namespace init then takes every process of the program with it. Output
comes through pipes and stdin from a sealed memfd: the host never reads a
file the program could have written.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import math
import os
import resource
import select
import selectors
import shutil
import signal
import subprocess
import time
from collections.abc import Sequence
from concurrent.futures import Future

import msgspec

from safexam.coding.execution import Limits, RunnerError
from safexam.coding.languages import SYSTEM_PATH
from safexam.coding.sandbox.boxes import process_uid
from safexam.coding.sandbox.cgroups import SandboxCgroup, cgroup_host, children_listed
from safexam.coding.sandbox.launcher import (
    RLimits,
    compiled_launcher,
    front_argv,
    parse_peak_kb,
    reaper_argv,
)
from safexam.coding.sandbox.root import SANDBOX_TMP, bwrap_argv
from safexam.coding.sandbox.seccomp import filter_fd


class Execution(msgspec.Struct, kw_only=True):
    """What happened to one sandboxed process tree."""

    exit_code: int | None
    signal: int | None
    cpu_ms: int
    wall_ms: int
    memory_kb: int | None
    stdout: bytes
    stderr: bytes
    timed_out: bool = False
    output_exceeded: bool = False
    # Limits reached by the sandbox as a whole (its control group).
    cpu_exceeded: bool = False
    memory_exceeded: bool = False


_bwrap_found: list[str] = []


def bwrap_path() -> str | None:
    # Looked up once found (three stat calls saved on every sandbox); a miss is
    # looked up again, so installing bubblewrap needs no worker restart.
    if not _bwrap_found:
        found = shutil.which("bwrap", path=SYSTEM_PATH)
        if found is None:
            return None
        _bwrap_found.append(found)
    return _bwrap_found[0]


class Sandbox:
    """One fresh sandbox for one process tree, set up before the program is known to start.

    Creating it starts bwrap at once: namespaces, mounts, limits and the uid
    drop happen while the caller does something else (the judge prepares the
    next test's sandbox while the current test runs), and PID 1 waits on a
    pipe. :meth:`run` hands over stdin and lets the program go; :meth:`close`
    calls an unused sandbox off. Nothing is shared between two runs: each
    sandbox serves exactly one. Without our launcher (no C compiler) bwrap is
    only started by :meth:`run`.
    """

    def __init__(
        self,
        argv: Sequence[str],
        *,
        box: str,
        box_writable: bool = False,
        chdir: str = SANDBOX_TMP,
        limits: Limits,
        limit_address_space: bool = True,
        address_space_extra_mb: int = 0,
        uid: int | None = None,
        sandbox_memory_mb: int | None = None,
        control_group: bool = True,
        seccomp: bool = True,
    ) -> None:
        bwrap = bwrap_path()
        if bwrap is None:
            raise RunnerError(
                "bubblewrap (bwrap) is not installed; run scripts/ensure-bubblewrap.sh"
            )
        self.limits = limits
        memory = limits.memory_mb * 1024 * 1024
        address_space: int | None = memory
        if not limit_address_space:
            address_space = (limits.memory_mb + address_space_extra_mb) * 1024 * 1024
        # bwrap and the reaper (PID 1) count as tasks too.
        nproc = limits.processes + 2
        root = os.geteuid() == 0
        drop = root and uid is not None
        self._kill_uid = uid if drop else None
        rlimits = RLimits(
            cpu_s=max(1, math.ceil(limits.cpu_time_s)),
            address_space=address_space,
            # A quarter of the memory for the stack: deep recursion works, and a
            # stack overflow stays distinguishable from a heap bomb.
            stack=max(8 << 20, memory // 4) if limit_address_space else 64 << 20,
            # Without root the uid is shared with the worker: RLIMIT_NPROC would
            # count the worker's own tasks, so only the PID namespace bounds the tree.
            nproc=nproc if root else None,
            fsize=limits.file_size_kb * 1024,
        )
        # Memory, tasks and CPU for the sandbox as a whole; only our launcher
        # holds the program back until the sandbox is in its group (or, where
        # that cannot be done, joins the group before bwrap forks anything).
        host = cgroup_host() if control_group and compiled_launcher() is not None else None
        self._cgroup: SandboxCgroup | None = None
        # Moving bwrap into the group while it sets the sandbox up (see .cgroups).
        self._place = host is not None and children_listed()
        self._placing: Future[None] | None = None
        if host is not None:
            self._cgroup = SandboxCgroup(
                host,
                memory_bytes=(sandbox_memory_mb or limits.memory_mb) * 1024 * 1024,
                tasks=nproc,
            )
        try:
            launcher = front_argv(
                rlimits,
                uid if drop else None,
                self._cgroup.procs_files() if self._cgroup is not None and not self._place else (),
            )
        except BaseException:
            self._remove_cgroup()
            raise
        in_process = launcher is None
        self._stats_read, stats_write = os.pipe2(os.O_CLOEXEC)
        # GNU time reopens the pipe by path (/dev/fd/N) as the sandbox's uid.
        os.fchmod(stats_write, 0o622)
        self._info_read, info_write = os.pipe2(os.O_CLOEXEC)
        go_read: int | None = None
        self._go: int | None = None
        if compiled_launcher() is not None:
            go_read, self._go = os.pipe2(os.O_CLOEXEC)
        # stdin is a memfd filled and sealed by run(): the sandbox holds it open
        # from the start, and nothing but us can write it before the seal.
        self._stdin = os.memfd_create("stdin", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
        seccomp_read = filter_fd() if seccomp else None
        self._child_fds = [
            fd for fd in (stats_write, info_write, go_read, seccomp_read) if fd is not None
        ]
        full_argv = bwrap_argv(
            bwrap,
            [*reaper_argv(stats_write, go_read), *argv],
            box=box,
            box_writable=box_writable,
            chdir=chdir,
            tmp_bytes=limits.file_size_kb * 1024,
            info_fd=info_write,
            dropped_uid=drop,
            seccomp_fd=seccomp_read,
        )
        self._popen_kwargs: dict[str, object] = {
            "stdin": self._stdin,
            "stdout": subprocess.PIPE,
            "stderr": subprocess.PIPE,
            "pass_fds": tuple(self._child_fds),
            "env": {},
            "close_fds": True,
            "start_new_session": True,
            # Not the worker's umask (027 on a hardened host): files the compile
            # writes must stay readable by the uids the tests run as.
            "umask": 0o022,
            "user": uid if drop and in_process else None,
            "group": uid if drop and in_process else None,
            "extra_groups": [] if drop and in_process else None,
            # Fallback without prlimit/setpriv: setrlimit only, between fork and exec.
            "preexec_fn": rlimits.apply if in_process else None,
        }
        self._argv = [*(launcher or []), *full_argv]
        self._proc: subprocess.Popen[bytes] | None = None
        self._done = False
        try:
            if self._go is not None:
                self._start()
        except BaseException:
            self._release()
            raise

    def _start(self) -> None:
        try:
            self._proc = subprocess.Popen(  # noqa: S603 - argv is ours, the program runs inside bwrap
                self._argv,
                **self._popen_kwargs,  # type: ignore[call-overload]
            )
        except OSError as exc:
            raise RunnerError(f"cannot start bwrap: {exc}") from exc
        finally:
            # The child holds its copies; ours would keep the pipes open forever.
            for fd in self._child_fds:
                os.close(fd)
            self._child_fds = []
        if self._place and self._cgroup is not None:
            self._placing = self._cgroup.place_later(self._proc.pid)

    def placed(self) -> OSError | None:
        """Wait until the sandbox is in its control group; why it could not be, if not."""
        placing, self._placing = self._placing, None
        if placing is None:
            return None
        try:
            placing.result(timeout=_PLACE_WAIT_S)
        except TimeoutError:
            return OSError(errno.ETIMEDOUT, "moving the sandbox into its cgroup took too long")
        except OSError as exc:
            return exc
        return None

    def _remove_cgroup(self) -> None:
        if self._cgroup is not None:
            # Not removed under a move still under way.
            self.placed()
            self._cgroup.remove()
            self._cgroup = None

    def _release(self) -> None:
        self._remove_cgroup()
        for fd in (self._stats_read, self._info_read, self._stdin, self._go, *self._child_fds):
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._go = None
        self._child_fds = []
        self._done = True

    def ended(self) -> bool:
        """Whether bwrap is gone or was never started: a sandbox set up ahead that died."""
        return self._proc is None or _exited(self._proc.pid)

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Call off a sandbox that never ran: PID 1 sees end of file and exits."""
        if self._done:
            return
        proc = self._proc
        try:
            if proc is not None:
                if self._go is not None:
                    # End of file on the go pipe calls the run off. The other pipes
                    # stay open until bwrap is gone: it writes its info during the
                    # set-up, and a closed reader would kill it by SIGPIPE and
                    # orphan a half-made sandbox.
                    os.close(self._go)
                    self._go = None
                # Not reaped (its pid freed for reuse) while it may still be moved.
                self.placed()
                pidfd = os.pidfd_open(proc.pid)
                try:
                    _reap(proc.pid, pidfd, exited=False)
                finally:
                    os.close(pidfd)
                proc.returncode = 0
                for stream in (proc.stdout, proc.stderr):
                    if stream is not None:
                        stream.close()
        finally:
            self._release()

    def run(self, stdin: bytes = b"") -> Execution:
        """Let the program go with ``stdin``; wait for it under the limits."""
        if self._done:
            raise RunnerError("a sandbox runs one program once")
        limits = self.limits
        output_cap = limits.output_kb * 1024
        view = memoryview(stdin)
        offset = 0
        while offset < len(view):
            offset += os.pwrite(self._stdin, view[offset:], offset)
        seals = fcntl.F_SEAL_SEAL | fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_WRITE
        fcntl.fcntl(self._stdin, fcntl.F_ADD_SEALS, seals)
        started = time.monotonic()
        try:
            if self._proc is None:
                self._start()
        except BaseException:
            self._release()
            raise
        proc = self._proc
        assert proc is not None and proc.stdout is not None and proc.stderr is not None
        cpu_before = 0
        if self._go is not None:
            # Waited for even when bwrap has died: not reaped while it may be moved.
            refused = self.placed()
            if _exited(proc.pid):
                # bwrap arms its child's parent-death signal only at the end of
                # the set-up, so a bwrap killed mid-set-up can leave a sandbox
                # behind, complete or stuck half-way: it must not be told to go,
                # and is killed now rather than at the wall limit. A sandbox that
                # failed its set-up (its stderr says why) is read and reaped
                # below like any other run, not leaked.
                _kill_orphan(proc.pid, self._info_read, self._kill_uid)
            else:
                if refused is not None:
                    # Never let a program go outside its group: call the run off.
                    self.close()
                    raise RunnerError(f"cannot move the sandbox into its cgroup: {refused}")
                if self._cgroup is not None:
                    # What bwrap spent setting the sandbox up is not the program's.
                    cpu_before = self._cgroup.cpu_ns()
                with contextlib.suppress(BrokenPipeError):
                    os.write(self._go, b"g")
        os.close(self._stdin)
        if self._go is not None:
            os.close(self._go)
        stats_read, info_read = self._stats_read, self._info_read
        self._done = True
        cgroup = self._cgroup
        cpu_limit_ns = int(limits.cpu_time_s * 1e9)
        cpu_exceeded = False
        deadline = started + limits.wall_time_s
        # The sandbox's CPU time is looked at when it could first have reached
        # the limit (all cores busy since the last look), not polled.
        cpu_check = started + _next_cpu_look(cpu_limit_ns)
        out, err, stats, info = bytearray(), bytearray(), bytearray(), bytearray()
        timed_out = output_exceeded = False
        streams = (
            (proc.stdout.fileno(), out),
            (proc.stderr.fileno(), err),
            (stats_read, stats),
            (info_read, info),
        )
        # The pidfd turns readable when bwrap exits, so we wait for exit and for
        # output in one select, under one deadline, without polling.
        pidfd = os.pidfd_open(proc.pid)
        exited = False
        with selectors.DefaultSelector() as sel:
            for fd, buf in streams:
                os.set_blocking(fd, False)
                sel.register(fd, selectors.EVENT_READ, buf)
            sel.register(pidfd, selectors.EVENT_READ, None)
            late = False
            while not exited or len(sel.get_map()) > 1:
                if cgroup is not None and not exited and time.monotonic() >= cpu_check:
                    used = cgroup.cpu_ns() - cpu_before
                    if used >= cpu_limit_ns:
                        cpu_exceeded = True
                        break
                    cpu_check = time.monotonic() + _next_cpu_look(cpu_limit_ns - used)
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    if not late and (exited or _exited(proc.pid)):
                        # bwrap has ended on its own: this thread looked late (a
                        # busy machine, a pause of the worker), not the program.
                        # Read what it left, briefly, instead of calling it a
                        # time limit; its CPU time still decides that.
                        late = True
                        deadline = time.monotonic() + _LATE_DRAIN_S
                        continue
                    timed_out = True
                    break
                wait = remaining
                if cgroup is not None and not exited:
                    wait = min(wait, max(0.0, cpu_check - time.monotonic()))
                for key, _ in sel.select(timeout=wait):
                    buf = key.data
                    if buf is None:
                        exited = True
                        sel.unregister(pidfd)
                        continue
                    try:
                        chunk = os.read(key.fd, 65536)
                    except BlockingIOError:
                        continue
                    if not chunk:
                        sel.unregister(key.fd)
                        continue
                    buf += chunk
                    if len(buf) > output_cap:
                        output_exceeded = True
                if output_exceeded:
                    break
                if exited and len(sel.get_map()) == 0:
                    break
        if timed_out or output_exceeded or cpu_exceeded:
            _kill_sandbox(proc.pid, bytes(info), self._kill_uid)
        status, usage = _reap(proc.pid, pidfd, exited)
        cpu_ms = int((usage.ru_utime + usage.ru_stime) * 1000)
        memory_exceeded = False
        if cgroup is not None:
            # Every process of the sandbox, waited for or not.
            cpu_ms = max(cpu_ms, (cgroup.cpu_ns() - cpu_before) // 1_000_000)
            cpu_exceeded = cpu_exceeded or cpu_ms >= limits.cpu_time_s * 1000
            memory_exceeded = cgroup.oom_killed()
            self._remove_cgroup()
        os.close(pidfd)
        proc.returncode = status
        proc.stdout.close()
        proc.stderr.close()
        os.close(stats_read)
        os.close(info_read)
        wall_ms = int((time.monotonic() - started) * 1000)
        exit_code: int | None = None
        sig: int | None = None
        if os.WIFSIGNALED(status):
            sig = os.WTERMSIG(status)
        elif os.WIFEXITED(status):
            code = os.WEXITSTATUS(status)
            # The reaper and bwrap report a program killed by signal N as 128 + N.
            if code > 128:
                sig = code - 128
            else:
                exit_code = code
        return Execution(
            exit_code=exit_code,
            signal=sig,
            cpu_ms=cpu_ms,
            wall_ms=wall_ms,
            memory_kb=parse_peak_kb(bytes(stats)),
            stdout=bytes(out[: output_cap + 1]),
            stderr=bytes(err[: output_cap + 1]),
            timed_out=timed_out,
            output_exceeded=output_exceeded,
            cpu_exceeded=cpu_exceeded,
            memory_exceeded=memory_exceeded,
        )


def _next_cpu_look(cpu_left_ns: int) -> float:
    """Seconds until a sandbox with ``cpu_left_ns`` to spend could have spent it."""
    cores = len(os.sched_getaffinity(0)) or 1
    return max(_CPU_LOOK_MIN_S, cpu_left_ns / 1e9 / cores)


# How long a run waits for its sandbox to be moved into its control group
# (a few grace periods at worst) before it is called off.
_PLACE_WAIT_S = 10.0

# Between two looks at a sandbox's CPU time at least this long: the overshoot
# past the limit is at most this times the cores.
_CPU_LOOK_MIN_S = 0.02

# How long the output of a program found ended after its wall limit may take
# to drain (its writers are all dead: the pipes only hold their last bytes).
_LATE_DRAIN_S = 1.0


def execute(
    argv: Sequence[str],
    *,
    box: str,
    box_writable: bool = False,
    chdir: str = SANDBOX_TMP,
    stdin: bytes = b"",
    limits: Limits,
    limit_address_space: bool = True,
    address_space_extra_mb: int = 0,
    uid: int | None = None,
    sandbox_memory_mb: int | None = None,
    control_group: bool = True,
    seccomp: bool = True,
) -> Execution:
    """Run ``argv`` in a fresh sandbox with ``box`` mounted at /box, enforcing ``limits``.

    ``uid`` is the host uid bwrap runs as (only honoured when we are root).
    Never raises for anything the program does; raises :class:`RunnerError`
    when the sandbox itself cannot start.
    """
    with Sandbox(
        argv,
        box=box,
        box_writable=box_writable,
        chdir=chdir,
        limits=limits,
        limit_address_space=limit_address_space,
        address_space_extra_mb=address_space_extra_mb,
        uid=uid,
        sandbox_memory_mb=sandbox_memory_mb,
        control_group=control_group,
        seccomp=seccomp,
    ) as sandbox:
        return sandbox.run(stdin)


def _kill_sandbox(bwrap_pid: int, info: bytes, uid: int | None) -> None:
    """Kill the sandbox's PID 1, so the kernel kills everything in its namespace.

    bwrap then reaps it and exits on its own, which keeps the CPU accounting
    and leaves no zombie behind. The pid comes from bwrap's --info-fd; it is
    pinned with a pidfd and checked to run as the sandbox's uid before the
    signal, so a recycled pid can never be hit.
    """
    child_pid: int | None = None
    with contextlib.suppress(ValueError, KeyError, msgspec.DecodeError):
        child_pid = msgspec.json.decode(info.strip() or b"{}", type=dict[str, int])["child-pid"]
    if child_pid is not None:
        try:
            pidfd = os.pidfd_open(child_pid)
        except OSError:
            pidfd = None
        if pidfd is not None:
            try:
                if uid is None or process_uid(child_pid) == uid:
                    signal.pidfd_send_signal(pidfd, signal.SIGKILL)
                    return
            except OSError:
                pass
            finally:
                os.close(pidfd)
    _kill_tree(bwrap_pid)


def _exited(pid: int) -> bool:
    """Whether our child ``pid`` has ended, without reaping it."""
    flags = os.WEXITED | os.WNOHANG | os.WNOWAIT
    return os.waitid(os.P_PID, pid, flags) is not None


def _kill_orphan(bwrap_pid: int, info_read: int, uid: int | None) -> None:
    """Kill what a dead, not yet reaped bwrap left behind.

    Its child is found by the pid bwrap wrote on the info pipe; without one,
    :func:`_kill_sandbox` falls back to bwrap's process group, which the child
    leaves only at its setsid and whose id cannot be reused while bwrap is an
    unreaped zombie.
    """
    os.set_blocking(info_read, False)
    info = b""
    with contextlib.suppress(BlockingIOError):
        info = os.read(info_read, 4096)
    os.set_blocking(info_read, True)
    # A later read of the same pipe would have lost these bytes; nothing needs them.
    _kill_sandbox(bwrap_pid, info, uid)


def _kill_tree(pid: int) -> None:
    # bwrap leads its own process group (start_new_session); the PID-namespace
    # init dies with it (--die-with-parent) and the kernel kills the rest.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, signal.SIGKILL)


def _reap(pid: int, pidfd: int, exited: bool) -> tuple[int, resource.struct_rusage]:
    """wait4 the bwrap process; after a kill, give it a bounded time to go."""
    if not exited:
        ready = select.select([pidfd], [], [], 5.0)[0]
        if not ready:
            # A bwrap that outlives SIGKILL of its child is not ours to wait on forever.
            _kill_tree(pid)
    _, status, usage = os.wait4(pid, 0)
    return status, usage
