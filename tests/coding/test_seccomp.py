"""The sandbox's seccomp filter: dangerous system calls are refused, every language still runs.

Each program makes the calls a submission could use to reach kernel attack
surface or other processes, with harmless arguments, and prints what came
back: EPERM for each, from the filter. (Without it ``ptrace(TRACEME)`` and
``personality`` succeed and ``io_uring_setup`` reaches the kernel.)
"""

from __future__ import annotations

import platform

import pytest

from safexam.coding.backends import HELLO
from safexam.coding.languages import LANGUAGES
from safexam.coding.sandbox import bwrap_path
from safexam.coding.sandbox.seccomp import seccomp_program
from tests.coding.sandbox_helpers import assert_no_sandbox_left, judge_one, make_runner

pytestmark = [
    pytest.mark.skipif(bwrap_path() is None, reason="bubblewrap is not installed"),
    pytest.mark.skipif(seccomp_program() is None, reason="libseccomp is not installed"),
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


CALLS = ("io_uring_setup", "perf_event_open", "bpf", "keyctl", "ptrace", "personality")
# x86-64 numbers, for Python's ctypes (C names them itself).
_NUMBERS = {
    "io_uring_setup": 425,
    "perf_event_open": 298,
    "bpf": 321,
    "keyctl": 250,
    "ptrace": 101,
    "personality": 135,
}

_C_CALLS = """
#include <errno.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>
#define TRY(name, ...) do { errno = 0; long r = syscall(__VA_ARGS__); \\
  printf("%s %d\\n", name, r == -1 ? errno : 0); } while (0)
int main(void) {
  TRY("io_uring_setup", SYS_io_uring_setup, 1, NULL);
  TRY("perf_event_open", SYS_perf_event_open, NULL, 0, -1, -1, 0);
  TRY("bpf", SYS_bpf, 0, NULL, 0);
  TRY("keyctl", SYS_keyctl, 0, -1, 0);
  TRY("ptrace", SYS_ptrace, 0, 0, 0, 0);
  TRY("personality", SYS_personality, 0xffffffffUL);
  return 0;
}
"""

PROGRAMS = {
    "python": (
        "import ctypes\n"
        "libc = ctypes.CDLL(None, use_errno=True)\n"
        "libc.syscall.restype = ctypes.c_long\n"
        f"calls = {[(name, _NUMBERS[name]) for name in CALLS]!r}\n"
        "args = {'io_uring_setup': (1, None), 'perf_event_open': (None, 0, -1, -1, 0),\n"
        "        'bpf': (0, None, 0), 'keyctl': (0, -1, 0), 'ptrace': (0, 0, 0, 0),\n"
        "        'personality': (0xffffffff,)}\n"
        "for name, number in calls:\n"
        "    ctypes.set_errno(0)\n"
        "    r = libc.syscall(number, *args[name])\n"
        "    print(name, ctypes.get_errno() if r == -1 else 0)\n"
    ),
    "c": _C_CALLS,
    "cpp": _C_CALLS,
}


@pytest.mark.skipif(platform.machine() != "x86_64", reason="system call numbers of x86-64")
@pytest.mark.parametrize("language", sorted(PROGRAMS))
async def test_dangerous_system_calls_are_refused(runner, language: str) -> None:
    if not LANGUAGES[language].is_available():
        pytest.skip(f"{language} is not installed")
    result = await judge_one(runner, language, PROGRAMS[language])
    test = result.tests[0]
    assert result.verdict == "accepted", (result.compile_output, test.stderr)
    answers = dict(line.split() for line in test.stdout.splitlines())
    assert answers == {name: "1" for name in CALLS}, answers  # 1: EPERM


@pytest.mark.parametrize("language", sorted(LANGUAGES))
async def test_every_language_runs_under_the_filter(runner, language: str) -> None:
    if not LANGUAGES[language].is_available():
        pytest.skip(f"{language} is not installed")
    result = await judge_one(runner, language, HELLO[language], expected="hello\n")
    assert result.verdict == "accepted", (result.compile_output, result.tests[0].stderr)
