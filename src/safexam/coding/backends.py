"""Which code runner backend this deployment uses, and what works on this machine.

``build_runner`` and ``callback_config`` choose the embedded sandbox or Judge0
from the settings; ``doctor_checks`` reports which runners and languages work
here (``safexam doctor``).
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Literal

import httpx

from safexam.coding.execution import CodeRunner, Limits, RunnerError, TestCase
from safexam.coding.judge0 import CALLBACK_PATH, CallbackConfig, Judge0Runner
from safexam.coding.languages import LANGUAGES
from safexam.coding.sandbox import (
    SandboxConfig,
    SandboxRunner,
    bwrap_path,
    compiled_launcher,
    describe_limits,
    describe_setup,
    time_path,
)
from safexam.core.settings import Settings

__all__ = [
    "HELLO",
    "build_runner",
    "callback_config",
    "doctor_checks",
    "doctor_report",
    "judge0_mode",
]

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


def build_runner(
    settings: Settings, *, transport: httpx.AsyncBaseTransport | None = None
) -> CodeRunner:
    """The runner ``SAFEXAM_CODE_RUNNER`` names: the embedded sandbox or Judge0.

    ``transport`` replaces httpx's network transport (tests replay Judge0's answers).
    """
    if settings.code_runner == "judge0":
        if not settings.judge0_url:
            raise RunnerError("SAFEXAM_JUDGE0_URL is required when SAFEXAM_CODE_RUNNER=judge0")
        return Judge0Runner(
            settings.judge0_url,
            token=settings.judge0_token,
            language_ids=settings.judge0_language_map,
            transport=transport,
        )
    return SandboxRunner(SandboxConfig(warm=settings.sandbox_warm))


def callback_config(settings: Settings) -> CallbackConfig | None:
    """Judge0's callback mode when a callback URL is configured; None means polling."""
    if settings.code_runner != "judge0" or not settings.judge0_callback_url:
        return None
    return CallbackConfig(
        base_url=settings.judge0_callback_url,
        secret_key=settings.secret_key,
        wait=timedelta(seconds=settings.judge0_callback_wait_seconds),
    )


def judge0_mode(settings: Settings) -> str:
    """How results come back from Judge0, and the language ids used, for ``safexam doctor``."""
    callbacks = callback_config(settings)
    if callbacks is None:
        mode = "polling (SAFEXAM_JUDGE0_CALLBACK_URL turns callbacks on)"
    else:
        mode = (
            f"callback to {callbacks.base_url}{CALLBACK_PATH}/<signed token>, the batch"
            f" polled after {int(callbacks.wait.total_seconds())} s for callbacks that never came"
        )
    overrides = ", ".join(f"{name}={ident}" for name, ident in settings.judge0_language_ids)
    return f"{mode}; language ids: {overrides or 'built-in'}"


async def _probe(runner: SandboxRunner, language: str) -> tuple[bool, str]:
    limits = Limits(cpu_time_s=5, wall_time_s=10, memory_mb=256)
    test = TestCase(name="hello", expected_output="hello\n")
    try:
        result = await runner.judge(language, HELLO[language], [test], limits)
    except RunnerError as exc:
        return False, f"error: {exc}"
    if result.verdict == "accepted":
        return True, f"hello world ran in {result.tests[0].wall_ms} ms"
    detail = (result.compile_output or result.tests[0].stderr).strip().splitlines()
    return False, f"{result.verdict}: {detail[-1] if detail else ''}"


# (name, status, detail): the shape of a ``safexam doctor`` line.
Check = tuple[str, Literal["ok", "warn", "fail"], str]


def doctor_checks(settings: Settings | None = None, *, run_programs: bool = True) -> list[Check]:
    """What works for code execution here, as (name, ok|warn|fail, detail) lines.

    With ``run_programs`` each installed language compiles and runs a hello
    world through the real sandbox (about a second for all five). Call it
    outside a running event loop.
    """
    checks: list[Check] = []
    if settings is not None and settings.code_runner == "judge0":
        token = "token set" if settings.judge0_token else "no token"
        checks.append(("code runner", "ok", f"judge0 at {settings.judge0_url} ({token})"))
        checks.append(("judge0 mode", "ok", judge0_mode(settings)))
    else:
        checks.append(("code runner", "ok", "embedded sandbox"))
    bwrap = bwrap_path()
    if bwrap is None:
        checks.append(("sandbox", "fail", "bubblewrap missing (apt-get install bubblewrap)"))
    else:
        checks.append(("sandbox", "ok", f"bubblewrap at {bwrap}"))
        checks += describe_setup()
    timer = time_path()
    if timer is None:
        checks.append(
            ("sandbox memory", "warn", "GNU time (fallback reaper) missing: apt-get install time")
        )
    else:
        checks.append(
            ("sandbox memory", "ok", f"peak memory via the launcher, or {timer} without cc")
        )
    checks += describe_limits()
    if settings is not None and settings.code_runner == "sandbox":
        checks.append(_warm_check(settings.sandbox_warm))
    try:
        runner: SandboxRunner | None = SandboxRunner()
    except RunnerError:
        # describe_limits said why, in words.
        runner = None
    for name, lang in LANGUAGES.items():
        if not lang.is_available():
            checks.append((f"language {name}", "warn", f"missing {', '.join(lang.executables)}"))
        elif bwrap is None or not run_programs or runner is None:
            checks.append((f"language {name}", "ok", "installed"))
        else:
            ok, detail = asyncio.run(_probe(runner, name))
            checks.append((f"language {name}", "ok" if ok else "fail", detail))
    return checks


def _warm_check(warm: int) -> Check:
    if warm == 0:
        return ("sandbox warm", "ok", "off: each judging waits for its first sandbox's set-up")
    if compiled_launcher() is None:
        return (
            "sandbox warm",
            "warn",
            f"SAFEXAM_SANDBOX_WARM={warm} has no effect: no C compiler to build the launcher",
        )
    return ("sandbox warm", "ok", f"up to {warm} sandboxes per judge process set up ahead")


def doctor_report(settings: Settings | None = None, *, run_programs: bool = True) -> list[str]:
    """``doctor_checks`` as printable lines: ``name: status: detail``."""
    return [
        f"{name}: {status}: {detail}"
        for name, status, detail in doctor_checks(settings, run_programs=run_programs)
    ]
