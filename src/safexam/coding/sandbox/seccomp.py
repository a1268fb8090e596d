"""The sandbox's seccomp filter: system calls no submission needs, refused.

A deny-list, not an allow-list: the five runtimes (CPython, GCC's output,
the JVM, V8) use a wide and changing set of calls, and what is dangerous is
a short, known list: kernel attack surface (io_uring, eBPF, perf events,
keyrings, userfaultfd), looking into other processes (ptrace,
process_vm_*), changing how the kernel treats the process (personality),
and administration (mounts, modules, namespaces, clocks, reboot). Each is
answered EPERM, so a runtime that probes one goes on without it.

The filter is compiled to BPF by libseccomp (Debian ``libseccomp2``), the
library container runtimes and systemd build theirs with, called through
ctypes; bwrap installs it (``--seccomp FD``) as the last step before it
starts the sandbox's PID 1, so everything inside runs under it. Calls of
another architecture (32-bit ``int 0x80``, x32) kill the process, which is
libseccomp's default for a foreign architecture.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import threading

import structlog

__all__ = ["DENIED_SYSCALLS", "filter_fd", "seccomp_problem", "seccomp_program"]

log = structlog.get_logger(__name__)

DENIED_SYSCALLS: tuple[str, ...] = (
    # Kernel attack surface reachable without privileges.
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
    "bpf",
    "perf_event_open",
    "userfaultfd",
    "keyctl",
    "add_key",
    "request_key",
    # Other processes, and how the kernel treats this one.
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "pidfd_getfd",
    "kcmp",
    "personality",
    # Namespaces and mounts (bwrap has set them up already).
    "unshare",
    "setns",
    "mount",
    "umount2",
    "pivot_root",
    "chroot",
    "fsopen",
    "fsconfig",
    "fsmount",
    "fspick",
    "move_mount",
    "open_tree",
    "mount_setattr",
    "open_by_handle_at",
    "name_to_handle_at",
    # Administration.
    "kexec_load",
    "kexec_file_load",
    "init_module",
    "finit_module",
    "delete_module",
    "reboot",
    "swapon",
    "swapoff",
    "acct",
    "quotactl",
    "syslog",
    "settimeofday",
    "clock_settime",
    "clock_adjtime",
    "adjtimex",
    "sethostname",
    "setdomainname",
    "iopl",
    "ioperm",
    "lookup_dcookie",
    "fanotify_init",
    "uselib",
    "vhangup",
    "nfsservctl",
)

_SCMP_ACT_ALLOW = 0x7FFF0000


def _act_errno(code: int) -> int:
    return 0x00050000 | (code & 0xFFFF)


_lock = threading.Lock()
# Per process: the BPF program, or why there is none.
_built: dict[int, tuple[bytes | None, str]] = {}


def _load() -> ctypes.CDLL:
    name = ctypes.util.find_library("seccomp") or "libseccomp.so.2"
    lib = ctypes.CDLL(name, use_errno=True)
    lib.seccomp_init.argtypes = [ctypes.c_uint32]
    lib.seccomp_init.restype = ctypes.c_void_p
    lib.seccomp_release.argtypes = [ctypes.c_void_p]
    lib.seccomp_release.restype = None
    lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
    lib.seccomp_syscall_resolve_name.restype = ctypes.c_int
    lib.seccomp_export_bpf.argtypes = [ctypes.c_void_p, ctypes.c_int]
    lib.seccomp_export_bpf.restype = ctypes.c_int
    lib.seccomp_rule_add.restype = ctypes.c_int
    return lib


def _build() -> tuple[bytes | None, str]:
    try:
        lib = _load()
    except OSError as exc:
        return None, f"libseccomp is missing ({exc}): apt-get install libseccomp2"
    ctx = lib.seccomp_init(_SCMP_ACT_ALLOW)
    if not ctx:
        return None, "libseccomp could not start a filter"
    try:
        deny = _act_errno(errno.EPERM)
        for name in DENIED_SYSCALLS:
            number = lib.seccomp_syscall_resolve_name(name.encode())
            if number < 0:
                continue  # not a call of this architecture
            rc = lib.seccomp_rule_add(
                ctypes.c_void_p(ctx), ctypes.c_uint32(deny), ctypes.c_int(number), ctypes.c_uint(0)
            )
            if rc < 0:
                return None, f"libseccomp refused a rule for {name}: errno {-rc}"
        read_end, write_end = os.pipe()
        try:
            rc = lib.seccomp_export_bpf(ctypes.c_void_p(ctx), write_end)
            os.close(write_end)
            write_end = -1
            if rc < 0:
                return None, f"libseccomp could not export the filter: errno {-rc}"
            chunks = []
            while chunk := os.read(read_end, 65536):
                chunks.append(chunk)
            return b"".join(chunks), ""
        finally:
            os.close(read_end)
            if write_end >= 0:
                os.close(write_end)
    finally:
        lib.seccomp_release(ctx)


def _program() -> tuple[bytes | None, str]:
    with _lock:
        found = _built.get(os.getpid())
        if found is None:
            found = _build()
            _built[os.getpid()] = found
            if found[0] is None:
                log.warning("sandbox.seccomp_unavailable", reason=found[1])
        return found


def seccomp_program() -> bytes | None:
    """The filter as BPF for bwrap, built once per process; None without libseccomp."""
    return _program()[0]


def seccomp_problem() -> str:
    """Why sandboxes run without the filter here (empty when they have it)."""
    return _program()[1]


def filter_fd() -> int | None:
    """A fresh fd bwrap reads the filter from (one per sandbox: bwrap reads it to the end)."""
    program = seccomp_program()
    if program is None:
        return None
    # A program of a few hundred bytes fits a pipe's buffer: no thread needed to feed it.
    read_end, write_end = os.pipe2(os.O_CLOEXEC)
    try:
        os.write(write_end, program)
    finally:
        os.close(write_end)
    return read_end
