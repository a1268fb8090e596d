"""What runs in front of bwrap and as the sandbox's PID 1: our launcher, else stock tools.

The launcher (``launcher.c`` beside this module) is one static exec that does
what ``prlimit`` and ``setpriv`` do in two dynamically linked ones (about
2 ms less per sandbox): set the limits while still privileged, drop to the
sandbox uid with no supplementary groups, exec bwrap. The same binary, linked
into the sandbox's read-only root, is its PID 1 in place of GNU time (see
:func:`reaper_argv`). It is built once per worker process from the shipped
source, into a fresh directory only we can write, so nobody else can replace
it. Without a C compiler the stock tools take its place.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib.resources
import os
import resource
import shutil
import stat
import subprocess
import sys
import tempfile
import threading
from collections.abc import Sequence

import msgspec
import structlog

from safexam.coding.languages import SYSTEM_PATH

log = structlog.get_logger(__name__)

# Where the launcher binary sits in the sandbox's root to serve as its PID 1.
REAPER = "/.safexam-reaper"
# The package that ships launcher.c.
_SOURCE_PACKAGE = "safexam.coding.sandbox"
# Tried in order: linked statically (no loader to start on each of its two
# execs per sandbox), then as the C compiler links by default (a system
# without a static C library).
_BUILDS: tuple[list[str], ...] = (["-static"], [])
_PREFIX = "safexam-launcher-"
_STATS_MARK = "safexam-rusage"

_launcher_lock = threading.Lock()
# Per process: the launcher's path, None without a C compiler.
_launcher_built: dict[int, str | None] = {}
_private_lock = threading.Lock()
_private: dict[int, str] = {}


def launcher_source() -> bytes:
    """The launcher's C source, as shipped with the package."""
    return importlib.resources.files(_SOURCE_PACKAGE).joinpath("launcher.c").read_bytes()


def _remove_stale_launchers() -> None:
    """Remove launcher directories of our dead worker processes.

    A worker that does not exit normally (SIGKILL, ``os._exit``) skips atexit;
    its directory names its pid. Directories of live pids, of other owners, or
    that are not plain directories are left alone.
    """
    root = tempfile.gettempdir()
    with contextlib.suppress(OSError), os.scandir(root) as entries:
        for entry in entries:
            if not entry.name.startswith(_PREFIX):
                continue
            pid_text = entry.name[len(_PREFIX) :].split("-", 1)[0]
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


def private_dir() -> str:
    """This worker process's own directory: the launcher and the sandbox's root live there.

    Made by mkdtemp (a new name, owned by us, so no one can swap what is in
    it), then opened to traversal only, since the sandboxes' uids must reach
    the launcher and the root. Keyed by pid: a forked process makes its own
    rather than share one its parent removes at exit.
    """
    with _private_lock:
        directory = _private.get(os.getpid())
        if directory is None:
            _remove_stale_launchers()
            directory = tempfile.mkdtemp(prefix=f"{_PREFIX}{os.getpid()}-")
            atexit.register(shutil.rmtree, directory, True)
            os.chmod(directory, 0o711)  # noqa: S103 - traverse only, no listing
            _private[os.getpid()] = directory
        return directory


def remove_private_dir() -> str | None:
    """Remove this process's private directory (and the launcher in it); returns its path.

    What its ``atexit`` hook would do, for processes that never run it.
    """
    with _private_lock, _launcher_lock:
        directory = _private.pop(os.getpid(), None)
        _launcher_built.pop(os.getpid(), None)
    if directory is not None:
        shutil.rmtree(directory, ignore_errors=True)
    return directory


def compiled_launcher() -> str | None:
    """The launcher, built on first use in this process; None without a C compiler."""
    with _launcher_lock:
        if os.getpid() in _launcher_built:
            return _launcher_built[os.getpid()]
        path: str | None = None
        compiler = shutil.which("cc", path=SYSTEM_PATH) or shutil.which("gcc", path=SYSTEM_PATH)
        if compiler is not None and sys.platform == "linux":
            directory = private_dir()
            source = os.path.join(directory, "launcher.c")
            binary = os.path.join(directory, "launcher")
            # Copied first: the compiler reads it from a directory only we can write.
            with open(source, "wb") as fh:
                fh.write(launcher_source())
            for flags in _BUILDS:
                built = subprocess.run(  # noqa: S603 - our compiler, our source
                    [compiler, "-O2", *flags, "-o", binary, source],
                    stdin=subprocess.DEVNULL,
                    capture_output=True,
                    # Its temporary files go beside the source, where only we write,
                    # not to a shared /tmp the worker may not be able to write.
                    env={"PATH": SYSTEM_PATH, "TMPDIR": directory},
                    timeout=60,
                    check=False,
                )
                if built.returncode == 0:
                    # The sandbox's uid must reach it too (it is also the reaper inside).
                    os.chmod(binary, 0o755)  # noqa: S103 - read-only for others
                    path = binary
                    break
            if path is None:
                log.warning("sandbox.launcher_build_failed", stderr=built.stderr[-2000:])
        _launcher_built[os.getpid()] = path
        return path


class RLimits(msgspec.Struct, frozen=True):
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


def front_argv(
    limits: RLimits, uid: int | None, cgroup_procs: Sequence[str] = ()
) -> list[str] | None:
    """What runs in front of bwrap: set the limits, drop to ``uid``; None to do it in-process.

    ``cgroup_procs``: the control groups to join first (only our launcher can).

    The built launcher if there is one, else ``prlimit ... setpriv ...``: a
    few tiny execs cost less than forking the worker for a preexec function
    (which also disables vfork and is unsafe in a threaded worker).
    """
    built = compiled_launcher()
    if built is not None:
        table = (f"{res}:{soft}:{hard}" for _, res, soft, hard in limits.table())
        groups = (f"cg:{path}" for path in cgroup_procs)
        return [built, str(uid) if uid is not None else "-1", *groups, *table, "--"]
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


def reaper_argv(stats_fd: int, go_fd: int | None = None) -> list[str]:
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


def parse_peak_kb(stats: bytes) -> int | None:
    """The program's peak memory from what the reaper wrote on the stats pipe."""
    # The program inherits the stats fd and could write there too; the
    # reaper's own line comes last, after the program is dead.
    for line in reversed(stats.decode("ascii", errors="replace").splitlines()):
        parts = line.split()
        if len(parts) == 2 and parts[0] == _STATS_MARK and parts[1].isdigit():
            return int(parts[1])
    return None
