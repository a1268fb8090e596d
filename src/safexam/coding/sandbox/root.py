"""The sandbox's root: one read-only directory of ours, prepared once per worker process.

Also the bwrap command line that mounts it, and how ``safexam doctor``
describes this set-up.
"""

from __future__ import annotations

import glob
import os
import shutil
import stat
import tempfile
import threading
import time
from collections.abc import Sequence
from typing import Literal

import msgspec
import structlog

from safexam.coding.languages import BOX
from safexam.coding.sandbox.launcher import REAPER, compiled_launcher, private_dir

log = structlog.get_logger(__name__)

# The sandbox's private tmpfs (a path inside the sandbox, not the host's /tmp).
SANDBOX_TMP = "/tmp"  # noqa: S108
_TMP_SIZE_MIN = 1 << 20

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
        root = _build_root(private_dir(), compiled_launcher())
        if roots:
            log.info("sandbox.root_remade", path=root.path)
        roots.append(root)
        return root


def forget_roots() -> None:
    """Forget this process's roots (their directory is about to be removed)."""
    with _root_lock:
        _roots.pop(os.getpid(), None)
        _root_checked.pop(os.getpid(), None)


def bwrap_argv(
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
    seccomp_fd: int | None = None,
) -> list[str]:
    """bwrap's command line for one sandbox around ``box``, running ``argv``.

    ``seccomp_fd``: where bwrap reads the seccomp filter of :mod:`.seccomp`.
    """
    root = root or _sandbox_root()
    seccomp = ["--seccomp", str(seccomp_fd)] if seccomp_fd is not None else []
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
        *seccomp,
        "--",
        *argv,
    ]


def describe_setup() -> list[tuple[str, Literal["ok", "warn", "fail"], str]]:
    """How this process sets sandboxes up, as ``(name, status, detail)`` for ``safexam doctor``."""
    launcher: tuple[Literal["ok", "warn", "fail"], str]
    if compiled_launcher() is None:
        launcher = (
            "warn",
            "no C compiler: prlimit and setpriv in front of bwrap, GNU time inside "
            "(slower, and no sandbox set up ahead)",
        )
    else:
        launcher = ("ok", "compiled: limits, uid drop and PID 1 in one program")
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
