"""The sandbox's root (one read-only directory of ours) and the launcher.

The root replaces a dozen separate mounts with one: these tests prove a
program inside still sees exactly what it used to (the system directories,
the few /etc files, working devices, a writable capped /tmp) and can write
nowhere else, with device nodes of our own and with the host's devices bound
one by one; and that a change under /etc reaches new sandboxes. The launcher
is checked on the host, built both ways it can be (statically, and as the C
compiler links by default).
"""

from __future__ import annotations

import os
import resource
import shutil
import stat
import subprocess
import tempfile
import time
from pathlib import Path

import msgspec
import pytest

from safexam.coding.execution import Limits
from safexam.coding.sandbox import bwrap_path, compiled_launcher, execute, launcher_source
from safexam.coding.sandbox import root as sandbox_root
from tests.coding.sandbox_helpers import sandbox_uid

pytestmark = [
    pytest.mark.skipif(bwrap_path() is None, reason="bubblewrap is not installed"),
    pytest.mark.timeout(60),
]

PYTHON = "/usr/bin/python3"
LIMITS = Limits(cpu_time_s=2, wall_time_s=5, memory_mb=128, processes=16, file_size_kb=1024)

# What a program sees, reported as JSON from inside the sandbox.
_LOOK_AROUND = r"""
import json, os
seen = {"root": sorted(os.listdir("/")), "etc": sorted(os.listdir("/etc")),
        "dev": sorted(os.listdir("/dev")), "refused": {}, "devices": {}}
for path in ("/x", "/etc/x", "/dev/x", "/box/x", "/usr/x"):
    try:
        open(path, "w").close()
        seen["refused"][path] = "written"
    except OSError as exc:
        seen["refused"][path] = exc.errno
for path in ("/", "/etc", "/dev"):
    try:
        os.chmod(path, 0o777)
        seen["refused"]["chmod " + path] = "changed"
    except OSError as exc:
        seen["refused"]["chmod " + path] = exc.errno
with open("/tmp/ok", "w") as fh:
    fh.write("tmp is writable")
seen["tmp"] = open("/tmp/ok").read()
with open("/dev/zero", "rb") as fh:
    seen["devices"]["zero"] = fh.read(4).hex()
with open("/dev/null", "wb") as fh:
    seen["devices"]["null"] = fh.write(b"gone")
with open("/dev/urandom", "rb") as fh:
    seen["devices"]["urandom"] = len(fh.read(16))
with open("/dev/random", "rb") as fh:
    seen["devices"]["random"] = len(fh.read(16))
try:
    with open("/dev/full", "wb", buffering=0) as fh:
        fh.write(b"x")
    seen["devices"]["full"] = "written"
except OSError as exc:
    seen["devices"]["full"] = exc.errno
seen["stdout_link"] = os.readlink("/dev/stdout")
seen["uid"] = os.getuid()
print(json.dumps(seen))
"""

EXPECTED_DEV = ["fd", "full", "null", "random", "stderr", "stdin", "stdout", "urandom", "zero"]


@pytest.fixture(autouse=True)
def _clean_state() -> None:
    """These tests touch neither PostgreSQL nor Redis (overrides the database cleanup)."""


def _mounts(args: tuple[str, ...]) -> list[tuple[str, ...]]:
    return [tuple(args[i : i + 3]) for i in range(0, len(args), 3)]


def _check_view(seen: dict[str, object]) -> None:
    tops = {t.lstrip("/") for t in ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")}
    expected_root = {"box", "dev", "etc", "proc", "tmp"} | {
        t for t in tops if os.path.lexists(f"/{t}")
    }
    if compiled_launcher() is not None:
        expected_root.add(".safexam-reaper")
    assert set(seen["root"]) == expected_root  # type: ignore[arg-type]
    # Only what the toolchains read: never shadow, passwd or the host's secrets.
    allowed_etc = {os.path.basename(p) for p in sandbox_root._ETC_COPIED} | {
        os.path.basename(p) for p in Path("/etc").glob("java-*")
    }
    assert set(seen["etc"]) <= allowed_etc  # type: ignore[arg-type]
    assert "ld.so.cache" in seen["etc"]  # type: ignore[operator]
    assert "shadow" not in seen["etc"]  # type: ignore[operator]
    assert seen["dev"] == EXPECTED_DEV
    refused = seen["refused"]
    assert isinstance(refused, dict)
    # Read-only mounts (EROFS) or directories the sandbox's uid does not own
    # (EACCES, EPERM): nothing outside /tmp takes a write.
    assert all(v in (1, 13, 30) for v in refused.values()), refused
    assert seen["tmp"] == "tmp is writable"
    assert seen["devices"] == {
        "zero": "00000000",
        "null": 4,
        "urandom": 16,
        "random": 16,
        "full": 28,
    }
    assert seen["stdout_link"] == "/proc/self/fd/1"
    assert seen["uid"] == 65534


def test_a_program_sees_the_root_it_should_and_can_write_only_tmp(box: str) -> None:
    run = execute(
        [PYTHON, "-I", "-S", "-c", _LOOK_AROUND], box=box, limits=LIMITS, uid=sandbox_uid()
    )
    assert run.exit_code == 0, run.stderr.decode()
    _check_view(msgspec.json.decode(run.stdout))


def test_without_device_nodes_the_hosts_devices_are_bound_one_by_one(box: str) -> None:
    """A worker that cannot make device nodes (not root, or a nodev /tmp) binds the host's."""
    parent = tempfile.mkdtemp(prefix="root-test-")
    os.chmod(parent, 0o711)
    try:
        root = sandbox_root._build_root(parent, compiled_launcher(), device_nodes=False)
        assert not os.path.exists(f"{root.path}.dev")
        assert root.own_devices == ()
        assert root.devices(dropped_uid=True) == root.host_devices
        assert ("--dev-bind", "/dev/null", "/dev/null") in _mounts(root.host_devices)
        sink = os.open(os.devnull, os.O_WRONLY)
        try:
            argv = sandbox_root.bwrap_argv(
                bwrap_path() or "bwrap",
                [PYTHON, "-I", "-S", "-c", _LOOK_AROUND],
                box=box,
                box_writable=False,
                chdir="/tmp",
                tmp_bytes=1 << 20,
                info_fd=sink,
                root=root,
            )
            done = subprocess.run(
                argv, capture_output=True, pass_fds=(sink,), timeout=30, check=False
            )
        finally:
            os.close(sink)
        assert done.returncode == 0, done.stderr.decode()
        # Run as the caller (no uid drop here): still nothing but /tmp is writable.
        _check_view(msgspec.json.decode(done.stdout))
    finally:
        shutil.rmtree(parent, ignore_errors=True)


@pytest.mark.skipif(os.geteuid() != 0, reason="device nodes need a root worker")
def test_the_root_on_the_host_is_ours_and_read_only_to_everyone_else() -> None:
    root = sandbox_root._sandbox_root()
    info = os.stat(root.path)
    assert info.st_uid == os.geteuid()
    assert stat.S_IMODE(info.st_mode) == 0o755
    parent = os.stat(os.path.dirname(root.path))
    assert stat.S_IMODE(parent.st_mode) == 0o711  # traversable, not listable
    nodes = f"{root.path}.dev"
    assert stat.S_IMODE(os.stat(nodes).st_mode) == 0o555
    assert root.own_devices == ("--dev-bind", nodes, "/dev")
    assert root.devices(dropped_uid=True) == root.own_devices
    # A sandbox running as host root (no uid given) could chmod that directory.
    assert root.devices(dropped_uid=False) == root.host_devices
    for name in ("null", "zero", "full", "random", "urandom"):
        node = os.stat(os.path.join(nodes, name), follow_symlinks=False)
        assert stat.S_ISCHR(node.st_mode)
        assert node.st_rdev == os.stat(f"/dev/{name}").st_rdev
    # Nothing in it is a link the host would follow to somewhere else by surprise:
    # the only links are the merged-/usr ones, /etc's own and /dev's to /proc/self.
    for dirpath, dirnames, filenames in os.walk(root.path):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            if os.path.islink(path):
                rel = os.path.relpath(path, root.path)
                assert rel.split(os.sep)[0] in (
                    "bin",
                    "sbin",
                    "lib",
                    "lib32",
                    "lib64",
                    "libx32",
                    "etc",
                    "dev",
                ), rel


@pytest.mark.skipif(os.geteuid() != 0, reason="only a root worker has the choice")
def test_a_sandbox_left_as_host_root_gets_the_read_only_dev(box: str) -> None:
    """Without a throw-away uid the sandbox's processes are host root's: not on our nodes."""
    run = execute([PYTHON, "-I", "-S", "-c", _LOOK_AROUND], box=box, limits=LIMITS, uid=None)
    assert run.exit_code == 0, run.stderr.decode()
    seen = msgspec.json.decode(run.stdout)
    _check_view(seen)
    assert seen["refused"]["chmod /dev"] == 30  # EROFS: the read-only root's /dev
    nodes = f"{sandbox_root._sandbox_root().path}.dev"
    assert stat.S_IMODE(os.stat(nodes).st_mode) == 0o555
    assert sorted(os.listdir(nodes)) == EXPECTED_DEV


def test_a_change_under_etc_reaches_new_sandboxes(
    monkeypatch: pytest.MonkeyPatch, box: str, tmp_path: Path
) -> None:
    extra = tmp_path / "safexam-test.conf"
    extra.write_text("first\n")
    os.chmod(extra, 0o644)
    os.chmod(tmp_path, 0o755)
    monkeypatch.setattr(sandbox_root, "_ETC_COPIED", (*sandbox_root._ETC_COPIED, str(extra)))
    monkeypatch.setattr(sandbox_root, "_ROOT_CHECK_S", 0.0)
    first = sandbox_root._sandbox_root()
    read = [PYTHON, "-I", "-S", "-c", "print(open('/etc/safexam-test.conf').read(), end='')"]
    assert execute(read, box=box, limits=LIMITS, uid=sandbox_uid()).stdout == b"first\n"
    assert sandbox_root._sandbox_root() is first  # unchanged: not made again
    extra.write_text("second, longer\n")
    os.utime(extra, ns=(time.time_ns(), time.time_ns() + 1_000_000_000))
    assert execute(read, box=box, limits=LIMITS, uid=sandbox_uid()).stdout == b"second, longer\n"
    second = sandbox_root._sandbox_root()
    assert second.path != first.path
    # The old one stays: a sandbox started on it may still be running.
    assert os.path.isdir(first.path)


def test_an_etc_link_to_outside_usr_is_copied_as_what_it_names(
    monkeypatch: pytest.MonkeyPatch, box: str, tmp_path: Path
) -> None:
    """Inside, only /usr is bound: a link to elsewhere would dangle, so its target is copied."""
    target = tmp_path / "zone"
    target.write_text("the zone\n")
    link = tmp_path / "safexam-test-link"
    link.symlink_to(target)
    os.chmod(tmp_path, 0o755)
    os.chmod(target, 0o644)
    monkeypatch.setattr(sandbox_root, "_ETC_COPIED", (*sandbox_root._ETC_COPIED, str(link)))
    monkeypatch.setattr(sandbox_root, "_ROOT_CHECK_S", 0.0)
    root = sandbox_root._sandbox_root()
    copied = Path(root.path) / "etc" / "safexam-test-link"
    assert copied.is_file() and not copied.is_symlink()
    read = [PYTHON, "-I", "-S", "-c", "print(open('/etc/safexam-test-link').read(), end='')"]
    assert execute(read, box=box, limits=LIMITS, uid=sandbox_uid()).stdout == b"the zone\n"
    # /etc/localtime points into /usr/share/zoneinfo: kept as the same link.
    if os.path.realpath("/etc/localtime").startswith("/usr/"):
        assert os.readlink(Path(root.path) / "etc" / "localtime") == os.readlink("/etc/localtime")


# ---- the launcher, on the host --------------------------------------------------


def _built(kind: str, tmp: Path) -> str:
    if kind == "default":
        built = compiled_launcher()
        if built is None:
            pytest.skip("no C compiler")
        return built
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        pytest.skip("no C compiler")
    source = tmp / "launcher.c"
    source.write_bytes(launcher_source())
    binary = tmp / "launcher"
    # The build a system without a static C library falls back to.
    subprocess.run([compiler, "-O2", "-o", str(binary), str(source)], check=True)
    return str(binary)


@pytest.fixture(params=["default", "dynamic"])
def launcher(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return _built(request.param, tmp_path)


def test_the_launcher_is_plain_c_built_statically_where_it_can_be(tmp_path: Path) -> None:
    source = launcher_source().decode("ascii")
    assert "int main(int argc, char **argv)" in source
    assert "asm" not in source and "-nostdlib" not in source
    built = compiled_launcher()
    if built is None:
        pytest.skip("no C compiler")
    data = Path(built).read_bytes()
    assert data[:4] == b"\x7fELF"
    if data[4:6] != b"\x02\x01":
        pytest.skip("not a 64-bit little-endian host")
    assert stat.S_IMODE(os.stat(built).st_mode) == 0o755
    # Static when this host can link so (no loader to start on each exec).
    compiler = shutil.which("cc") or shutil.which("gcc")
    assert compiler is not None
    probe = tmp_path / "probe.c"
    probe.write_text("int main(void) { return 0; }\n")
    static = subprocess.run(
        [compiler, "-static", "-o", str(tmp_path / "probe"), str(probe)],
        capture_output=True,
        check=False,
    )
    if static.returncode == 0:
        assert not _has_interpreter(data)


def _has_interpreter(elf: bytes) -> bool:
    """Whether a 64-bit little-endian ELF names a loader (a PT_INTERP program header)."""
    phoff = int.from_bytes(elf[32:40], "little")
    size = int.from_bytes(elf[54:56], "little")
    count = int.from_bytes(elf[56:58], "little")
    kinds = (
        int.from_bytes(elf[phoff + i * size : phoff + i * size + 4], "little") for i in range(count)
    )
    return 3 in kinds


def _run(argv: list[str], **kwargs: object) -> subprocess.CompletedProcess[bytes]:
    kwargs.setdefault("env", {})
    return subprocess.run(  # type: ignore[call-overload,no-any-return]
        argv, capture_output=True, timeout=10, check=False, **kwargs
    )


def test_reaper_passes_on_the_exit_status_and_reports_memory(launcher: str) -> None:
    read, write = os.pipe()
    try:
        done = _run(
            [launcher, "reap", str(write), "-1", "--", "/bin/sh", "-c", "exit 3"], pass_fds=(write,)
        )
        os.close(write)
        stats = os.read(read, 4096)
    finally:
        os.close(read)
    assert done.returncode == 3
    assert stats.startswith(b"\nsafexam-rusage ") and stats.endswith(b"\n")
    assert int(stats.split()[1]) > 0
    killed = _run([launcher, "reap", "1", "-1", "--", "/bin/sh", "-c", "kill -9 $$"])
    assert killed.returncode == 128 + 9


def test_reaper_looks_names_up_on_path_and_names_what_it_cannot_run(
    launcher: str, tmp_path: Path
) -> None:
    found = _run([launcher, "reap", "2", "-1", "--", "true"], env={"PATH": "/usr/bin:/bin"})
    assert found.returncode == 0
    missing = _run([launcher, "reap", "2", "-1", "--", "/nonexistent/program"])
    assert missing.returncode == 127
    assert b"cannot run /nonexistent/program" in missing.stderr
    plain = tmp_path / "not-a-program"
    plain.write_text("data")
    os.chmod(tmp_path, 0o755)
    refused = _run([launcher, "reap", "2", "-1", "--", str(plain)])
    assert refused.returncode == 126


def _held_back(launcher: str) -> tuple[subprocess.Popen[bytes], int]:
    """A reaper waiting for its go byte, and the pipe end that sends it."""
    read, write = os.pipe()
    proc = subprocess.Popen(
        [launcher, "reap", "2", str(read), "--", "/bin/echo", "ran"],
        stdout=subprocess.PIPE,
        pass_fds=(read,),
    )
    os.close(read)
    return proc, write


def test_reaper_waits_for_the_go_byte_and_a_closed_pipe_calls_the_run_off(launcher: str) -> None:
    proc, go = _held_back(launcher)
    time.sleep(0.05)
    assert proc.poll() is None  # held back
    os.close(go)
    out, _ = proc.communicate(timeout=10)
    assert proc.returncode == 125 and out == b""
    proc, go = _held_back(launcher)
    os.write(go, b"g")
    out, _ = proc.communicate(timeout=10)
    os.close(go)
    assert proc.returncode == 0 and out == b"ran\n"


def test_launcher_sets_the_limits_and_refuses_bad_arguments(launcher: str) -> None:
    cpu, nofile = resource.RLIMIT_CPU, resource.RLIMIT_NOFILE
    done = _run(
        [
            launcher,
            "-1",
            f"{cpu}:7:8",
            f"{nofile}:64:64",
            "--",
            "/bin/sh",
            "-c",
            "ulimit -t; ulimit -n",
        ]
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [b"7", b"64"]
    for bad in (
        ["-1", "0:1", "--", "/bin/true"],
        ["-1", "x:1:1", "--", "/bin/true"],
        ["-1", "99999999999999999999999:1:1", "--", "/bin/true"],
        ["12x", "--", "/bin/true"],
        ["-1", f"{cpu}:1:1", "--"],
    ):
        refused = _run([launcher, *bad])
        assert refused.returncode == 127, bad
        assert refused.stderr.startswith(b"safexam-launcher: "), bad


@pytest.mark.skipif(os.geteuid() != 0, reason="dropping to another uid needs root")
def test_launcher_drops_to_the_uid_with_no_groups(launcher: str) -> None:
    uid = sandbox_uid()
    assert uid is not None
    done = _run(
        [
            launcher,
            str(uid),
            "--",
            "/bin/sh",
            "-c",
            "grep -E '^(Uid|Gid|Groups):' /proc/self/status",
        ]
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.decode().splitlines()
    assert lines[0].split()[1:] == [str(uid)] * 4
    assert lines[1].split()[1:] == [str(uid)] * 4
    assert lines[2].split()[1:] == []
