"""Control groups: memory, tasks and CPU time limited per sandbox, not per process.

Resource limits (``setrlimit``) bind one process at a time: eight children
each under a 256 MB address-space cap use 1.6 GB together, three busy ones
each under a 2 s CPU cap spend 6 s. Each sandbox gets a control group of its
own instead, so everything in the sandbox is counted together: ``memory``
caps what it holds (no swap), ``pids`` caps its tasks (whatever uid the
judge runs as), and its CPU usage is read while it runs, so :mod:`.process`
kills it once the sum reaches the limit.

How a sandbox gets into its group: moving a process between groups (a write
to ``cgroup.procs``) waits for a kernel RCU grace period unless another move
happened just before, 5-15 ms on a busy host, against 0.05 ms for a move
right after another. Done by the launcher before it starts bwrap, that wait
came on top of bwrap's own set-up. So bwrap starts in the worker's group and
a thread of ours moves it, and whatever it has forked, into the sandbox's
group while bwrap sets the sandbox up (:meth:`SandboxCgroup.place_later`);
:mod:`.process` lets the program go only once that is done, so the program
and all it starts are counted from its first instruction. Where the kernel
does not list a process's children (``/proc/PID/task/TID/children``), the
launcher joins the group before bwrap as before.

Both hierarchies are handled: cgroup v1 (one mount per controller: memory,
pids, cpuacct) and the unified v2 tree. The groups sit under the worker's
own cgroup, in a directory per worker process (``safexam-<pid>``; under v2
the processes of that cgroup move into ``safexam-leaf`` beside them); a worker
not allowed to make them there (not root, nothing delegated to it) falls
back to resource limits alone, which ``safexam doctor`` warns about.
"""

from __future__ import annotations

import atexit
import contextlib
import errno
import itertools
import os
import signal
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Literal

import msgspec
import structlog

from safexam.coding.sandbox.launcher import compiled_launcher
from safexam.coding.sandbox.seccomp import DENIED_SYSCALLS, seccomp_problem, seccomp_program

__all__ = [
    "CgroupHost",
    "SandboxCgroup",
    "cgroup_host",
    "cgroup_problem",
    "describe_limits",
    "release_cgroups",
    "tasks_unbounded",
]

log = structlog.get_logger(__name__)

_V1_CONTROLLERS = ("memory", "pids", "cpuacct")
_PREFIX = "safexam-"
# cgroup v2: where the processes of the worker's own group move (see _enable_v2).
_V2_LEAF = "safexam-leaf"
# How long a removal waits for the last killed processes of a sandbox to leave.
_REMOVE_WAIT_S = 0.2


class CgroupHost(msgspec.Struct, frozen=True):
    """Where this worker process makes its sandboxes' control groups."""

    version: int
    # v1: (controller, directory) for memory, pids and cpuacct; v2: one ("", directory).
    parents: tuple[tuple[str, str], ...]

    def parent(self, controller: str) -> str:
        for name, path in self.parents:
            if name == controller or self.version == 2:
                return path
        raise KeyError(controller)


def _mounts() -> list[tuple[str, str, set[str]]]:
    """(type, mount point, options) of every cgroup filesystem."""
    found = []
    with open("/proc/self/mounts") as fh:
        for line in fh:
            parts = line.split()
            if len(parts) >= 4 and parts[2] in ("cgroup", "cgroup2"):
                found.append((parts[2], parts[1], set(parts[3].split(","))))
    return found


def _own_paths() -> dict[str, str]:
    """This process's cgroup per v1 controller, and under "" its v2 cgroup."""
    paths: dict[str, str] = {}
    with open("/proc/self/cgroup") as fh:
        for line in fh:
            hierarchy, controllers, path = line.rstrip("\n").split(":", 2)
            if hierarchy == "0" and controllers == "":
                paths[""] = path
            for name in controllers.split(","):
                if name:
                    paths[name] = path
    return paths


def _write(path: str, value: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    try:
        os.write(fd, value.encode())
    finally:
        os.close(fd)


def _read(path: str) -> str:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        return os.read(fd, 65536).decode()
    finally:
        os.close(fd)


def _remove_stale(directory: str) -> None:
    """Remove the groups of dead worker processes under ``directory`` (empty ones only)."""
    with contextlib.suppress(OSError), os.scandir(directory) as entries:
        for entry in entries:
            pid = entry.name[len(_PREFIX) :]
            if not (entry.name.startswith(_PREFIX) and pid.isdigit() and entry.is_dir()):
                continue
            if int(pid) != os.getpid():
                try:
                    os.kill(int(pid), 0)
                    continue
                except ProcessLookupError:
                    pass
                except OSError:
                    continue
            with contextlib.suppress(OSError), os.scandir(entry.path) as groups:
                for group in groups:
                    if group.is_dir():
                        with contextlib.suppress(OSError):
                            os.rmdir(group.path)
            with contextlib.suppress(OSError):
                os.rmdir(entry.path)


def _make_parent(base: str) -> str:
    _remove_stale(base)
    parent = os.path.join(base, f"{_PREFIX}{os.getpid()}")
    with contextlib.suppress(FileExistsError):
        os.mkdir(parent)
    return parent


def _enable_v2(base: str) -> None:
    """Hand memory and pids from ``base`` (the worker's own v2 group) to its children.

    cgroup v2 lets a non-root group with processes of its own hand controllers to
    none of its children (EBUSY): a container's group, or a systemd service's with
    Delegate=yes, holds the worker itself. Its processes move into a leaf group
    beside the sandboxes' first; the limits of ``base`` and above bind them as before.
    """
    control = os.path.join(base, "cgroup.subtree_control")
    for _ in range(3):
        try:
            _write(control, "+memory +pids")
            return
        except OSError as exc:
            if exc.errno != errno.EBUSY:
                raise
        leaf = os.path.join(base, _V2_LEAF)
        with contextlib.suppress(FileExistsError):
            os.mkdir(leaf)
        for pid in _read(os.path.join(base, "cgroup.procs")).split():
            # One that has just exited is no longer in the way.
            with contextlib.suppress(ProcessLookupError):
                _write(os.path.join(leaf, "cgroup.procs"), pid)
    # A process forked into ``base`` meanwhile each time: say so (EBUSY).
    _write(control, "+memory +pids")


def _detect() -> tuple[CgroupHost | None, str]:
    try:
        mounts = _mounts()
        own = _own_paths()
    except OSError as exc:
        return None, f"cannot read this process's cgroups: {exc}"
    v1 = {}
    for kind, point, options in mounts:
        if kind == "cgroup":
            for name in _V1_CONTROLLERS:
                if name in options and name in own:
                    v1[name] = os.path.join(point, own[name].lstrip("/"))
    problems: list[str] = []
    if len(v1) == len(_V1_CONTROLLERS):
        try:
            parents = tuple((name, _make_parent(v1[name])) for name in _V1_CONTROLLERS)
            return CgroupHost(version=1, parents=parents), ""
        except OSError as exc:
            problems.append(f"cgroup v1: cannot create a group under {v1['memory']}: {exc}")
    unified = next((point for kind, point, _ in mounts if kind == "cgroup2"), None)
    if unified is not None and "" in own:
        own_group = own[""]
        if os.path.basename(own_group) == _V2_LEAF:
            # Moved there by _enable_v2 (this worker or one before it): its parent is ours.
            own_group = os.path.dirname(own_group)
        base = os.path.join(unified, own_group.lstrip("/"))
        try:
            available = set(_read(os.path.join(base, "cgroup.controllers")).split())
            if {"memory", "pids"} <= available:
                enabled = set(_read(os.path.join(base, "cgroup.subtree_control")).split())
                if not {"memory", "pids"} <= enabled:
                    _enable_v2(base)
                parent = _make_parent(base)
                _write(os.path.join(parent, "cgroup.subtree_control"), "+memory +pids")
                return CgroupHost(version=2, parents=(("", parent),)), ""
            problems.append(
                f"cgroup v2: memory and pids are not delegated to {base} "
                f"(it has: {' '.join(sorted(available)) or 'none'})"
            )
        except OSError as exc:
            problems.append(f"cgroup v2: cannot enable memory and pids under {base}: {exc}")
    if not problems:
        problems.append("no memory, pids and cpuacct cgroup controllers are mounted")
    return None, "; ".join(problems)


_lock = threading.Lock()
_detected: dict[int, tuple[CgroupHost | None, str]] = {}


def _detected_here() -> tuple[CgroupHost | None, str]:
    # Per process: a forked worker makes its own directory.
    with _lock:
        found = _detected.get(os.getpid())
        if found is None:
            found = _detect()
            _detected[os.getpid()] = found
            if found[0] is not None:
                atexit.register(release_cgroups)
            if found[0] is None:
                log.warning("sandbox.cgroups_unavailable", reason=found[1])
        return found


def cgroup_host() -> CgroupHost | None:
    """Where this process's sandboxes get their control groups; None where it cannot."""
    return _detected_here()[0]


def cgroup_problem() -> str:
    """Why sandboxes get no control group here (empty when they do)."""
    return _detected_here()[1]


_names = itertools.count()
# Groups whose last processes had not left yet when their sandbox ended.
_leftover: list[SandboxCgroup] = []
_leftover_lock = threading.Lock()


class SandboxCgroup:
    """One sandbox's control group (one directory per v1 controller, one in v2)."""

    def __init__(self, host: CgroupHost, *, memory_bytes: int, tasks: int) -> None:
        self.host = host
        name = f"s{next(_names)}"
        self.dirs: list[str] = []
        _retry_leftovers()
        try:
            if host.version == 1:
                for _, parent in host.parents:
                    path = os.path.join(parent, name)
                    os.mkdir(path)
                    self.dirs.append(path)
                memory = host.parent("memory") + "/" + name
                _write(f"{memory}/memory.limit_in_bytes", str(memory_bytes))
                # Without this a sandbox would swap out what does not fit.
                with contextlib.suppress(FileNotFoundError):
                    _write(f"{memory}/memory.memsw.limit_in_bytes", str(memory_bytes))
                _write(f"{host.parent('pids')}/{name}/pids.max", str(tasks))
                self._cpu = f"{host.parent('cpuacct')}/{name}/cpuacct.usage"
                self._peak = f"{memory}/memory.max_usage_in_bytes"
                self._oom = f"{memory}/memory.oom_control"
            else:
                path = os.path.join(host.parents[0][1], name)
                os.mkdir(path)
                self.dirs.append(path)
                _write(f"{path}/memory.max", str(memory_bytes))
                with contextlib.suppress(FileNotFoundError):
                    _write(f"{path}/memory.swap.max", "0")
                _write(f"{path}/pids.max", str(tasks))
                self._cpu = f"{path}/cpu.stat"
                self._peak = f"{path}/memory.peak"
                self._oom = f"{path}/memory.events"
        except BaseException:
            self.remove()
            raise

    def procs_files(self) -> list[str]:
        """The files the launcher writes its pid to, joining this group."""
        return [os.path.join(path, "cgroup.procs") for path in self.dirs]

    def place(self, pid: int) -> None:
        """Move ``pid`` and every process descended from it into this group.

        Each process is moved before its children are listed: a child forked
        before its parent's move is in the list, one forked after it starts in
        the group. A process that has already exited is skipped (it runs
        nothing more). ``pid`` must be a child of ours not yet reaped, so its
        number is not reused meanwhile; its descendants' numbers could only be
        reused after the kernel's pid counter wraps around within this call.
        Raises :class:`OSError` when a move is refused.
        """
        pending = [pid]
        seen: set[int] = set()
        while pending:
            member = pending.pop()
            if member in seen:
                continue
            seen.add(member)
            try:
                for procs in self.procs_files():
                    _write(procs, str(member))
            except ProcessLookupError:
                continue
            pending.extend(_children(member))

    def place_later(self, pid: int) -> Future[None]:
        """:meth:`place` on this process's mover thread; the future says when it is done."""
        return _mover().submit(self.place, pid)

    def cpu_ns(self) -> int:
        """CPU time used by everything that ran in the group, in nanoseconds."""
        text = _read(self._cpu)
        if self.host.version == 1:
            return int(text)
        for line in text.splitlines():
            key, _, value = line.partition(" ")
            if key == "usage_usec":
                return int(value) * 1000
        return 0

    def oom_killed(self) -> bool:
        """Whether the kernel killed a process of the group for going over its memory."""
        with contextlib.suppress(OSError, ValueError):
            for line in _read(self._oom).splitlines():
                key, _, value = line.partition(" ")
                if key == "oom_kill" and int(value) > 0:
                    return True
        return False

    def peak_kb(self) -> int | None:
        with contextlib.suppress(OSError, ValueError):
            return int(_read(self._peak)) // 1024
        return None

    def remove(self) -> None:
        """Remove the group; one whose last processes are still leaving is retried later."""
        if not self._rmdirs(wait=True):
            with _leftover_lock:
                _leftover.append(self)

    def _rmdirs(self, *, wait: bool) -> bool:
        deadline = time.monotonic() + (_REMOVE_WAIT_S if wait else 0.0)
        while True:
            busy = []
            for path in self.dirs:
                try:
                    os.rmdir(path)
                except FileNotFoundError:
                    pass
                except OSError as exc:
                    if exc.errno != errno.EBUSY:
                        log.warning("sandbox.cgroup_remove_failed", path=path, error=str(exc))
                        continue
                    # Whatever of the sandbox is still there outlived its run.
                    _kill_members(path)
                    busy.append(path)
            self.dirs = busy
            if not busy or time.monotonic() >= deadline:
                return not busy
            time.sleep(0.005)


def _children(pid: int) -> list[int]:
    """The children of every thread of ``pid`` (none once it has exited)."""
    found: list[int] = []
    with contextlib.suppress(FileNotFoundError, ProcessLookupError):
        for tid in os.listdir(f"/proc/{pid}/task"):
            with contextlib.suppress(FileNotFoundError, ProcessLookupError):
                found.extend(
                    int(child) for child in _read(f"/proc/{pid}/task/{tid}/children").split()
                )
    return found


def children_listed() -> bool:
    """Whether the kernel lists a process's children (CONFIG_PROC_CHILDREN): placing needs it."""
    return os.path.exists(f"/proc/self/task/{threading.get_native_id()}/children")


_movers: dict[int, ThreadPoolExecutor] = {}


def _mover() -> ThreadPoolExecutor:
    # One thread per process: the moves of sandboxes set up together follow
    # each other, so only the first waits for a grace period. Per pid: a
    # forked worker does not inherit the thread.
    with _lock:
        mover = _movers.get(os.getpid())
        if mover is None:
            mover = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sandbox-cgroup")
            _movers[os.getpid()] = mover
        return mover


def release_cgroups() -> None:
    """Remove this process's groups and their parent directories (at its shutdown)."""
    _retry_leftovers()
    with _lock:
        host, _ = _detected.pop(os.getpid(), (None, ""))
    if host is not None:
        for _, parent in host.parents:
            with contextlib.suppress(OSError):
                os.rmdir(parent)


def _kill_members(path: str) -> None:
    """SIGKILL every process still in the sandbox's group at ``path``."""
    member = "/".join(path.rstrip("/").split("/")[-2:])
    with contextlib.suppress(OSError, ValueError):
        for field in _read(os.path.join(path, "cgroup.procs")).split():
            try:
                pidfd = os.pidfd_open(int(field))
            except OSError:
                continue
            try:
                # Held by its pidfd, the pid cannot be reused: check it is still in the group.
                with open(f"/proc/{field}/cgroup") as fh:
                    if member in fh.read():
                        signal.pidfd_send_signal(pidfd, signal.SIGKILL)
            except OSError:
                pass
            finally:
                os.close(pidfd)


def _retry_leftovers() -> None:
    with _leftover_lock:
        waiting = list(_leftover)
        _leftover.clear()
    for group in waiting:
        if not group._rmdirs(wait=False):
            with _leftover_lock:
                _leftover.append(group)


# What to change when nothing caps a sandbox's tasks, in words for an operator.
_TASKS_UNBOUNDED = (
    "the judge is not root and has no control groups for its sandboxes, so nothing "
    "caps a sandbox's tasks (a fork bomb reaches the host's limits). Run the judge as "
    "root (it drops each sandbox to a throw-away uid; compose.yaml's judge runs as "
    "root), or give it a cgroup of its own with the memory and pids controllers "
    "delegated (cgroup v2: systemd Delegate=yes, or a writable /sys/fs/cgroup in its "
    "container; cgroup v1: its memory, pids and cpuacct groups owned by its uid). "
    "Control groups here: {problem}"
)


def tasks_unbounded() -> str | None:
    """Why a sandbox's tasks would be uncapped in this process (None when they are capped)."""
    if os.geteuid() == 0:
        return None
    if compiled_launcher() is None:
        return _TASKS_UNBOUNDED.format(problem="no C compiler for the launcher that joins them")
    if cgroup_host() is None:
        return _TASKS_UNBOUNDED.format(problem=cgroup_problem())
    return None


Check = tuple[str, Literal["ok", "warn", "fail"], str]


def describe_limits() -> list[Check]:
    """Which limits bind here, as ``(name, ok|warn|fail, detail)`` for ``safexam doctor``."""
    lines: list[Check] = []
    host = cgroup_host()
    if host is None:
        lines.append(
            (
                "sandbox cgroups",
                "warn",
                f"none ({cgroup_problem()}): memory and CPU time limited per process only",
            )
        )
    else:
        where = ", ".join(f"{name or 'unified'} {path}" for name, path in host.parents)
        lines.append(
            (
                "sandbox cgroups",
                "ok",
                f"v{host.version}: memory, tasks and CPU time per sandbox ({where})",
            )
        )
    if seccomp_program() is None:
        lines.append(("sandbox seccomp", "warn", f"no filter: {seccomp_problem()}"))
    else:
        lines.append(
            (
                "sandbox seccomp",
                "ok",
                f"{len(DENIED_SYSCALLS)} system calls refused (io_uring, bpf, ptrace, ...)",
            )
        )
    unbounded = tasks_unbounded()
    if unbounded is not None:
        lines.append(("sandbox uid", "fail", unbounded))
    elif os.geteuid() == 0:
        lines.append(("sandbox uid", "ok", "root: each sandbox runs under a throw-away uid"))
    else:
        lines.append(
            ("sandbox uid", "ok", f"uid {os.geteuid()}: tasks capped by each sandbox's cgroup")
        )
    return lines
