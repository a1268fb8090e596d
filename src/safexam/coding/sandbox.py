"""The embedded runner: every compile and every test in a fresh bubblewrap sandbox.

Isolation (bubblewrap): new user, PID, network, IPC, UTS and cgroup
namespaces; only the system directories, read-only, plus a handful of /etc
files (never /etc/shadow); a fresh /proc and minimal /dev; a size-capped
tmpfs /tmp as the only writable place during tests; a cleared environment;
``--die-with-parent`` and ``--new-session``.

Limits (set with setrlimit in the child before bwrap starts, inherited by
everything inside): CPU time, address space, stack, tasks, file size, no core
files. When the worker runs as root, bwrap itself is started as a throw-away
unprivileged uid drawn per sandbox (the compile, each test run), because
RLIMIT_NPROC counts processes per real uid and does not bind root; with a
fresh uid the limit counts exactly this sandbox's tasks. The wall-time limit
and the output caps are enforced here: we read stdout/stderr from pipes, at
most N bytes, and at the limit SIGKILL bwrap's process group, whose
PID-namespace init then takes every process of the program with it.

Host-side file safety (the Judge0 CVE-2024-28185/28189 class): the host
writes only the source file, into a directory it has just created, with
O_EXCL|O_NOFOLLOW relative to a directory fd. Test runs see that directory
read-only, so no program can leave a link in it; the compile step (which runs
only the compiler) sees it writable. The host never reads a file back (output
comes through pipes, stdin from a sealed memfd) and removes the directory with
``shutil.rmtree``, which on Linux walks by file descriptor and never follows
a symlink.
"""

from __future__ import annotations

import asyncio
import atexit
import collections
import contextlib
import fcntl
import glob
import math
import os
import resource
import secrets
import select
import selectors
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Collection, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import msgspec
import structlog

from safexam.coding.languages import BOX, SYSTEM_PATH, Language, get_language
from safexam.coding.runner import (
    Judgement,
    Limits,
    Progress,
    RunnerError,
    TestCase,
    TestResult,
    Verdict,
    clean_text,
    grade_output,
    overall_verdict,
    score_of,
)

__all__ = [
    "COMPILE_LIMITS",
    "SANDBOX_UID_BASE",
    "SANDBOX_UID_SPAN",
    "Execution",
    "Sandbox",
    "SandboxConfig",
    "SandboxRunner",
    "bwrap_path",
    "classify",
    "compiled_launcher",
    "default_work_root",
    "execute",
    "remove_stale_boxes",
    "sandbox_processes",
    "submission_box",
    "time_path",
]

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

# The throw-away uids bwrap runs as when we are root: far above any real user.
SANDBOX_UID_BASE = 0x70000000
SANDBOX_UID_SPAN = 1 << 24
_TMP_SIZE_MIN = 1 << 20
# The sandbox's private tmpfs (a path inside the sandbox, not the host's /tmp).
SANDBOX_TMP = "/tmp"  # noqa: S108
# Where the launcher binary is mounted (read-only) to serve as the sandbox's PID 1.
REAPER = "/.safexam-reaper"
_ETC_FILES = (
    "/etc/ld.so.cache",
    "/etc/alternatives",
    "/etc/localtime",
)
# Read by the linker (not by ld.so, which uses the cache): compiles only,
# one bind less per test run each.
_ETC_COMPILE_FILES = ("/etc/ld.so.conf", "/etc/ld.so.conf.d")


class SandboxConfig(msgspec.Struct, frozen=True, kw_only=True):
    """Where the sandbox keeps per-submission directories and how compiles are limited."""

    work_root: str | None = None
    compile_limits: Limits = COMPILE_LIMITS
    # Bytes of stdout/stderr kept per test in the result (the comparison sees all of it).
    keep_output_bytes: int = 8 * 1024
    # First-step sandboxes (the compile or syntax check, else the first test) kept
    # set up ahead, one per (language, limits) most recently judged; 0: none.
    warm: int = 0


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


def _system_binds(compiling: bool) -> list[str]:
    """Read-only binds of the system directories, mirroring merged-/usr symlinks."""
    args: list[str] = []
    for top in ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
        if os.path.islink(top):
            args += ["--symlink", os.readlink(top), top]
        elif os.path.isdir(top):
            args += ["--ro-bind", top, top]
    # Only what the toolchains need from /etc; JDK config dirs are symlink targets of its conf/.
    extra = _ETC_COMPILE_FILES if compiling else ()
    for path in (*_ETC_FILES, *extra, *sorted(glob.glob("/etc/java-*"))):
        if os.path.exists(path):
            args += ["--ro-bind", path, path]
    return args


_SYSTEM_BINDS: dict[bool, list[str]] = {}

# A minimal /dev: bwrap's --dev also mounts a devpts instance and binds
# /dev/tty, which no judged program needs; each mount costs time per run.
# /dev is a plain directory of bwrap's root tmpfs, frozen by its remount.
_DEV = [
    *(
        arg
        for name in ("null", "zero", "full", "random", "urandom")
        for arg in ("--dev-bind", f"/dev/{name}", f"/dev/{name}")
    ),
    *(
        arg
        for name, target in (
            ("fd", "/proc/self/fd"),
            ("stdin", "/proc/self/fd/0"),
            ("stdout", "/proc/self/fd/1"),
            ("stderr", "/proc/self/fd/2"),
        )
        for arg in ("--symlink", target, f"/dev/{name}")
    ),
]


def _bwrap_argv(
    bwrap: str,
    argv: Sequence[str],
    *,
    box: str,
    box_writable: bool,
    chdir: str,
    tmp_bytes: int,
    info_fd: int,
    reaper: str | None = None,
    compiling: bool = False,
) -> list[str]:
    system_binds = _SYSTEM_BINDS.get(compiling)
    if system_binds is None:
        system_binds = _SYSTEM_BINDS[compiling] = _system_binds(compiling)
    return [
        bwrap,
        "--unshare-all",
        "--unshare-user",
        # No nested user namespaces: the usual door to kernel attack surface.
        "--disable-userns",
        "--die-with-parent",
        "--new-session",
        "--as-pid-1",
        "--info-fd",
        str(info_fd),
        "--uid",
        "65534",
        "--gid",
        "65534",
        "--hostname",
        "sandbox",
        *system_binds,
        "--proc",
        "/proc",
        *_DEV,
        "--size",
        str(max(tmp_bytes, _TMP_SIZE_MIN)),
        "--tmpfs",
        SANDBOX_TMP,
        "--bind" if box_writable else "--ro-bind",
        box,
        BOX,
        *(["--ro-bind", reaper, REAPER] if reaper is not None else []),
        # bwrap's root (holding /dev) is a tmpfs without a size cap: freeze it,
        # so the capped /tmp is the only place a program can write during tests.
        "--remount-ro",
        "/",
        "--chdir",
        chdir,
        "--clearenv",
        "--setenv",
        "PATH",
        "/usr/bin:/bin",
        "--setenv",
        "HOME",
        SANDBOX_TMP,
        "--setenv",
        "LANG",
        "C.UTF-8",
        "--",
        *argv,
    ]


class _RLimits(msgspec.Struct, frozen=True):
    """The resource limits of one sandbox, applied to bwrap before it starts."""

    cpu_s: int
    address_space: int | None
    stack: int
    nproc: int | None
    fsize: int

    def table(self) -> list[tuple[str, int, int, int]]:
        """(prlimit option, resource, soft, hard) for every limit we set."""
        rows = [
            ("cpu", resource.RLIMIT_CPU, self.cpu_s, self.cpu_s + 1),
            ("stack", resource.RLIMIT_STACK, self.stack, self.stack),
            ("fsize", resource.RLIMIT_FSIZE, self.fsize, self.fsize),
            ("core", resource.RLIMIT_CORE, 0, 0),
            ("nofile", resource.RLIMIT_NOFILE, 256, 256),
            ("msgqueue", resource.RLIMIT_MSGQUEUE, 0, 0),
        ]
        if self.address_space is not None:
            rows.append(("as", resource.RLIMIT_AS, self.address_space, self.address_space))
        if self.nproc is not None:
            rows.append(("nproc", resource.RLIMIT_NPROC, self.nproc, self.nproc))
        return rows

    def apply(self) -> None:
        for _, res, soft, hard in self.table():
            resource.setrlimit(res, (soft, hard))


# One static exec in front of bwrap that does what ``prlimit`` and ``setpriv``
# do in two dynamically linked ones (about 2 ms less per sandbox): set the
# limits while still privileged, drop to the sandbox uid with no
# supplementary groups, exec bwrap. The same binary, mounted read-only,
# is the sandbox's PID 1 in place of GNU time (see ``_reaper_argv``). Built
# once per worker process from this source, into a fresh directory only we
# can write, so nobody else can replace it.
_LAUNCHER_C = r"""
#define _GNU_SOURCE
#include <errno.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

static int fail(const char *what) {
  fprintf(stderr, "safexam-launcher: %s: %s\n", what, strerror(errno));
  return 127;
}

static unsigned long long number(const char *text, char **end) {
  errno = 0;
  unsigned long long value = strtoull(text, end, 10);
  if (errno || *end == text) exit(fail("bad number"));
  return value;
}

/* PID 1 of the sandbox: wait for the go byte on GO_FD (-1: start at
   once), run the program, reap everything, report the program's peak RSS
   on STATS_FD once it is dead, exit with its status (128 + N for a
   signal). End of file on GO_FD means the run was called off: exit 125
   without running anything. */
static int reap(int argc, char **argv) {
  char *end, go;
  int stats, go_fd, status = 0;
  ssize_t got;
  pid_t child;
  struct rusage usage;
  if (argc < 6 || strcmp(argv[4], "--") != 0) return fail("usage");
  stats = (int)number(argv[2], &end);
  if (*end) return fail("bad fd");
  go_fd = strcmp(argv[3], "-1") == 0 ? -1 : (int)number(argv[3], &end);
  if (go_fd >= 0) {
    if (*end) return fail("bad fd");
    do got = read(go_fd, &go, 1); while (got < 0 && errno == EINTR);
    if (got != 1) return 125;
    close(go_fd);
  }
  child = fork();
  if (child < 0) return fail("fork");
  if (child == 0) {
    execvp(argv[5], argv + 5);
    fprintf(stderr, "cannot run %s: %s\n", argv[5], strerror(errno));
    _exit(errno == ENOENT ? 127 : 126);
  }
  for (;;) {
    pid_t pid = wait4(-1, &status, 0, &usage);
    if (pid == child) break;
    if (pid < 0 && errno != EINTR) return fail("wait4");
  }
  dprintf(stats, "\nsafexam-rusage %ld\n", usage.ru_maxrss);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return WEXITSTATUS(status);
}

/* safexam-launcher UID|-1 RESOURCE:SOFT:HARD ... -- PROGRAM ARGS...
   safexam-launcher reap STATS_FD GO_FD|-1 -- PROGRAM ARGS... */
int main(int argc, char **argv) {
  int i;
  if (argc < 4) return fail("usage");
  if (strcmp(argv[1], "reap") == 0) return reap(argc, argv);
  for (i = 2; i < argc && strcmp(argv[i], "--") != 0; i++) {
    char *end;
    struct rlimit limit;
    int which = (int)number(argv[i], &end);
    if (*end != ':') return fail("bad limit");
    limit.rlim_cur = number(end + 1, &end);
    if (*end != ':') return fail("bad limit");
    limit.rlim_max = number(end + 1, &end);
    if (*end) return fail("bad limit");
    if (setrlimit(which, &limit)) return fail("setrlimit");
  }
  if (i + 1 >= argc) return fail("no program");
  if (strcmp(argv[1], "-1") != 0) {
    char *end;
    uid_t uid = (uid_t)number(argv[1], &end);
    if (*end) return fail("bad uid");
    if (setgroups(0, NULL)) return fail("setgroups");
    if (setresgid(uid, uid, uid)) return fail("setresgid");
    if (setresuid(uid, uid, uid)) return fail("setresuid");
    if (getuid() != uid || geteuid() != uid) return fail("uid drop");
  }
  execv(argv[i + 1], argv + i + 1);
  return fail("execv");
}
"""

_launcher_lock = threading.Lock()
_launcher_built: list[str | None] = []


_LAUNCHER_PREFIX = "safexam-launcher-"


def _remove_stale_launchers() -> None:
    """Remove launcher directories of our dead worker processes.

    A worker that does not exit normally (SIGKILL, ``os._exit``) skips atexit;
    its directory names its pid. Directories of live pids, of other owners, or
    that are not plain directories are left alone.
    """
    root = tempfile.gettempdir()
    with contextlib.suppress(OSError), os.scandir(root) as entries:
        for entry in entries:
            if not entry.name.startswith(_LAUNCHER_PREFIX):
                continue
            pid_text = entry.name[len(_LAUNCHER_PREFIX) :].split("-", 1)[0]
            if not pid_text.isdigit():
                continue
            try:
                info = entry.stat(follow_symlinks=False)
                os.kill(int(pid_text), 0)
                continue  # its worker is alive
            except ProcessLookupError:
                pass
            except OSError:
                continue
            if stat.S_ISDIR(info.st_mode) and info.st_uid == os.geteuid():
                shutil.rmtree(entry.path, ignore_errors=True)


def compiled_launcher() -> str | None:
    """The static launcher, built on first use; None without a C compiler."""
    with _launcher_lock:
        if _launcher_built:
            return _launcher_built[0]
        path: str | None = None
        compiler = shutil.which("cc", path=SYSTEM_PATH) or shutil.which("gcc", path=SYSTEM_PATH)
        if compiler is not None and sys.platform == "linux":
            # mkdtemp: mode 0700, a new name, owned by us: no one can swap the binary.
            _remove_stale_launchers()
            directory = tempfile.mkdtemp(prefix=f"{_LAUNCHER_PREFIX}{os.getpid()}-")
            atexit.register(shutil.rmtree, directory, True)
            source = os.path.join(directory, "launcher.c")
            binary = os.path.join(directory, "launcher")
            with open(source, "w", encoding="ascii") as fh:
                fh.write(_LAUNCHER_C)
            for static in (["-static"], []):
                built = subprocess.run(  # noqa: S603 - our compiler, our source
                    [compiler, "-O2", *static, "-o", binary, source],
                    stdin=subprocess.DEVNULL,
                    capture_output=True,
                    env={"PATH": SYSTEM_PATH},
                    timeout=60,
                    check=False,
                )
                if built.returncode == 0:
                    # The sandbox's uid must reach it too (it is also the reaper inside).
                    os.chmod(binary, 0o755)  # noqa: S103 - read-only for others
                    os.chmod(directory, 0o711)  # noqa: S103 - traverse only, no listing
                    path = binary
                    break
            if path is None:
                log.warning("sandbox.launcher_build_failed", stderr=built.stderr[-2000:])
        _launcher_built.append(path)
        return path


def _launcher(limits: _RLimits, uid: int | None) -> list[str] | None:
    """What runs in front of bwrap: set the limits, drop to ``uid``; None to do it in-process.

    The built launcher if there is one, else ``prlimit ... setpriv ...``: a
    few tiny execs cost less than forking the worker for a preexec function
    (which also disables vfork and is unsafe in a threaded worker).
    """
    built = compiled_launcher()
    if built is not None:
        table = (f"{res}:{soft}:{hard}" for _, res, soft, hard in limits.table())
        return [built, str(uid) if uid is not None else "-1", *table, "--"]
    prlimit = shutil.which("prlimit", path=SYSTEM_PATH)
    setpriv = shutil.which("setpriv", path=SYSTEM_PATH)
    if prlimit is None or (uid is not None and setpriv is None):
        return None
    argv = [prlimit, *(f"--{name}={soft}:{hard}" for name, _, soft, hard in limits.table()), "--"]
    if uid is not None and setpriv is not None:
        argv += [setpriv, f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--"]
    return argv


def time_path() -> str | None:
    return shutil.which("time", path=SYSTEM_PATH)


def _reaper_argv(stats_fd: int, go_fd: int | None = None) -> list[str]:
    """PID 1 of the sandbox: waits for the program and reports its own rusage.

    bwrap's built-in init hands the exit status to the outer bwrap through an
    eventfd and is never reaped, so the program's CPU time would be lost; with
    ``--as-pid-1`` and a real waiter as PID 1 the accounting reaches us. Our
    launcher in its reaper mode (static: cheaper to start) or else GNU time
    also reports the program's peak memory, which the outer rusage
    cannot (a forked child inherits the worker's high-water mark). PID 1
    ignores signals from inside the namespace, so ``kill -9 -1`` cannot take
    the reaper down, and when it exits the kernel kills every leftover.
    With ``go_fd`` our reaper holds the program back until a byte arrives
    there (only ours can: the fallbacks start at once).
    """
    built = compiled_launcher()
    if built is not None:
        return [REAPER, "reap", str(stats_fd), str(go_fd) if go_fd is not None else "-1", "--"]
    timer = time_path()
    if timer is None:
        return ["/bin/sh", "-c", '"$@"', "sh"]
    return [timer, "-q", "-f", f"{_STATS_MARK} %M", "-o", f"/dev/fd/{stats_fd}", "--"]


_STATS_MARK = "safexam-rusage"


def _parse_peak_kb(stats: bytes) -> int | None:
    # The program inherits the stats fd and could write there too; GNU time's
    # own line comes last, after the program is dead.
    for line in reversed(stats.decode("ascii", errors="replace").splitlines()):
        parts = line.split()
        if len(parts) == 2 and parts[0] == _STATS_MARK and parts[1].isdigit():
            return int(parts[1])
    return None


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
        compiling: bool = False,
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
        rlimits = _RLimits(
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
        launcher = _launcher(rlimits, uid if drop else None)
        in_process = launcher is None
        self._stats_read, stats_write = os.pipe2(os.O_CLOEXEC)
        # GNU time reopens the pipe by path (/dev/fd/N) as the sandbox's uid.
        os.fchmod(stats_write, 0o622)
        self._info_read, info_write = os.pipe2(os.O_CLOEXEC)
        reaper = compiled_launcher()
        go_read: int | None = None
        self._go: int | None = None
        if reaper is not None:
            go_read, self._go = os.pipe2(os.O_CLOEXEC)
        # stdin is a memfd filled and sealed by run(): the sandbox holds it open
        # from the start, and nothing but us can write it before the seal.
        self._stdin = os.memfd_create("stdin", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
        self._child_fds = [fd for fd in (stats_write, info_write, go_read) if fd is not None]
        full_argv = _bwrap_argv(
            bwrap,
            [*_reaper_argv(stats_write, go_read), *argv],
            box=box,
            box_writable=box_writable,
            chdir=chdir,
            tmp_bytes=limits.file_size_kb * 1024,
            info_fd=info_write,
            reaper=reaper,
            compiling=compiling,
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

    def _release(self) -> None:
        for fd in (self._stats_read, self._info_read, self._stdin, self._go, *self._child_fds):
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._go = None
        self._child_fds = []
        self._done = True

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
        if self._go is not None:
            if _exited(proc.pid):
                # bwrap arms its child's parent-death signal only at the end of
                # the set-up, so a bwrap killed mid-set-up can leave a sandbox
                # behind, complete or stuck half-way: it must not be told to go,
                # and is killed now rather than at the wall limit. A sandbox that
                # failed its set-up (its stderr says why) is read and reaped
                # below like any other run, not leaked.
                _kill_orphan(proc.pid, self._info_read, self._kill_uid)
            else:
                with contextlib.suppress(BrokenPipeError):
                    os.write(self._go, b"g")
        os.close(self._stdin)
        if self._go is not None:
            os.close(self._go)
        stats_read, info_read = self._stats_read, self._info_read
        self._done = True
        deadline = started + limits.wall_time_s
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
            while not exited or len(sel.get_map()) > 1:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    timed_out = True
                    break
                for key, _ in sel.select(timeout=remaining):
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
        if timed_out or output_exceeded:
            _kill_sandbox(proc.pid, bytes(info), self._kill_uid)
        status, usage = _reap(proc.pid, pidfd, exited)
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
            cpu_ms=int((usage.ru_utime + usage.ru_stime) * 1000),
            wall_ms=wall_ms,
            memory_kb=_parse_peak_kb(bytes(stats)),
            stdout=bytes(out[: output_cap + 1]),
            stderr=bytes(err[: output_cap + 1]),
            timed_out=timed_out,
            output_exceeded=output_exceeded,
        )


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
    compiling: bool = False,
) -> Execution:
    """Run ``argv`` in a fresh sandbox with ``box`` mounted at /box, enforcing ``limits``.

    ``uid`` is the host uid bwrap runs as (only honoured when we are root);
    ``compiling`` adds what only compilers and linkers read.
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
        compiling=compiling,
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
                if uid is None or _process_uid(child_pid) == uid:
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


def _process_uid(pid: int, *, live_only: bool = False) -> int | None:
    with contextlib.suppress(OSError), open(f"/proc/{pid}/status", "rb") as fh:
        for line in fh:
            # State comes before Uid in /proc/PID/status.
            if live_only and line.startswith(b"State:") and line.split()[1] in (b"Z", b"X"):
                return None
            if line.startswith(b"Uid:"):
                return int(line.split()[1])
    return None


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


def default_work_root() -> Path:
    return Path(tempfile.gettempdir()) / "safexam-sandbox"


def sandbox_processes(uids: Collection[int] | None = None) -> list[int]:
    """Pids of live host processes running as a sandbox uid (or one of ``uids``).

    Zombies are left out: they hold no memory, file or CPU, and one whose
    parent died waits for the host's init to reap it, which is not ours to do.
    """
    found: list[int] = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            uid = _process_uid(int(entry), live_only=True)
            in_range = uid is not None and 0 <= uid - SANDBOX_UID_BASE < SANDBOX_UID_SPAN
            if (uid in uids) if uids is not None else in_range:
                found.append(int(entry))
    return found


#: No judging holds a box this long (limits are seconds); an older one was left
#: by a worker killed mid-judge, with a student's source and program in it.
STALE_BOX_SECONDS = 3600


def remove_stale_boxes(work_root: str | None, older_than: float = STALE_BOX_SECONDS) -> int:
    """Delete submission boxes left behind by dead workers; returns how many."""
    root = Path(work_root) if work_root else default_work_root()
    cutoff = time.time() - older_than
    removed = 0
    with contextlib.suppress(OSError), os.scandir(root) as entries:
        for entry in entries:
            if not entry.name.startswith("box-"):
                continue
            try:
                info = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            if stat.S_ISDIR(info.st_mode) and info.st_mtime < cutoff:
                shutil.rmtree(entry.path, ignore_errors=True)
                removed += 1
    if removed:
        log.info("sandbox.stale_boxes_removed", count=removed)
    return removed


@contextlib.contextmanager
def submission_box(work_root: str | None, source_name: str, program: str) -> Iterator[str]:
    """A fresh private directory holding only the program's source; removed afterwards."""
    with _emptied(_new_box(work_root)) as box:
        _write_source(box, source_name, program)
        yield box


def _new_box(work_root: str | None) -> str:
    """A fresh, empty directory under the work root, for one submission."""
    root = Path(work_root) if work_root else default_work_root()
    try:
        root.mkdir(mode=0o711, parents=True)
    except FileExistsError:
        pass
    else:
        # mkdir's mode passes through the umask; the sandboxes' uids must traverse it.
        os.chmod(root, 0o711)  # noqa: S103 - traverse only, no listing
    box = tempfile.mkdtemp(prefix="box-", dir=root)
    # Readable by others: every test runs as a uid of its own (RLIMIT_NPROC
    # then counts that sandbox alone, even beside the next one being set up),
    # and sees the box read-only. No one else can find it: the work root is
    # not listable and the box's name is random.
    os.chmod(box, 0o755)  # noqa: S103
    return box


def _write_source(box: str, source_name: str, program: str) -> None:
    """Create the source in ``box``: a new file, never through a link, relative to the box's fd."""
    with _box_fd(box) as dir_fd:
        fd = os.open(
            source_name,
            os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
            0o644,
            dir_fd=dir_fd,
        )
        # The mode above passes through the umask; the compile's uid must read it.
        os.fchmod(fd, 0o644)
        with os.fdopen(fd, "wb") as fh:
            fh.write(program.encode("utf-8"))


@contextlib.contextmanager
def _box_fd(box: str) -> Iterator[int]:
    """The box as a directory fd: what the host does there is relative to it, never by path."""
    dir_fd = os.open(box, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    try:
        yield dir_fd
    finally:
        os.close(dir_fd)


def _own_box(box: str, uid: int) -> None:
    """Give the box to the compile's uid, so the compiler (running as it) may write there."""
    with _box_fd(box) as dir_fd:
        os.fchown(dir_fd, uid, uid)


def _retire(ready: _Ready) -> None:
    """Call off a sandbox set up ahead and remove its (still empty) box."""
    ready.sandbox.close()
    shutil.rmtree(ready.box, ignore_errors=True)


@contextlib.contextmanager
def _emptied(box: str) -> Iterator[str]:
    """Use an existing box; remove it with everything in it afterwards."""
    try:
        yield box
    finally:
        shutil.rmtree(box, ignore_errors=True)


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


def _drop_source(box: str, source_name: str) -> None:
    # By name under the box's fd: unlink never follows a link the compile left.
    with _box_fd(box) as dir_fd, contextlib.suppress(FileNotFoundError):
        os.unlink(source_name, dir_fd=dir_fd)


def classify(
    run: Execution, limits: Limits, language: Language, test: TestCase, comparison: str
) -> Verdict:
    """Turn what happened to a process into a verdict."""
    if run.output_exceeded:
        return "output_limit"
    cpu_limit_ms = limits.cpu_time_s * 1000
    if run.timed_out or run.cpu_ms >= cpu_limit_ms or run.signal == signal.SIGXCPU:
        return "time_limit"
    if run.signal == signal.SIGXFSZ or b"File too large" in run.stderr:
        return "output_limit"
    failed = run.signal is not None or run.exit_code != 0
    if failed:
        stderr = run.stderr.decode("utf-8", errors="replace")
        # The JVM and V8 commit their whole stack and heap reservations, so only
        # their own out-of-memory messages count for them.
        near_cap = (
            language.limit_address_space
            and run.memory_kb is not None
            and run.memory_kb >= limits.memory_mb * 1024 * 0.8
        )
        if near_cap or any(marker in stderr for marker in language.memory_markers):
            return "memory_limit"
        return "runtime_error"
    return grade_output(test, run.stdout.decode("utf-8", errors="replace"), comparison)


#: A sandbox set up ahead and unused this long is retired rather than used: its
#: box must stay well clear of the stale-box sweep of a restarting worker.
WARM_MAX_AGE_S = 600.0

# What a first-step sandbox depends on: the language, and the question's limits
# unless that step is a compile (compiles run under the runner's own limits).
_WarmKey = tuple[str, Limits | None]


class _Ready(msgspec.Struct):
    """A first-step sandbox set up before its program was known, around an empty box."""

    sandbox: Sandbox
    box: str
    uid: int
    made: float


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
        self.config = config or SandboxConfig()
        # The uids of recent submissions, so a caller can check none of them left a process.
        self.recent_uids: collections.deque[int] = collections.deque(maxlen=256)
        # How many judgings found their first sandbox set up ahead.
        self.warm_hits = 0
        self._ready: collections.OrderedDict[_WarmKey, _Ready] = collections.OrderedDict()
        self._ready_lock = threading.Lock()
        self._closed = False
        # bwrap's parent-death signal fires when the *thread* that started it
        # exits, so sandboxes that wait between judgings are started on one
        # thread of ours that lives as long as the runner, never on a pool an
        # event loop may shut down.
        self._warmer = (
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="sandbox-warm")
            if self.config.warm > 0 and compiled_launcher() is not None
            else None
        )
        if self._warmer is not None:
            atexit.register(self.close)
        remove_stale_boxes(self.config.work_root)

    def ready_uids(self) -> set[int]:
        """The uids of the sandboxes now waiting for a judging (their processes are expected)."""
        with self._ready_lock:
            return {ready.uid for ready in self._ready.values()}

    def close(self) -> None:
        """Call off the sandboxes set up ahead and remove their boxes."""
        self._closed = True
        if self._warmer is not None:
            self._warmer.shutdown(wait=True)
        with self._ready_lock:
            waiting = list(self._ready.values())
            self._ready.clear()
        for ready in waiting:
            _retire(ready)

    def _warm_key(self, lang: Language, limits: Limits) -> _WarmKey:
        return (lang.name, None if lang.compile_argv is not None else limits)

    def _take_ready(self, lang: Language, limits: Limits) -> _Ready | None:
        if self._warmer is None:
            return None
        with self._ready_lock:
            ready = self._ready.pop(self._warm_key(lang, limits), None)
        if ready is None:
            return None
        proc = ready.sandbox._proc
        if time.monotonic() - ready.made > WARM_MAX_AGE_S or proc is None or _exited(proc.pid):
            try:
                self._warmer.submit(_retire, ready)
            except RuntimeError:  # the runner was closed meanwhile
                _retire(ready)
            return None
        return ready

    def _warm_later(self, lang: Language, limits: Limits) -> None:
        if self._warmer is None or self._closed:
            return
        with contextlib.suppress(RuntimeError):  # shut down meanwhile
            self._warmer.submit(self._warm, lang, limits)

    def _warm(self, lang: Language, limits: Limits) -> None:
        key = self._warm_key(lang, limits)
        with self._ready_lock:
            if self._closed or key in self._ready:
                return
        uid = self.new_uid()
        box = _new_box(self.config.work_root)
        try:
            if os.geteuid() == 0:
                _own_box(box, uid)
            sandbox = self._first_sandbox(lang, box, uid, limits)
        except BaseException:
            shutil.rmtree(box, ignore_errors=True)
            log.warning("sandbox.warm_failed", language=lang.name, exc_info=True)
            return
        ready = _Ready(sandbox=sandbox, box=box, uid=uid, made=time.monotonic())
        evicted: list[_Ready] = []
        with self._ready_lock:
            if self._closed or key in self._ready:
                evicted.append(ready)
            else:
                self._ready[key] = ready
                while len(self._ready) > self.config.warm:
                    evicted.append(self._ready.popitem(last=False)[1])
        for old in evicted:
            _retire(old)

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
        ready = self._take_ready(lang, limits)
        if ready is not None:
            try:
                # Nothing has run in that sandbox yet, and it sees the box read-only
                # (or, for a compile, has not started the compiler): the box is as
                # empty as when we made it.
                _write_source(ready.box, lang.source_name, program)
            except OSError:
                log.warning("sandbox.warm_box_unusable", language=lang.name, exc_info=True)
                await asyncio.to_thread(_retire, ready)
                ready = None
            else:
                self.warm_hits += 1
        try:
            return await self._judge(lang, program, tests, limits, comparison, progress, ready)
        finally:
            if ready is not None:
                # Unused when there was nothing to run; closing a used one is a no-op.
                await asyncio.to_thread(ready.sandbox.close)
            self._warm_later(lang, limits)

    async def _judge(
        self,
        lang: Language,
        program: str,
        tests: Sequence[TestCase],
        limits: Limits,
        comparison: str,
        progress: Progress | None,
        ready: _Ready | None,
    ) -> Judgement:
        max_score = float(sum(t.points for t in tests))
        first = ready.sandbox if ready is not None else None
        uid = ready.uid if ready is not None else self.new_uid()
        # Each test's sandbox is set up while the step before it (the compile,
        # the previous test) runs, so a test waits only for its own program.
        upcoming: Sandbox | None = None
        boxed = (
            _emptied(ready.box)
            if ready is not None
            else submission_box(self.config.work_root, lang.source_name, program)
        )
        with boxed as box:
            try:
                if os.geteuid() == 0 and ready is None:
                    await asyncio.to_thread(_own_box, box, uid)
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
                        await progress(len(tests), len(tests))
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
                    await asyncio.to_thread(_drop_source, box, lang.source_name)
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
                        await progress(index + 1, len(tests))
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
            compiling=True,
        )

    def _compile(
        self, lang: Language, box: str, uid: int, sandbox: Sandbox | None = None
    ) -> tuple[bool, str]:
        if lang.compile_argv is None:
            return True, ""
        limits = self.config.compile_limits
        with sandbox or self._compile_sandbox(lang, box, uid) as prepared:
            run = prepared.run()
        output = clean_text(run.stderr + run.stdout, limits.output_kb * 1024)
        if run.timed_out or run.cpu_ms >= limits.cpu_time_s * 1000:
            return False, output + "\n[compilation exceeded its time limit]"
        if run.output_exceeded:
            return False, output + "\n[compiler output exceeded its limit]"
        if run.exit_code != 0:
            if run.signal is not None:
                output += f"\n[compiler killed by signal {run.signal}]"
            return False, output
        return True, output

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
        effective = _test_limits(lang, limits)
        return Sandbox(
            lang.run_argv(limits.memory_mb),
            box=box,
            limits=effective,
            limit_address_space=lang.limit_address_space,
            address_space_extra_mb=lang.address_space_extra_mb,
            uid=uid,
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
        effective = _test_limits(lang, limits)
        with sandbox or self.test_sandbox(lang, box, uid, limits) as prepared:
            run = prepared.run(test.stdin.encode("utf-8"))
        verdict = classify(run, effective, lang, test, comparison)
        keep = self.config.keep_output_bytes
        return TestResult(
            name=test.name,
            hidden=test.hidden,
            verdict=verdict,
            time_ms=_reported_time_ms(run, effective),
            wall_ms=run.wall_ms,
            memory_kb=run.memory_kb,
            exit_code=run.exit_code,
            signal=run.signal,
            stdout=clean_text(run.stdout, keep),
            stderr=clean_text(run.stderr, keep),
            points=test.points if verdict == "accepted" else 0.0,
            max_points=test.points,
        )


def _test_limits(lang: Language, limits: Limits) -> Limits:
    """A question's limits as they apply to ``lang`` (slower runtimes get more time)."""
    return msgspec.structs.replace(
        limits,
        cpu_time_s=limits.cpu_time_s * lang.time_multiplier,
        wall_time_s=limits.wall_time_s * lang.time_multiplier,
        processes=limits.processes + lang.extra_processes,
    )


def _reported_time_ms(run: Execution, limits: Limits) -> int:
    """The time a student is shown for one test run."""
    if run.timed_out:
        # Killed at the wall limit, never reaped by the reaper: its CPU time is
        # unknown, and the wall time is the honest figure.
        return run.wall_ms
    if run.signal == signal.SIGXCPU:
        # The kernel's verdict is that the CPU limit was reached; on a busy
        # virtual machine rusage can read well under it, which would show a
        # "time limit" below the limit.
        return max(run.cpu_ms, int(limits.cpu_time_s * 1000))
    return run.cpu_ms
