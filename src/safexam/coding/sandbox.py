"""The embedded runner: every compile and every test in a fresh bubblewrap sandbox.

Isolation (bubblewrap): new user, PID, network, IPC, UTS and cgroup
namespaces; a read-only root of our own (see :class:`_Root`) holding only the
system directories, read-only, and copies of a handful of /etc files (never
/etc/shadow); a fresh /proc and minimal /dev; a size-capped tmpfs /tmp as the
only writable place during tests; a cleared environment; ``--die-with-parent``
and ``--new-session``.

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
from typing import Literal

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
    "describe_setup",
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


# Where the launcher binary sits in the sandbox's root to serve as its PID 1.
REAPER = "/.safexam-reaper"
# What the toolchains read from /etc, copied into the sandbox's root: the
# loader's cache, the linker's configuration, the alternatives' links (javac,
# cc), the time zone, and the JDKs' configuration (their conf/ links into it).
_ETC_COPIED = (
    "/etc/ld.so.cache",
    "/etc/ld.so.conf",
    "/etc/ld.so.conf.d",
    "/etc/alternatives",
    "/etc/localtime",
)
_SYSTEM_TOPS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
_DEVICES = ("null", "zero", "full", "random", "urandom")
_DEV_LINKS = (
    ("fd", "/proc/self/fd"),
    ("stdin", "/proc/self/fd/0"),
    ("stdout", "/proc/self/fd/1"),
    ("stderr", "/proc/self/fd/2"),
)
# How often a sandbox's creation looks whether the copied /etc files changed
# (a package installed under a running worker): a few stat calls, rarely.
_ROOT_CHECK_S = 2.0


class _Root(msgspec.Struct, frozen=True):
    """The sandbox's root directory, made once per worker process.

    bwrap's own root is an empty tmpfs on which every file the sandbox needs
    is a mount of its own, and each bind costs bwrap a read of the whole mount
    table (about 0.1 ms): a dozen of them were a fifth of a sandbox's set-up.
    Here the root is one read-only bind of a directory of ours that already
    holds the mount points, the merged-/usr links, copies of the /etc files,
    the /dev links and the reaper; only /usr, /proc, /dev's devices, /tmp and
    the box are mounted on it. The directory is root's (or the worker's) and
    never writable by a sandbox's uid; nobody else can reach it (its parent is
    the worker's private 0711 directory).
    """

    path: str
    # bwrap arguments for the system directories mounted on the root.
    binds: tuple[str, ...]
    # What the copies were made from, to notice a change: (path, inode, mtime, size).
    made_from: tuple[tuple[str, int, int, int], ...]
    # The devices: our own nodes as one mount on /dev (empty when this worker
    # cannot make them), or the host's bound one by one onto the root's /dev.
    own_devices: tuple[str, ...] = ()
    host_devices: tuple[str, ...] = ()

    def devices(self, dropped_uid: bool) -> tuple[str, ...]:
        """Our own nodes only for a sandbox under a throw-away uid.

        That /dev is a writable mount (bwrap binds devices no other way) of a
        directory that is host root's: a sandbox running as host root itself
        (a root worker given no uid) could chmod and then fill it, so such a
        sandbox gets the host's devices on the read-only root instead.
        """
        return self.own_devices if dropped_uid and self.own_devices else self.host_devices


def _etc_sources() -> list[str]:
    return [p for p in (*_ETC_COPIED, *sorted(glob.glob("/etc/java-*"))) if os.path.lexists(p)]


def _signature(paths: Sequence[str]) -> tuple[tuple[str, int, int, int], ...]:
    rows = []
    for path in paths:
        try:
            info = os.stat(path, follow_symlinks=False)
        except OSError:
            rows.append((path, 0, 0, -1))
        else:
            rows.append((path, info.st_ino, info.st_mtime_ns, info.st_size))
    return tuple(rows)


def _copy_into(source: str, dest: str) -> None:
    try:
        if os.path.islink(source) and os.path.realpath(source).startswith("/usr/"):
            # Resolves the same inside, where /usr is bound (/etc/localtime).
            os.symlink(os.readlink(source), dest)
        elif os.path.isdir(source):
            shutil.copytree(source, dest, symlinks=True)
        else:
            # A link to anywhere else would dangle inside: copy what it names.
            shutil.copy2(source, dest)
    except OSError:
        # A file this worker may not read was not the sandbox's to read either.
        log.warning("sandbox.root_copy_failed", path=source, exc_info=True)


def _mkdir(path: str) -> None:
    os.mkdir(path)
    # Not the worker's umask (027 on a hardened host): every sandbox uid must traverse it.
    os.chmod(path, 0o755)  # noqa: S103


def _device_nodes(directory: str) -> bool:
    """Make the devices as nodes in ``directory``; False where this process cannot.

    Needs CAP_MKNOD (a root worker, which is also the one that runs each
    sandbox under a uid of its own) and a filesystem that honours devices.
    """
    if os.geteuid() != 0 or os.statvfs(directory).f_flag & os.ST_NODEV:
        return False
    try:
        for name in _DEVICES:
            node = os.path.join(directory, name)
            os.mknod(node, stat.S_IFCHR | 0o666, os.stat(f"/dev/{name}").st_rdev)
            os.chmod(node, 0o666)  # noqa: S103 - as on the host: /dev/null is everybody's
    except OSError:
        log.info("sandbox.device_nodes_unavailable", exc_info=True)
        return False
    return True


def _build_root(parent: str, reaper: str | None, *, device_nodes: bool = True) -> _Root:
    sources = _etc_sources()
    made_from = _signature(sources)
    # mkdtemp: 0700 while it is filled, so no sandbox can see it half made.
    path = tempfile.mkdtemp(prefix="root-", dir=parent)
    binds: list[str] = []
    for top in _SYSTEM_TOPS:
        inside = os.path.join(path, top.lstrip("/"))
        if os.path.islink(top):
            os.symlink(os.readlink(top), inside)
        elif os.path.isdir(top):
            _mkdir(inside)
            binds += ["--ro-bind", top, top]
    for name in ("etc", "proc", "tmp", BOX.lstrip("/")):
        _mkdir(os.path.join(path, name))
    for source in sources:
        _copy_into(source, os.path.join(path, "etc", os.path.basename(source)))
    dev = os.path.join(path, "dev")
    _mkdir(dev)
    for name, target in _DEV_LINKS:
        os.symlink(target, os.path.join(dev, name))
    host_devices: list[str] = []
    for name in _DEVICES:
        # Mount points on the read-only root for the host's devices.
        open(os.path.join(dev, name), "xb").close()
        host_devices += ["--dev-bind", f"/dev/{name}", f"/dev/{name}"]
    # Beside the root, not in it: the sandbox sees it only as its /dev.
    nodes = f"{path}.dev"
    _mkdir(nodes)
    own_devices: list[str] = []
    if device_nodes and _device_nodes(nodes):
        for name, target in _DEV_LINKS:
            os.symlink(target, os.path.join(nodes, name))
        # Its own mount, since the root's is nodev; bwrap cannot bind it
        # read-only and keep the devices, so the directory itself is: host
        # root's, mode 0555, and used only by sandboxes of another uid.
        os.chmod(nodes, 0o555)  # noqa: S103
        own_devices = ["--dev-bind", nodes, "/dev"]
    else:
        os.rmdir(nodes)
    if reaper is not None:
        inside = os.path.join(path, REAPER.lstrip("/"))
        try:
            os.link(reaper, inside)
        except OSError:
            shutil.copy2(reaper, inside)
    os.chmod(path, 0o755)  # noqa: S103 - the sandbox's /: read-only to everyone inside
    return _Root(
        path=path,
        binds=tuple(binds),
        made_from=made_from,
        own_devices=tuple(own_devices),
        host_devices=tuple(host_devices),
    )


_root_lock = threading.Lock()
# Per process (a forked one makes its own in its own private directory).
_roots: dict[int, list[_Root]] = {}
_root_checked: dict[int, float] = {}


def _sandbox_root() -> _Root:
    """The current root skeleton, remade when the /etc files it copied have changed.

    A change is noticed by each copied path's inode, mtime and size: a file
    replaced or a directory's entries changed (a package installed, an
    alternative switched). An edit inside a copied directory's file (a JDK
    security policy, say) reaches sandboxes after the worker restarts.
    Older skeletons stay until the worker exits: a sandbox that bound one
    sees through to it, so removing it would empty a running sandbox's /etc.
    """
    pid = os.getpid()
    with _root_lock:
        roots = _roots.setdefault(pid, [])
        now = time.monotonic()
        if roots and now - _root_checked.get(pid, 0.0) < _ROOT_CHECK_S:
            return roots[-1]
        _root_checked[pid] = now
        if roots and _signature(_etc_sources()) == roots[-1].made_from:
            return roots[-1]
        root = _build_root(_private_dir(), compiled_launcher())
        if roots:
            log.info("sandbox.root_remade", path=root.path)
        roots.append(root)
        return root


def _bwrap_argv(
    bwrap: str,
    argv: Sequence[str],
    *,
    box: str,
    box_writable: bool,
    chdir: str,
    tmp_bytes: int,
    info_fd: int,
    root: _Root | None = None,
    dropped_uid: bool = False,
) -> list[str]:
    root = root or _sandbox_root()
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
        # First: everything else is mounted on it.
        "--ro-bind",
        root.path,
        "/",
        *root.binds,
        *root.devices(dropped_uid),
        "--proc",
        "/proc",
        "--size",
        str(max(tmp_bytes, _TMP_SIZE_MIN)),
        "--tmpfs",
        SANDBOX_TMP,
        "--bind" if box_writable else "--ro-bind",
        box,
        BOX,
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
# supplementary groups, exec bwrap. The same binary, linked into the
# sandbox's read-only root, is its PID 1 in place of GNU time (see
# ``_reaper_argv``). Built once per worker process from this source, into a
# fresh directory only we can write, so nobody else can replace it.
_LAUNCHER_C = r"""
/* safexam-launcher UID|-1 RESOURCE:SOFT:HARD ... -- PROGRAM ARGS...
   safexam-launcher reap STATS_FD GO_FD|-1 -- PROGRAM ARGS...

   Built with SAFEXAM_NOLIBC (x86-64 and arm64) it uses no C library at all:
   a statically linked glibc spends about 0.4 ms of every exec starting
   itself up, and this binary is exec'd twice per sandbox. Otherwise the
   same code runs on the C library's syscall(). */
#ifdef SAFEXAM_NOLIBC
#if defined(__x86_64__)
enum { SYS_read = 0, SYS_write = 1, SYS_close = 3, SYS_clone = 56, SYS_execve = 59,
       SYS_wait4 = 61, SYS_getuid = 102, SYS_setgroups = 116, SYS_setresuid = 117,
       SYS_setresgid = 119, SYS_geteuid = 107, SYS_exit_group = 231, SYS_prlimit64 = 302 };
static long raw(long n, long a, long b, long c, long d) {
  register long r10 __asm__("r10") = d;
  long ret;
  __asm__ volatile("syscall" : "=a"(ret) : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10)
                   : "rcx", "r11", "memory");
  return ret;
}
__asm__(".text\n.global _start\n_start:\n xor %rbp, %rbp\n mov %rsp, %rdi\n"
        " and $-16, %rsp\n call start\n hlt\n");
#elif defined(__aarch64__)
enum { SYS_read = 63, SYS_write = 64, SYS_close = 57, SYS_clone = 220, SYS_execve = 221,
       SYS_wait4 = 260, SYS_getuid = 174, SYS_setgroups = 159, SYS_setresuid = 147,
       SYS_setresgid = 149, SYS_geteuid = 175, SYS_exit_group = 94, SYS_prlimit64 = 261 };
static long raw(long n, long a, long b, long c, long d) {
  register long x8 __asm__("x8") = n, x0 __asm__("x0") = a, x1 __asm__("x1") = b,
                x2 __asm__("x2") = c, x3 __asm__("x3") = d;
  __asm__ volatile("svc 0" : "+r"(x0) : "r"(x8), "r"(x1), "r"(x2), "r"(x3) : "memory");
  return x0;
}
__asm__(".text\n.global _start\n_start:\n mov x0, sp\n bl start\n");
#else
#error "no raw system calls for this architecture"
#endif
#define EINTR 4
#define ENOENT 2
#define SIGCHLD 17
static long do_fork(void) { return raw(SYS_clone, SIGCHLD, 0, 0, 0); }
#else
#define _GNU_SOURCE
#include <errno.h>
#include <sys/syscall.h>
#include <unistd.h>
static long raw(long n, long a, long b, long c, long d) {
  long ret = syscall(n, a, b, c, d);
  return ret < 0 ? -errno : ret;
}
static long do_fork(void) {
  long pid = fork();
  return pid < 0 ? -errno : pid;
}
#endif

/* The kernel's own layouts (those of wait4 and prlimit64). */
struct k_rusage { long utime[2], stime[2], maxrss, rest[13]; };
struct k_rlimit { unsigned long long cur, max; };

static unsigned long len(const char *s) { unsigned long n = 0; while (s[n]) n++; return n; }
static int same(const char *a, const char *b) {
  while (*a && *a == *b) a++, b++;
  return *a == *b;
}
static void say(int fd, const char *s) { raw(SYS_write, fd, (long)s, (long)len(s), 0); }
static char *decimal(char *end, unsigned long long v) {
  *--end = 0;
  do *--end = (char)('0' + v % 10); while (v /= 10);
  return end;
}
static int fail(const char *what, long err) {
  char buf[24];
  say(2, "safexam-launcher: ");
  say(2, what);
  if (err) { say(2, ": errno "); say(2, decimal(buf + sizeof buf, (unsigned long long)-err)); }
  say(2, "\n");
  return 127;
}
/* A decimal number ending at a NUL or at `stop`; -1 when it is not one. */
static int number(const char **text, char stop, unsigned long long *out) {
  const char *p = *text;
  unsigned long long v = 0;
  if (*p < '0' || *p > '9') return -1;
  for (; *p >= '0' && *p <= '9'; p++) {
    if (v > (~0ULL - 9) / 10) return -1;
    v = v * 10 + (unsigned long long)(*p - '0');
  }
  if (*p != stop) return -1;
  *text = p + (stop ? 1 : 0);
  *out = v;
  return 0;
}

/* execvp without a C library: a name without a slash is looked up on PATH
   (the sandbox sets it), else on the system directories. */
static long run_program(char **argv, char **envp) {
  const char *path = "/usr/local/bin:/usr/bin:/bin", *name = argv[0];
  char full[4096];
  long err = -ENOENT;
  for (const char *c = name; *c; c++)
    if (*c == '/') return raw(SYS_execve, (long)name, (long)argv, (long)envp, 0);
  for (char **e = envp; *e; e++)
    if ((*e)[0] == 'P' && (*e)[1] == 'A' && (*e)[2] == 'T' && (*e)[3] == 'H' && (*e)[4] == '=')
      path = *e + 5;
  while (*path) {
    unsigned long n = 0, k = len(name);
    while (path[n] && path[n] != ':') n++;
    if (n && n + 1 + k < sizeof full) {
      for (unsigned long i = 0; i < n; i++) full[i] = path[i];
      full[n] = '/';
      for (unsigned long i = 0; i <= k; i++) full[n + 1 + i] = name[i];
      long got = raw(SYS_execve, (long)full, (long)argv, (long)envp, 0);
      if (got != -ENOENT) err = got;
    }
    path += n + (path[n] == ':');
  }
  return err;
}

/* PID 1 of the sandbox: wait for the go byte on GO_FD (-1: start at once),
   run the program, reap everything, report the program's peak RSS on
   STATS_FD once it is dead, exit with its status (128 + N for a signal).
   End of file on GO_FD means the run was called off: exit 125 without
   running anything. */
static int reap(int argc, char **argv, char **envp) {
  unsigned long long stats, go_fd = 0;
  const char *p;
  char go, buf[32];
  int status = 0, has_go;
  long got, child;
  struct k_rusage usage;
  if (argc < 6 || !same(argv[4], "--")) return fail("usage", 0);
  p = argv[2];
  if (number(&p, 0, &stats)) return fail("bad fd", 0);
  has_go = !same(argv[3], "-1");
  if (has_go) {
    p = argv[3];
    if (number(&p, 0, &go_fd)) return fail("bad fd", 0);
    do got = raw(SYS_read, (long)go_fd, (long)&go, 1, 0); while (got == -EINTR);
    if (got != 1) return 125;
    raw(SYS_close, (long)go_fd, 0, 0, 0);
  }
  child = do_fork();
  if (child < 0) return fail("fork", child);
  if (child == 0) {
    long err = run_program(argv + 5, envp);
    say(2, "cannot run ");
    say(2, argv[5]);
    say(2, err == -ENOENT ? ": no such file or directory\n" : ": not executable\n");
    raw(SYS_exit_group, err == -ENOENT ? 127 : 126, 0, 0, 0);
  }
  for (;;) {
    long pid = raw(SYS_wait4, -1, (long)&status, 0, (long)&usage);
    if (pid == child) break;
    if (pid < 0 && pid != -EINTR) return fail("wait4", pid);
  }
  say((int)stats, "\nsafexam-rusage ");
  say((int)stats, decimal(buf + sizeof buf, (unsigned long long)usage.maxrss));
  say((int)stats, "\n");
  if ((status & 0x7f) != 0 && (status & 0x7f) != 0x7f) return 128 + (status & 0x7f);
  return (status >> 8) & 0xff;
}

static int launch(int argc, char **argv, char **envp) {
  int i;
  unsigned long long uid = 0;
  for (i = 2; i < argc && !same(argv[i], "--"); i++) {
    const char *p = argv[i];
    unsigned long long which;
    struct k_rlimit limit;
    if (number(&p, ':', &which) || number(&p, ':', &limit.cur) || number(&p, 0, &limit.max))
      return fail("bad limit", 0);
    long err = raw(SYS_prlimit64, 0, (long)which, (long)&limit, 0);
    if (err) return fail("setrlimit", err);
  }
  if (i + 1 >= argc) return fail("no program", 0);
  if (!same(argv[1], "-1")) {
    const char *p = argv[1];
    long err;
    if (number(&p, 0, &uid) || uid > 0xfffffffeULL) return fail("bad uid", 0);
    if ((err = raw(SYS_setgroups, 0, 0, 0, 0))) return fail("setgroups", err);
    if ((err = raw(SYS_setresgid, (long)uid, (long)uid, (long)uid, 0)))
      return fail("setresgid", err);
    if ((err = raw(SYS_setresuid, (long)uid, (long)uid, (long)uid, 0)))
      return fail("setresuid", err);
    if ((unsigned long long)raw(SYS_getuid, 0, 0, 0, 0) != uid ||
        (unsigned long long)raw(SYS_geteuid, 0, 0, 0, 0) != uid)
      return fail("uid drop", 0);
  }
  return fail("execve", raw(SYS_execve, (long)argv[i + 1], (long)(argv + i + 1), (long)envp, 0));
}

static int launcher_main(int argc, char **argv, char **envp) {
  if (argc < 4) return fail("usage", 0);
  if (same(argv[1], "reap")) return reap(argc, argv, envp);
  return launch(argc, argv, envp);
}

#ifdef SAFEXAM_NOLIBC
__attribute__((used, noreturn)) void start(long *sp) {
  int argc = (int)sp[0];
  char **argv = (char **)(sp + 1);
  raw(SYS_exit_group, launcher_main(argc, argv, argv + argc + 1), 0, 0, 0);
  for (;;) {}
}
#else
extern char **environ;
int main(int argc, char **argv) { return launcher_main(argc, argv, environ); }
#endif
"""

# Tried in order: without a C library (x86-64 and arm64 only), then linked
# statically, then as the C compiler links by default.
_LAUNCHER_BUILDS: tuple[list[str], ...] = (
    [
        "-DSAFEXAM_NOLIBC",
        "-nostdlib",
        "-static",
        "-no-pie",
        "-ffreestanding",
        "-fno-builtin",
        "-fno-stack-protector",
        "-fno-asynchronous-unwind-tables",
    ],
    ["-static"],
    [],
)

_launcher_lock = threading.Lock()
# Per process: the launcher's path (None without a C compiler), and whether it
# was built without a C library.
_launcher_built: dict[int, tuple[str | None, bool]] = {}


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


_private_lock = threading.Lock()
_private: dict[int, str] = {}


def _private_dir() -> str:
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
            directory = tempfile.mkdtemp(prefix=f"{_LAUNCHER_PREFIX}{os.getpid()}-")
            atexit.register(shutil.rmtree, directory, True)
            os.chmod(directory, 0o711)  # noqa: S103 - traverse only, no listing
            _private[os.getpid()] = directory
        return directory


def compiled_launcher() -> str | None:
    """The static launcher, built on first use; None without a C compiler."""
    return _built_launcher()[0]


def _built_launcher() -> tuple[str | None, bool]:
    with _launcher_lock:
        if os.getpid() in _launcher_built:
            return _launcher_built[os.getpid()]
        path: str | None = None
        without_libc = False
        compiler = shutil.which("cc", path=SYSTEM_PATH) or shutil.which("gcc", path=SYSTEM_PATH)
        if compiler is not None and sys.platform == "linux":
            directory = _private_dir()
            source = os.path.join(directory, "launcher.c")
            binary = os.path.join(directory, "launcher")
            with open(source, "w", encoding="ascii") as fh:
                fh.write(_LAUNCHER_C)
            for flags in _LAUNCHER_BUILDS:
                built = subprocess.run(  # noqa: S603 - our compiler, our source
                    [compiler, "-O2", *flags, "-o", binary, source],
                    stdin=subprocess.DEVNULL,
                    capture_output=True,
                    env={"PATH": SYSTEM_PATH},
                    timeout=60,
                    check=False,
                )
                if built.returncode == 0:
                    without_libc = "-DSAFEXAM_NOLIBC" in flags
                    # The sandbox's uid must reach it too (it is also the reaper inside).
                    os.chmod(binary, 0o755)  # noqa: S103 - read-only for others
                    path = binary
                    break
            if path is None:
                log.warning("sandbox.launcher_build_failed", stderr=built.stderr[-2000:])
        _launcher_built[os.getpid()] = (path, without_libc)
        return path, without_libc


def describe_setup() -> list[tuple[str, Literal["ok", "warn", "fail"], str]]:
    """How this process sets sandboxes up, as ``(name, status, detail)`` for ``safexam doctor``."""
    built, without_libc = _built_launcher()
    launcher: tuple[Literal["ok", "warn", "fail"], str]
    if built is None:
        launcher = (
            "warn",
            "no C compiler: prlimit and setpriv in front of bwrap, GNU time inside "
            "(slower, and no sandbox set up ahead)",
        )
    elif without_libc:
        launcher = ("ok", "built without a C library")
    else:
        launcher = ("ok", "built with the C library: about 0.4 ms more per sandbox")
    root = _sandbox_root()
    devices = (
        "device nodes of its own for sandboxes under a throw-away uid"
        if root.own_devices
        else "the host's devices bound one by one"
    )
    return [
        ("sandbox launcher", *launcher),
        ("sandbox root", "ok", f"one read-only root with {devices}"),
    ]


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
        go_read: int | None = None
        self._go: int | None = None
        if compiled_launcher() is not None:
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
            dropped_uid=drop,
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
            late = False
            while not exited or len(sel.get_map()) > 1:
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
