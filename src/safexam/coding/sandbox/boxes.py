"""Throw-away uids and box directories: where one submission's files live on the host.

Host-side file safety: the host writes only the source file, into a
directory it has just created, with O_EXCL|O_NOFOLLOW relative to a
directory fd. Test runs see that directory read-only, so no program can
leave a link in it; the compile step (which runs only the compiler) sees it
writable. The host never reads a file back and removes the directory with
``shutil.rmtree``, which on Linux walks by file descriptor and never follows
a symlink.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import tempfile
import time
from collections.abc import Collection, Iterator
from pathlib import Path

import structlog

log = structlog.get_logger(__name__)

# The throw-away uids bwrap runs as when we are root: far above any real user.
SANDBOX_UID_BASE = 0x70000000
SANDBOX_UID_SPAN = 1 << 24

#: No judging holds a box this long (limits are seconds); an older one was left
#: by a worker killed mid-judge, with a student's source and program in it.
STALE_BOX_SECONDS = 3600


def default_work_root() -> Path:
    return Path(tempfile.gettempdir()) / "safexam-sandbox"


def process_uid(pid: int, *, live_only: bool = False) -> int | None:
    """The real uid of process ``pid``; None when it is gone (or, with ``live_only``, a zombie)."""
    with contextlib.suppress(OSError), open(f"/proc/{pid}/status", "rb") as fh:
        for line in fh:
            # State comes before Uid in /proc/PID/status.
            if live_only and line.startswith(b"State:") and line.split()[1] in (b"Z", b"X"):
                return None
            if line.startswith(b"Uid:"):
                return int(line.split()[1])
    return None


def sandbox_processes(uids: Collection[int] | None = None) -> list[int]:
    """Pids of live host processes running as a sandbox uid (or one of ``uids``).

    Zombies are left out: they hold no memory, file or CPU, and one whose
    parent died waits for the host's init to reap it, which is not ours to do.
    """
    found: list[int] = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            uid = process_uid(int(entry), live_only=True)
            in_range = uid is not None and 0 <= uid - SANDBOX_UID_BASE < SANDBOX_UID_SPAN
            if (uid in uids) if uids is not None else in_range:
                found.append(int(entry))
    return found


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
    with emptied(new_box(work_root)) as box:
        write_source(box, source_name, program)
        yield box


def new_box(work_root: str | None) -> str:
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


def write_source(box: str, source_name: str, program: str) -> None:
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


def own_box(box: str, uid: int) -> None:
    """Give the box to the compile's uid, so the compiler (running as it) may write there."""
    with _box_fd(box) as dir_fd:
        os.fchown(dir_fd, uid, uid)


def drop_source(box: str, source_name: str) -> None:
    """Remove the source once compiled, so the program cannot read the template back."""
    # By name under the box's fd: unlink never follows a link the compile left.
    with _box_fd(box) as dir_fd, contextlib.suppress(FileNotFoundError):
        os.unlink(source_name, dir_fd=dir_fd)


@contextlib.contextmanager
def emptied(box: str) -> Iterator[str]:
    """Use an existing box; remove it with everything in it afterwards."""
    try:
        yield box
    finally:
        shutil.rmtree(box, ignore_errors=True)
