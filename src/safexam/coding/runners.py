"""Choosing the configured runner, and reporting which runners and languages work here."""

from __future__ import annotations

import asyncio
import os

from safexam.coding.languages import LANGUAGES
from safexam.coding.runner import CodeRunner, Limits, RunnerError, TestCase
from safexam.coding.sandbox import SandboxRunner, bwrap_path, time_path
from safexam.core.settings import Settings

__all__ = ["HELLO", "build_runner", "doctor_report"]

# The smallest program per language that proves compile + run + compare work.
HELLO: dict[str, str] = {
    "python": 'print("hello")\n',
    "c": '#include <stdio.h>\nint main(void) { puts("hello"); return 0; }\n',
    "cpp": '#include <iostream>\nint main() { std::cout << "hello\\n"; }\n',
    "java": (
        "public class Main { public static void main(String[] a) {"
        ' System.out.println("hello"); } }\n'
    ),
    "javascript": 'console.log("hello");\n',
}


def build_runner(settings: Settings) -> CodeRunner:
    """The runner ``SAFEXAM_CODE_RUNNER`` names: the embedded sandbox or Judge0."""
    if settings.code_runner == "judge0":
        from safexam.coding.judge0 import Judge0Runner

        if not settings.judge0_url:
            raise RunnerError("SAFEXAM_JUDGE0_URL is required when SAFEXAM_CODE_RUNNER=judge0")
        return Judge0Runner(settings.judge0_url, token=settings.judge0_token)
    return SandboxRunner()


async def _probe(runner: SandboxRunner, language: str) -> str:
    limits = Limits(cpu_time_s=5, wall_time_s=10, memory_mb=256)
    test = TestCase(name="hello", expected_output="hello\n")
    try:
        result = await runner.judge(language, HELLO[language], [test], limits)
    except RunnerError as exc:
        return f"error: {exc}"
    if result.verdict == "accepted":
        return f"ok ({result.tests[0].wall_ms} ms)"
    detail = (result.compile_output or result.tests[0].stderr).strip().splitlines()
    return f"{result.verdict}: {detail[-1] if detail else ''}"


def doctor_report(settings: Settings | None = None, *, run_programs: bool = True) -> list[str]:
    """One line per fact: which runner is configured, and which languages work in the sandbox.

    With ``run_programs`` each available language compiles and runs a hello
    world through the real sandbox (about a second for all five).
    """
    lines: list[str] = []
    configured = settings.code_runner if settings is not None else "sandbox"
    lines.append(f"code runner: {configured}")
    if settings is not None and settings.code_runner == "judge0":
        token = "set" if settings.judge0_token else "not set"
        lines.append(f"judge0: {settings.judge0_url} (token {token})")
    bwrap = bwrap_path()
    if bwrap is None:
        lines.append("sandbox: bubblewrap missing (apt-get install bubblewrap)")
    else:
        lines.append(f"sandbox: bubblewrap at {bwrap}")
    timer = time_path()
    lines.append(
        f"sandbox: GNU time at {timer} (peak memory per test)"
        if timer
        else "sandbox: GNU time missing (apt-get install time): no peak memory per test"
    )
    if os.geteuid() != 0:
        lines.append("sandbox: not root: the process limit is held only by the PID namespace")
    runner = SandboxRunner()
    for name, lang in LANGUAGES.items():
        if not lang.is_available():
            lines.append(f"language {name}: missing ({', '.join(lang.executables)})")
            continue
        if bwrap is None or not run_programs:
            lines.append(f"language {name}: installed")
            continue
        lines.append(f"language {name}: {asyncio.run(_probe(runner, name))}")
    return lines
