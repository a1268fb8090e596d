"""Memory, tasks and CPU time limited per sandbox, not per process (the host's control groups).

Each program spreads its use over several processes (or, where a runtime
keeps memory outside its heap flag, outside the heap), each one under the
per-process limits: only a limit on the sandbox as a whole stops them.
Through the real bubblewrap sandbox, in every language.
"""

from __future__ import annotations

import pytest

from safexam.coding.execution import Limits
from safexam.coding.languages import LANGUAGES
from safexam.coding.sandbox import bwrap_path, compiled_launcher
from safexam.coding.sandbox.cgroups import cgroup_host
from tests.coding.sandbox_helpers import assert_no_sandbox_left, judge_one, make_runner

pytestmark = [
    pytest.mark.skipif(bwrap_path() is None, reason="bubblewrap is not installed"),
    pytest.mark.skipif(
        compiled_launcher() is None or cgroup_host() is None,
        reason="no control groups for sandboxes on this host (safexam doctor says why)",
    ),
    pytest.mark.timeout(90),
]


@pytest.fixture(autouse=True)
def _clean_state() -> None:
    """These tests touch neither PostgreSQL nor Redis (overrides the database cleanup)."""


@pytest.fixture
def runner():  # type: ignore[no-untyped-def]
    runner = make_runner()
    yield runner
    assert_no_sandbox_left(runner)


def _installed(language: str) -> None:
    if not LANGUAGES[language].is_available():
        pytest.skip(f"{language} is not installed")


# Eight children, each touching 200 MB: each is under a 256 MB cap of its own.
_C_MEMORY = """
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>
int main(void) {
  for (int i = 0; i < 8; i++) {
    if (fork() == 0) {
      /* volatile: the compiler may not drop a buffer nobody reads. */
      volatile char *p = (volatile char *) malloc(200 << 20);
      for (long j = 0; p && j < (200 << 20); j += 4096) p[j] = 1;
      sleep(2);
      _exit(0);
    }
  }
  while (wait(NULL) > 0) {}
  puts("ok");
  return 0;
}
"""

SPREAD_MEMORY = {
    "python": (
        "import os, time\n"
        "for _ in range(8):\n"
        "    if os.fork() == 0:\n"
        "        b = bytearray(200 << 20)\n"
        "        for i in range(0, len(b), 4096): b[i] = 1\n"
        "        time.sleep(2)\n"
        "        os._exit(0)\n"
        "while True:\n"
        "    try: os.wait()\n"
        "    except ChildProcessError: break\n"
        "print('ok')\n"
    ),
    "c": _C_MEMORY,
    "cpp": _C_MEMORY,
    # Buffers live outside V8's heap, which --max-old-space-size caps.
    "javascript": (
        "const kept = [];\n"
        "for (let i = 0; i < 8; i++) kept.push(Buffer.alloc(200 << 20, 1));\n"
        "console.log('ok');\n"
    ),
    # Direct buffers live outside the heap -Xmx caps.
    "java": (
        "import java.nio.ByteBuffer; import java.util.ArrayList;\n"
        "public class Main { public static void main(String[] a) {\n"
        "  ArrayList<Object> kept = new ArrayList<>();\n"
        "  for (int i = 0; i < 8; i++) { kept.add(new byte[24 << 20]);"
        " java.util.Arrays.fill((byte[]) kept.get(kept.size() - 1), (byte) 1); }\n"
        "  for (int i = 0; i < 8; i++) { ByteBuffer b = ByteBuffer.allocateDirect(30 << 20);"
        " for (int j = 0; j < b.capacity(); j += 4096) b.put(j, (byte) 1); kept.add(b); }\n"
        '  System.out.println("ok"); } }\n'
    ),
}


@pytest.mark.parametrize("language", sorted(SPREAD_MEMORY))
async def test_memory_spread_over_processes_is_a_memory_limit(runner, language: str) -> None:
    _installed(language)
    limits = Limits(cpu_time_s=5, wall_time_s=20, memory_mb=256, processes=16)
    result = await judge_one(
        runner, language, SPREAD_MEMORY[language], expected="ok", limits=limits
    )
    assert result.verdict == "memory_limit", (result.compile_output, result.tests[0].stderr)


# Three busy children, each under the CPU limit of its own, and a parent that
# waits for them: per process, it would get three times its limit.
_C_CPU = """
#include <sys/wait.h>
#include <unistd.h>
int main(void) {
  for (int i = 0; i < 3; i++)
    if (fork() == 0)
      for (volatile unsigned long x = 0;; x++) {}
  while (wait(NULL) > 0) {}
  return 0;
}
"""

SPREAD_CPU = {
    "python": (
        "import os\n"
        "for _ in range(3):\n"
        "    if os.fork() == 0:\n"
        "        while True: pass\n"
        "while True:\n"
        "    try: os.wait()\n"
        "    except ChildProcessError: break\n"
    ),
    "c": _C_CPU,
    "cpp": _C_CPU,
    "javascript": (
        "const { spawn } = require('child_process');\n"
        "for (let i = 0; i < 3; i++) spawn('/bin/sh', ['-c', 'while :; do :; done']);\n"
    ),
    "java": (
        "public class Main { public static void main(String[] a) throws Exception {\n"
        "  Process[] p = new Process[3];\n"
        '  for (int i = 0; i < 3; i++) p[i] = new ProcessBuilder("/bin/sh", "-c",'
        ' "while :; do :; done").start();\n'
        "  for (Process q : p) q.waitFor(); } }\n"
    ),
}


@pytest.mark.parametrize("language", sorted(SPREAD_CPU))
async def test_cpu_spread_over_processes_is_a_time_limit(runner, language: str) -> None:
    _installed(language)
    limits = Limits(cpu_time_s=1, wall_time_s=30, memory_mb=256, processes=16)
    result = await judge_one(runner, language, SPREAD_CPU[language], limits=limits)
    test = result.tests[0]
    assert result.verdict == "time_limit", (result.compile_output, test.stderr)
    allowed_ms = limits.cpu_time_s * LANGUAGES[language].time_multiplier * 1000
    # Stopped near the limit by its summed CPU time, not at the wall limit
    # (its CPU time per process stays well under the limit).
    assert allowed_ms <= test.time_ms <= allowed_ms * 1.5 + 200, test.time_ms
    assert test.wall_ms < limits.wall_time_s * LANGUAGES[language].time_multiplier * 1000
