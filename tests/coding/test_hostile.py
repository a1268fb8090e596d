"""Hostile programs through the real bubblewrap sandbox, each in Python and C.

Every case must end with the right verdict, the test process (the "worker")
must survive, no sandboxed process may outlive the run, and the host must be
unchanged. Isolation of the network is proved from inside (connections to
our own PostgreSQL and Redis ports fail, only loopback exists) and never by
sending anything off this machine.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import signal
import subprocess
import time
from pathlib import Path

import msgspec
import pytest

from safexam.coding.execution import Limits
from safexam.coding.sandbox import bwrap_path, default_work_root, submission_box, time_path
from tests.coding.sandbox_helpers import (
    LIMITS,
    WALL_LIMITS,
    assert_no_sandbox_left,
    judge_one,
    make_runner,
)

pytestmark = [
    pytest.mark.skipif(bwrap_path() is None, reason="bubblewrap is not installed"),
    pytest.mark.timeout(60),
]


@pytest.fixture(autouse=True)
def _clean_state() -> None:
    """These tests touch neither PostgreSQL nor Redis (overrides the database cleanup)."""


@pytest.fixture
def runner():  # type: ignore[no-untyped-def]
    runner = make_runner()
    yield runner
    assert_no_sandbox_left(runner)


def _sha(path: str) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


# --- processes ---------------------------------------------------------------

FORK_BOMB = {
    "python": "import os\nwhile True:\n    os.fork()\n",
    "c": "#include <unistd.h>\nint main(void) { for (;;) fork(); }\n",
}


@pytest.mark.parametrize(
    ("language", "verdicts"),
    # Python's fork raises once the task limit is reached. C ignores the error
    # and spins until the time limit, unless the sandbox's memory group is
    # filled first by the kernel memory of its many tasks: either way it is
    # stopped, as a whole, within the limits.
    [("python", {"runtime_error"}), ("c", {"time_limit", "memory_limit"})],
)
async def test_fork_bomb_is_contained(runner, language: str, verdicts: set[str]) -> None:
    started = time.monotonic()
    result = await judge_one(runner, language, FORK_BOMB[language])
    assert result.verdict in verdicts
    assert time.monotonic() - started < LIMITS.wall_time_s + 3
    if language == "python":
        assert "Resource temporarily unavailable" in result.tests[0].stderr


ESCAPEE = {
    "python": (
        "import os, time\n"
        "if os.fork() == 0:\n"
        "    os.setsid()\n"
        "    if os.fork() == 0:\n"
        "        while True:\n"
        "            time.sleep(0.05)\n"
        "    os._exit(0)\n"
        "time.sleep(0.2)\n"
        "print('parent done')\n"
    ),
    "c": (
        "#include <stdio.h>\n#include <unistd.h>\n"
        "int main(void) {\n"
        "  if (fork() == 0) { setsid(); if (fork() == 0) { for (;;) sleep(1); } _exit(0); }\n"
        '  usleep(200000); puts("parent done"); return 0;\n}\n'
    ),
}


@pytest.mark.parametrize("language", ["python", "c"])
async def test_setsid_double_fork_escapee_dies_with_the_run(runner, language: str) -> None:
    result = await judge_one(runner, language, ESCAPEE[language], expected="parent done\n")
    assert result.verdict == "accepted"
    # The daemonised grandchild was alive when main returned; it must be gone now.
    assert_no_sandbox_left(runner)


THREAD_BOMB = {
    "python": (
        "import threading, time\n"
        "while True:\n"
        "    threading.Thread(target=time.sleep, args=(100,), daemon=True).start()\n"
    ),
    "c": (
        "#include <pthread.h>\n#include <stdlib.h>\n#include <unistd.h>\n"
        "static void *nap(void *a) { sleep(100); return a; }\n"
        "int main(void) { for (;;) { pthread_t t; if (pthread_create(&t, 0, nap, 0)) abort(); } }\n"
    ),
}


@pytest.mark.parametrize("language", ["python", "c"])
async def test_thread_bomb_hits_the_task_limit(runner, language: str) -> None:
    result = await judge_one(runner, language, THREAD_BOMB[language])
    assert result.verdict == "runtime_error"
    if language == "python":
        assert "can't start new thread" in result.tests[0].stderr


HEAP_BOMB = {
    "python": "x = []\nwhile True:\n    x.append(bytearray(1 << 20))\n",
    "c": (
        "#include <stdlib.h>\n#include <string.h>\n"
        "int main(void) { for (;;) { char *p = malloc(1 << 20); memset(p, 1, 1 << 20); } }\n"
    ),
}


@pytest.mark.parametrize("language", ["python", "c"])
async def test_heap_bomb_is_a_memory_limit(runner, language: str) -> None:
    if language == "c" and time_path() is None:
        pytest.skip("a native heap bomb is told from a crash by its peak memory (GNU time)")
    result = await judge_one(runner, language, HEAP_BOMB[language])
    assert result.verdict == "memory_limit"
    peak = result.tests[0].memory_kb
    if time_path() is not None:
        assert peak is not None and peak <= LIMITS.memory_mb * 1024


STACK_OVERFLOW = {
    "python": "def f(n):\n    return f(n + 1) + 1\nf(0)\n",
    "c": (
        "int f(volatile int n) { volatile char pad[256]; pad[0] = (char) n;"
        " return f(n + 1) + pad[0]; }\n"
        "int main(void) { return f(0); }\n"
    ),
}


@pytest.mark.parametrize("language", ["python", "c"])
async def test_stack_overflow_is_a_runtime_error(runner, language: str) -> None:
    result = await judge_one(runner, language, STACK_OVERFLOW[language])
    assert result.verdict == "runtime_error"
    if language == "c":
        assert result.tests[0].signal == signal.SIGSEGV
    else:
        assert "RecursionError" in result.tests[0].stderr


CPU_SPIN = {
    "python": "while True:\n    pass\n",
    "c": "int main(void) { volatile unsigned long x = 0; for (;;) x++; }\n",
}


@pytest.mark.parametrize("language", ["python", "c"])
async def test_cpu_spin_is_a_time_limit(runner, language: str) -> None:
    result = await judge_one(runner, language, CPU_SPIN[language])
    assert result.verdict == "time_limit"
    # RLIMIT_CPU fires on the scheduler tick; the precise rusage may read a little under.
    assert result.tests[0].time_ms >= LIMITS.cpu_time_s * 900


WALL_HOGS = {
    ("python", "sleep"): "import time\ntime.sleep(100)\n",
    ("c", "sleep"): "#include <unistd.h>\nint main(void) { sleep(100); return 0; }\n",
    ("python", "pause"): "import signal\nsignal.pause()\n",
    ("c", "pause"): "#include <unistd.h>\nint main(void) { pause(); return 0; }\n",
    ("python", "sigstop"): (
        "import os, signal\nprint('before', flush=True)\n"
        "os.kill(os.getpid(), signal.SIGSTOP)\nprint('after')\n"
    ),
    ("c", "sigstop"): (
        "#include <signal.h>\n#include <stdio.h>\n"
        'int main(void) { puts("before"); fflush(stdout); raise(SIGSTOP); puts("after"); }\n'
    ),
}


@pytest.mark.parametrize(("language", "kind"), sorted(WALL_HOGS))
async def test_idle_programs_hit_the_wall_limit(runner, language: str, kind: str) -> None:
    started = time.monotonic()
    result = await judge_one(runner, language, WALL_HOGS[language, kind], limits=WALL_LIMITS)
    elapsed = time.monotonic() - started
    assert result.verdict == "time_limit"
    assert result.tests[0].wall_ms >= WALL_LIMITS.wall_time_s * 1000
    assert elapsed < WALL_LIMITS.wall_time_s + 2
    if kind == "sigstop":
        assert result.tests[0].stdout == "before\n"


# --- output and files ----------------------------------------------------------

FLOODS = {
    ("python", "stdout"): "import sys\nwhile True:\n    sys.stdout.write('x' * 65536)\n",
    ("c", "stdout"): (
        "#include <stdio.h>\n"
        'int main(void) { for (;;) fputs("xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\\n", stdout); }\n'
    ),
    ("python", "stderr"): "import sys\nwhile True:\n    sys.stderr.write('e' * 65536)\n",
    ("c", "stderr"): (
        "#include <stdio.h>\n"
        'int main(void) { for (;;) fputs("eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee\\n", stderr); }\n'
    ),
}


@pytest.mark.parametrize(("language", "stream"), sorted(FLOODS))
async def test_output_floods_stop_at_the_output_limit(runner, language: str, stream: str) -> None:
    started = time.monotonic()
    result = await judge_one(runner, language, FLOODS[language, stream])
    assert result.verdict == "output_limit"
    # Killed as soon as the cap was crossed, not at the time limit.
    assert time.monotonic() - started < LIMITS.wall_time_s
    kept = result.tests[0].stdout if stream == "stdout" else result.tests[0].stderr
    assert 0 < len(kept) <= 9 * 1024


BIG_FILE = {
    "python": "with open('big', 'wb') as f:\n    while True:\n        f.write(b'z' * 65536)\n",
    "c": (
        "#include <stdio.h>\n"
        'int main(void) { FILE *f = fopen("big", "wb"); static char b[65536];'
        " for (;;) fwrite(b, 1, sizeof b, f); }\n"
    ),
}


@pytest.mark.parametrize("language", ["python", "c"])
async def test_huge_file_write_is_an_output_limit(runner, language: str) -> None:
    result = await judge_one(runner, language, BIG_FILE[language])
    assert result.verdict == "output_limit"
    if language == "c":
        assert result.tests[0].signal == signal.SIGXFSZ


FILL_DIR = {
    "python": (
        "import sys\ni = 0\ntry:\n    while True:\n"
        "        with open(f'f{i}', 'wb') as f:\n            f.write(b'z' * 500000)\n"
        "        i += 1\n"
        "except OSError as exc:\n    print(i, exc.errno)\n    sys.exit(3)\n"
    ),
    "c": (
        "#include <errno.h>\n#include <stdio.h>\n"
        "int main(void) { static char b[500000]; char name[32];\n"
        '  for (int i = 0;; i++) { sprintf(name, "f%d", i); FILE *f = fopen(name, "wb");\n'
        "    if (!f || fwrite(b, 1, sizeof b, f) != sizeof b || fclose(f)) {\n"
        '      printf("%d %d\\n", i, errno); return 3; } } }\n'
    ),
}


@pytest.mark.parametrize("language", ["python", "c"])
async def test_filling_the_work_dir_fails_inside_the_sandbox(runner, language: str) -> None:
    result = await judge_one(runner, language, FILL_DIR[language])
    assert result.verdict == "runtime_error"
    assert result.tests[0].exit_code == 3
    written, errno = map(int, result.tests[0].stdout.split())
    # The private work dir is a tmpfs capped at file_size_kb (1 MiB): two files at most,
    # then "no space left on device" inside the sandbox, nothing on the host's disk.
    assert written <= LIMITS.file_size_kb * 1024 // 500_000
    assert errno == 28


# --- isolation -------------------------------------------------------------------

NETWORK = {
    "python": (
        "import socket\n"
        "for port in (5432, 6379):\n"
        "    s = socket.socket()\n"
        "    s.settimeout(1)\n"
        "    try:\n"
        "        s.connect(('127.0.0.1', port))\n"
        "        print(port, 'connected')\n"
        "    except OSError:\n"
        "        print(port, 'refused')\n"
        "print('ifaces', *sorted(name for _, name in socket.if_nameindex()))\n"
    ),
    "c": (
        "#include <stdio.h>\n#include <unistd.h>\n#include <net/if.h>\n#include <arpa/inet.h>\n"
        "#include <netinet/in.h>\n#include <sys/socket.h>\n"
        "int main(void) {\n"
        "  int ports[2] = {5432, 6379};\n"
        "  for (int i = 0; i < 2; i++) {\n"
        "    int s = socket(AF_INET, SOCK_STREAM, 0); struct sockaddr_in a = {0};\n"
        "    a.sin_family = AF_INET; a.sin_port = htons(ports[i]);\n"
        '    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);\n'
        '    printf("%d %s\\n", ports[i], connect(s, (struct sockaddr *) &a, sizeof a) == 0'
        ' ? "connected" : "refused"); close(s); }\n'
        '  printf("ifaces"); struct if_nameindex *n = if_nameindex();\n'
        '  for (struct if_nameindex *p = n; p && p->if_index; p++) printf(" %s", p->if_name);\n'
        '  printf("\\n"); return 0; }\n'
    ),
}


@pytest.mark.parametrize("language", ["python", "c"])
async def test_no_network_but_own_loopback(runner, language: str) -> None:
    result = await judge_one(
        runner, language, NETWORK[language], expected="5432 refused\n6379 refused\nifaces lo\n"
    )
    assert result.verdict == "accepted", result.tests[0].stdout


def _peek_program(language: str, paths: list[str]) -> str:
    if language == "python":
        return (
            "import os\n"
            f"for path in {paths!r} + ['/proc/%s/environ' % p for p in os.listdir('/proc')"
            " if p.isdigit()]:\n"
            "    try:\n"
            "        print(path, 'READ', open(path, 'rb').read(300))\n"
            "    except OSError:\n"
            "        print(path, 'denied')\n"
            "print('env', dict(os.environ))\n"
        )
    checks = "".join(
        f'  f = fopen("{p}", "rb"); if (f) {{ n = fread(b, 1, 300, f); fwrite(b, 1, n, stdout);'
        f' puts(" READ {p}"); fclose(f); }} else puts("{p} denied");\n'
        for p in [*paths, "/proc/1/environ", "/proc/2/environ"]
    )
    return (
        "#include <stdio.h>\nextern char **environ;\n"
        "int main(void) { FILE *f; char b[300]; size_t n;\n"
        + checks
        + '  for (char **e = environ; *e; e++) printf("env %s\\n", *e); return 0; }\n'
    )


@pytest.mark.parametrize("language", ["python", "c"])
async def test_secrets_of_the_host_are_out_of_reach(runner, monkeypatch, language: str) -> None:
    secret = secrets.token_hex(16)
    monkeypatch.setenv("SAFEXAM_WORKER_SECRET", secret)
    other = "".join(["other-submission-", secret])
    # Another submission's box, alive while this one runs.
    with submission_box(None, "main.py", f"print({other!r})\n") as other_box:
        paths = [
            "/etc/shadow",
            "/etc/passwd",
            "/root/.bashrc",
            f"{other_box}/main.py",
            str(Path.cwd() / "pyproject.toml"),
        ]
        result = await judge_one(runner, language, _peek_program(language, paths))
        assert Path(other_box, "main.py").exists()
    assert result.verdict == "accepted"
    out = result.tests[0].stdout
    for path in paths:
        assert f"{path} denied" in out
    assert secret not in out
    assert "SAFEXAM" not in out
    assert "PATH=/usr/bin:/bin" in out or "'PATH': '/usr/bin:/bin'" in out


def _writer_program(language: str, targets: list[str]) -> str:
    if language == "python":
        return (
            "import os\n"
            f"for path in {targets!r}:\n"
            "    try:\n"
            "        with open(path, 'w') as f:\n"
            "            f.write('pwned')\n"
            "        print(path, 'WROTE')\n"
            "    except OSError:\n"
            "        print(path, 'denied')\n"
        )
    body = "".join(
        f'  f = fopen("{t}", "w"); if (f && fputs("pwned", f) >= 0 && fclose(f) == 0)'
        f' puts("{t} WROTE"); else puts("{t} denied");\n'
        for t in targets
    )
    return "#include <stdio.h>\nint main(void) { FILE *f;\n" + body + "  return 0; }\n"


@pytest.mark.parametrize("language", ["python", "c"])
async def test_nothing_outside_the_work_dir_is_writable(runner, language: str) -> None:
    tag = secrets.token_hex(6)
    host_tmp = f"/tmp/safexam-pwned-{tag}"
    targets = [
        f"/usr/pwned-{tag}",
        f"/etc/pwned-{tag}",
        f"/pwned-{tag}",
        f"/dev/pwned-{tag}",
        f"/box/pwned-{tag}",
        f"{default_work_root()}/pwned-{tag}",
        host_tmp,
    ]
    result = await judge_one(runner, language, _writer_program(language, targets))
    out = result.tests[0].stdout
    for target in targets[:-1]:
        assert f"{target} denied" in out
        assert not os.path.exists(target)
    # /tmp inside is the sandbox's own tmpfs: writable there, invisible here.
    assert f"{host_tmp} WROTE" in out
    assert not os.path.exists(host_tmp)


LINKS = {
    "python": (
        "import os\n"
        "for src, dst in [('/etc/shadow', '/box/s'), ('/etc/passwd', 'p'),"
        " ('/usr/bin/python3', 'h'), ('/box/main.py', '/box/h')]:\n"
        "    for make in (os.symlink, os.link):\n"
        "        name = dst + make.__name__\n"
        "        try:\n"
        "            make(src, name)\n"
        "            print(name, 'made')\n"
        "        except OSError:\n"
        "            print(name, 'denied')\n"
        "for name in ('psymlink', 'hsymlink'):\n"
        "    try:\n"
        "        open(name, 'w').write('x')\n"
        "        print(name, 'written through')\n"
        "    except OSError:\n"
        "        print(name, 'write denied')\n"
    ),
    "c": (
        "#include <stdio.h>\n#include <unistd.h>\n"
        "int main(void) {\n"
        '  printf("/box/ssymlink %s\\n",'
        ' symlink("/etc/shadow", "/box/ssymlink") ? "denied" : "made");\n'
        '  printf("/box/hlink %s\\n", link("/box/main", "/box/hlink") ? "denied" : "made");\n'
        '  printf("psymlink %s\\n", symlink("/etc/passwd", "psymlink") ? "denied" : "made");\n'
        '  printf("hlink %s\\n", link("/usr/bin/python3", "hlink") ? "denied" : "made");\n'
        '  FILE *f = fopen("psymlink", "w");\n'
        '  printf("psymlink %s\\n", f ? "written through" : "write denied");\n'
        "  return 0; }\n"
    ),
}


@pytest.mark.parametrize("language", ["python", "c"])
async def test_links_left_behind_never_reach_host_files(runner, language: str) -> None:
    watched = ["/etc/passwd", "/etc/shadow", "/usr/bin/python3"]
    before = {p: _sha(p) for p in watched}
    boxes_before = set(os.listdir(default_work_root())) if default_work_root().exists() else set()
    result = await judge_one(runner, language, LINKS[language])
    lines = set(result.tests[0].stdout.splitlines())
    # The box is read-only during tests, so nothing can be planted next to the program.
    assert {"/box/ssymlink denied", "/box/hlink denied"} <= lines
    # A hard link to a system file cannot be made (another filesystem, read-only).
    assert "hlink denied" in lines
    # A symlink in the private /tmp resolves in the sandbox's own read-only view.
    assert "psymlink write denied" in lines
    assert {p: _sha(p) for p in watched} == before
    # The box was removed without following anything left in it.
    assert set(os.listdir(default_work_root())) <= boxes_before


KILL_ALL = {
    "python": (
        "import os, signal\n"
        "try:\n    os.kill(-1, signal.SIGKILL)\nexcept ProcessLookupError:\n    pass\n"
        "print('still here')\n"
    ),
    "c": (
        "#include <signal.h>\n#include <stdio.h>\n"
        'int main(void) { kill(-1, SIGKILL); puts("still here"); return 0; }\n'
    ),
}


@pytest.mark.parametrize("language", ["python", "c"])
async def test_kill_minus_one_only_reaches_the_sandbox(runner, language: str) -> None:
    sentinel = subprocess.Popen(["sleep", "30"])  # a host process to be spared
    try:
        result = await judge_one(runner, language, KILL_ALL[language], expected="still here\n")
        assert result.verdict == "accepted"
        assert sentinel.poll() is None
    finally:
        sentinel.kill()
        sentinel.wait()


COMPILER_BOMBS = {
    "c-dev-zero": ("c", '#include "/dev/zero"\nint main(void) { return 0; }\n'),
    "c-macro": (
        "c",
        "#define A(x) x x x x x x x x x x\n#define B(x) A(A(A(A(A(A(x))))))\n"
        "int main(void) { B(B(int y;)) return 0; }\n",
    ),
    "cpp-templates": (
        "cpp",
        "template<int N> struct G { static const int v = G<N + 1>::v; };\n"
        "int main() { return G<0>::v; }\n",
    ),
    "python-literal": ("python", "x = [" + "1," * 3_000_000 + "]\n"),
    "python-nesting": ("python", "x = " + "(" * 300 + ")" * 300 + "\n"),
}


@pytest.mark.parametrize("case", sorted(COMPILER_BOMBS))
async def test_compiler_bombs_end_as_compile_errors(runner, case: str) -> None:
    language, program = COMPILER_BOMBS[case]
    started = time.monotonic()
    result = await judge_one(runner, language, program, expected="")
    assert result.verdict == "compile_error"
    assert result.compile_output
    assert time.monotonic() - started < 12


INVALID_UTF8 = {
    "python": "import sys\nsys.stdout.buffer.write(b'\\xff\\xfe\\x00abc\\xc3\\n')\n",
    "c": (
        '#include <stdio.h>\nint main(void) { fwrite("\\xff\\xfe\\0abc\\xc3\\n", 1, 8, stdout); }\n'
    ),
}


@pytest.mark.parametrize("language", ["python", "c"])
async def test_invalid_utf8_output_is_stored_safely(runner, language: str) -> None:
    result = await judge_one(runner, language, INVALID_UTF8[language], expected="abc\n")
    assert result.verdict == "wrong_answer"
    stdout = result.tests[0].stdout
    assert "abc" in stdout and "\x00" not in stdout
    # Storable as JSON text (and so in a JSONB column).
    msgspec.json.decode(msgspec.json.encode(result))


async def test_limits_are_per_test_not_per_submission(runner) -> None:
    """One test's heavy use does not eat into the next test's budget."""
    from safexam.coding.execution import TestCase

    program = "import sys\nn = int(input())\nx = 0\nfor i in range(n):\n    x += i\nprint(x)\n"
    tests = [TestCase(name=f"t{i}", stdin="3000000\n", expected_output=None) for i in range(3)]
    result = await runner.judge("python", program, tests, Limits(cpu_time_s=1, wall_time_s=3))
    assert [t.verdict for t in result.tests] == ["accepted"] * 3


@pytest.mark.parametrize("language", ["python", "c"])
async def test_task_limit_binds_exactly(runner, language: str) -> None:
    """RLIMIT_NPROC counts this sandbox only: a program gets at most `processes` tasks."""
    program = {
        "python": (
            "import os, time\nn = 0\n"
            "for _ in range(100):\n"
            "    try:\n        pid = os.fork()\n    except OSError:\n        break\n"
            "    if pid == 0:\n        time.sleep(5)\n        os._exit(0)\n"
            "    n += 1\n"
            "print(n)\n"
        ),
        "c": (
            "#include <stdio.h>\n#include <unistd.h>\n"
            "int main(void) { int n = 0; for (int i = 0; i < 100; i++) {"
            " pid_t p = fork(); if (p < 0) break; if (p == 0) { sleep(5); _exit(0); } n++; }"
            ' printf("%d\\n", n); return 0; }\n'
        ),
    }[language]
    result = await judge_one(runner, language, program)
    assert result.verdict == "accepted"
    forked = int(result.tests[0].stdout)
    # The program itself is one task; the limit leaves room for processes - 1 children.
    assert 0 < forked <= LIMITS.processes - 1


NESTED_USERNS = {
    "python": (
        "import ctypes, os\n"
        "libc = ctypes.CDLL(None, use_errno=True)\n"
        "print('refused' if libc.unshare(0x10000000) != 0 else 'created')\n"
    ),
    "c": (
        "#define _GNU_SOURCE\n#include <sched.h>\n#include <stdio.h>\n"
        'int main(void) { puts(unshare(CLONE_NEWUSER) ? "refused" : "created"); return 0; }\n'
    ),
}


@pytest.mark.parametrize("language", ["python", "c"])
async def test_no_nested_user_namespace(runner, language: str) -> None:
    result = await judge_one(runner, language, NESTED_USERNS[language], expected="refused\n")
    assert result.verdict == "accepted", result.tests[0].stdout
