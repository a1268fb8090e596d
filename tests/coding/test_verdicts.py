"""Every verdict from a real program in every language installed here, scoring and templates."""

from __future__ import annotations

import os

import pytest

from safexam.coding.backends import HELLO, doctor_checks, doctor_report
from safexam.coding.compare import render_program
from safexam.coding.execution import Limits, TestCase
from safexam.coding.languages import LANGUAGES
from safexam.coding.sandbox import bwrap_path, compiled_launcher, time_path
from safexam.coding.sandbox.cgroups import cgroup_host
from safexam.coding.sandbox.seccomp import seccomp_program
from safexam.core.settings import load_settings
from tests.coding.sandbox_helpers import assert_no_sandbox_left, judge_many, judge_one, make_runner

pytestmark = [
    pytest.mark.skipif(bwrap_path() is None, reason="bubblewrap is not installed"),
    pytest.mark.timeout(60),
]

AVAILABLE = [name for name, lang in LANGUAGES.items() if lang.is_available()]

LIMITS = Limits(cpu_time_s=1, wall_time_s=3, memory_mb=64, output_kb=16, processes=16)


@pytest.fixture(autouse=True)
def _clean_state() -> None:
    """These tests touch neither PostgreSQL nor Redis (overrides the database cleanup)."""


@pytest.fixture
def runner():  # type: ignore[no-untyped-def]
    runner = make_runner()
    yield runner
    assert_no_sandbox_left(runner)


SUM = {
    "python": "a, b = map(int, input().split())\nprint(a + b)\n",
    "c": '#include <stdio.h>\nint main(void) { long long a, b; scanf("%lld %lld", &a, &b);'
    ' printf("%lld\\n", a + b); return 0; }\n',
    "cpp": "#include <iostream>\n"
    'int main() { long a, b; std::cin >> a >> b; std::cout << a + b << "\\n"; }\n',
    "java": "import java.util.*;\npublic class Main { public static void main(String[] x) {"
    " Scanner s = new Scanner(System.in); System.out.println(s.nextLong() + s.nextLong()); } }\n",
    "javascript": "const [a, b] = require('fs').readFileSync(0, 'utf8')"
    ".trim().split(/\\s+/).map(Number);\n"
    "console.log(a + b);\n",
}

SYNTAX_ERROR = {
    "python": "def broken(:\n    pass\n",
    "c": "int main(void) { return 0 }\n",
    "cpp": "int main() { undeclared_thing(); }\n",
    "java": "public class Main { public static void main(String[] a) { int x = ; } }\n",
    "javascript": "function (() {\n",
}

CRASH = {
    "python": "raise SystemExit(3)\n",
    "c": "#include <stdlib.h>\n"
    "int main(void) { int *p = 0; return *p + (int) (long) malloc(1); }\n",
    "cpp": '#include <stdexcept>\nint main() { throw std::runtime_error("boom"); }\n',
    "java": "public class Main { public static void main(String[] a) { int[] x = new int[1];"
    " System.out.println(x[5]); } }\n",
    "javascript": "null.boom();\n",
}

SPIN = {
    "python": "while True:\n    pass\n",
    "c": "int main(void) { volatile unsigned long x = 0; for (;;) x++; }\n",
    "cpp": "int main() { volatile unsigned long x = 0; for (;;) x++; }\n",
    "java": "public class Main { public static void main(String[] a) { long x = 0;"
    " while (true) { x++; if (x == -1) break; } } }\n",
    "javascript": "let x = 0; for (;;) { x++; }\n",
}

HEAP = {
    "python": "x = []\nwhile True:\n    x.append(bytearray(1 << 20))\n",
    "c": "#include <stdlib.h>\n#include <string.h>\n"
    "int main(void) { for (;;) { char *p = malloc(1 << 20); memset(p, 1, 1 << 20); } }\n",
    "cpp": "#include <vector>\n#include <list>\n"
    "int main() { std::list<std::vector<char>> l; for (;;) l.emplace_back(1 << 20, 'x'); }\n",
    "java": "import java.util.*;\npublic class Main { public static void main(String[] a) {"
    " List<long[]> l = new ArrayList<>(); while (true) l.add(new long[1 << 17]); } }\n",
    "javascript": "const a = []; for (;;) a.push(new Array(1 << 16).fill(1.5));\n",
}

FLOOD = {
    "python": "while True:\n    print('y' * 1000)\n",
    "c": '#include <stdio.h>\nint main(void) { for (;;) puts("yyyyyyyyyyyyyyyyyyyyyyyy"); }\n',
    "cpp": '#include <cstdio>\nint main() { for (;;) std::puts("yyyyyyyyyyyyyyyyyyyyyyyy"); }\n',
    "java": "public class Main { public static void main(String[] a) {"
    ' while (true) System.out.println("yyyyyyyyyyyyyyyyyyyyyyyy"); } }\n',
    "javascript": "for (;;) process.stdout.write('y'.repeat(100000) + '\\n');\n",
}


@pytest.mark.parametrize("language", AVAILABLE)
async def test_accepted_and_wrong_answer_and_score(runner, language: str) -> None:
    tests = [
        TestCase(name="small", stdin="1 2\n", expected_output="3\n", points=2),
        TestCase(
            name="big", stdin="1000000000 2000000000\n", expected_output="3000000000\n", points=3
        ),
        TestCase(name="wrong-key", stdin="2 2\n", expected_output="5\n", points=5, hidden=True),
    ]
    result = await judge_many(runner, language, SUM[language], tests, LIMITS)
    assert [t.verdict for t in result.tests] == ["accepted", "accepted", "wrong_answer"]
    assert result.verdict == "wrong_answer"
    assert (result.score, result.max_score) == (5.0, 10.0)
    assert result.tests[0].stdout == "3\n"
    assert result.executor == "sandbox"


@pytest.mark.parametrize("language", AVAILABLE)
async def test_compile_error(runner, language: str) -> None:
    tests = [TestCase(name="a", expected_output="", points=1), TestCase(name="b", points=1)]
    result = await judge_many(runner, language, SYNTAX_ERROR[language], tests, LIMITS)
    assert result.verdict == "compile_error"
    assert result.compile_output.strip()
    assert [t.verdict for t in result.tests] == ["compile_error", "compile_error"]
    assert result.score == 0


@pytest.mark.parametrize("language", AVAILABLE)
async def test_runtime_error(runner, language: str) -> None:
    result = await judge_one(runner, language, CRASH[language], expected="", limits=LIMITS)
    assert result.verdict == "runtime_error", result.tests[0].stderr


@pytest.mark.parametrize("language", AVAILABLE)
async def test_time_limit(runner, language: str) -> None:
    result = await judge_one(runner, language, SPIN[language], expected="", limits=LIMITS)
    assert result.verdict == "time_limit"


@pytest.mark.parametrize("language", AVAILABLE)
async def test_memory_limit(runner, language: str) -> None:
    if language in ("c", "cpp") and time_path() is None:
        pytest.skip("a native heap bomb is told from a crash by its peak memory (GNU time)")
    result = await judge_one(runner, language, HEAP[language], expected="", limits=LIMITS)
    assert result.verdict == "memory_limit", result.tests[0].stderr[-300:]


@pytest.mark.parametrize("language", AVAILABLE)
async def test_output_limit(runner, language: str) -> None:
    result = await judge_one(runner, language, FLOOD[language], expected="", limits=LIMITS)
    assert result.verdict == "output_limit"


async def test_run_without_expected_output_just_runs(runner) -> None:
    result = await judge_one(runner, "python", "print(input()[::-1])\n", stdin="abc\n")
    assert result.verdict == "accepted"
    assert result.tests[0].stdout == "cba\n"


async def test_template_substitution_runs_the_whole_program(runner) -> None:
    template = "{{ SOURCE }}\nprint(add(*map(int, input().split())))\n"
    student = "def add(a, b):\n    return a + b  # \\n stays literal: '\\1'\n"
    program = render_program(template, student)
    assert program.startswith(student)
    tests = [
        TestCase(name="small", stdin="1 2\n", expected_output="3\n", points=5),
        TestCase(name="big", stdin="10 20\n", expected_output="30\n", points=5, hidden=True),
    ]
    result = await judge_many(runner, "python", program, tests, LIMITS)
    assert result.verdict == "accepted"
    assert result.score == 10


async def test_comparison_modes_through_the_sandbox(runner) -> None:
    program = "print('  3.14159  ')\nprint('a   b')\nprint()\n"
    cases = {
        "exact": ("3.14159\na b\n", "wrong_answer"),
        "trimmed": ("  3.14159\na   b\n", "accepted"),
        "tokens": ("3.14159 a b", "accepted"),
        "float:0.001": ("3.1416 a b", "accepted"),
        "float:0.0000001": ("3.1416 a b", "wrong_answer"),
    }
    for mode, (expected, verdict) in cases.items():
        result = await judge_one(runner, "python", program, expected=expected, comparison=mode)
        assert result.verdict == verdict, mode


def test_doctor_report_lists_runners_and_languages() -> None:
    lines = doctor_report(run_programs=False)
    assert lines[0] == "code runner: ok: embedded sandbox"
    assert any(line.startswith("sandbox: ok: bubblewrap at") for line in lines)
    if compiled_launcher() is not None:
        assert "sandbox launcher: ok: compiled: limits, uid drop and PID 1 in one program" in lines
    else:
        assert any(line.startswith("sandbox launcher: warn: no C compiler") for line in lines)
    devices = "device nodes of its own" if os.geteuid() == 0 else "the host's devices"
    assert any(
        line.startswith(f"sandbox root: ok: one read-only root with {devices}") for line in lines
    )
    for name in LANGUAGES:
        assert any(line.startswith(f"language {name}:") for line in lines)
    assert set(HELLO) == set(LANGUAGES)


def test_doctor_checks_run_hello_world_in_every_installed_language() -> None:
    checks = {name: (status, detail) for name, status, detail in doctor_checks()}
    for language in AVAILABLE:
        status, detail = checks[f"language {language}"]
        assert status == "ok", detail
        assert detail.startswith("hello world ran in")


def test_doctor_reports_sandboxes_set_up_ahead() -> None:
    def warm_line(raw: str) -> tuple[str, str]:
        settings = load_settings({"SAFEXAM_SANDBOX_WARM": raw})
        checks = {
            name: (status, detail)
            for name, status, detail in doctor_checks(settings, run_programs=False)
        }
        return checks["sandbox warm"]

    assert warm_line("3") == ("ok", "up to 3 sandboxes per judge process set up ahead")
    status, detail = warm_line("0")
    assert status == "ok" and detail.startswith("off:")


def test_doctor_reports_which_limits_bind_here() -> None:
    checks = {name: (status, detail) for name, status, detail in doctor_checks(run_programs=False)}
    status, detail = checks["sandbox cgroups"]
    if cgroup_host() is None:
        assert status == "warn" and "per process only" in detail
    else:
        assert status == "ok" and "memory, tasks and CPU time per sandbox" in detail
    status, detail = checks["sandbox seccomp"]
    assert status == ("ok" if seccomp_program() is not None else "warn"), detail
    status, detail = checks["sandbox uid"]
    assert status == ("ok" if os.geteuid() == 0 or cgroup_host() is not None else "fail"), detail
