"""The languages students may write in, each described once.

A language says where its source file goes inside the sandbox's box
directory, how to compile it (or ``None``), how to run it, its Judge0 CE
language id, and how its runtime treats limits: the JVM and V8 reserve
gigabytes of address space they never touch, so for them the heap is capped
by the runtime's own flag, the address space by the limit plus what the
runtime reserves, and the resident memory of the whole sandbox (its control
group, where the host has them) by the limit plus the runtime's own; they
also get more time and more threads than a native program.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable

import msgspec

from safexam.core.languages import LANGUAGE_NAMES

__all__ = [
    "BOX",
    "LANGUAGES",
    "Language",
    "get_language",
    "language_names",
]

# Where the compiled program and its source live inside every sandbox.
BOX = "/box"

# The sandbox sees only the system directories, so interpreters must be looked
# up on the system PATH, never on the worker's (a pyenv shim under /root would
# not exist inside).
SYSTEM_PATH = "/usr/local/bin:/usr/bin:/bin"

# Checks syntax without writing bytecode, so a syntax error is a compile
# error (shown once) instead of the same runtime error in every test.
_PY_CHECK = "import sys; compile(open(sys.argv[1], 'rb').read(), sys.argv[1], 'exec')"


def _which(name: str) -> str:
    return shutil.which(name, path=SYSTEM_PATH) or f"/usr/bin/{name}"


Argv = Callable[[int], list[str]]  # memory limit in MB -> argv


class Language(msgspec.Struct, frozen=True, kw_only=True):
    """How one language is compiled and run, in the sandbox and on Judge0."""

    name: str
    title: str
    source_name: str
    # argv builders take the memory limit in MB (the JVM and V8 need it as a flag).
    compile_argv: Argv | None
    run_argv: Argv
    # Compile writes the program into the box; otherwise the box stays read-only.
    compile_writes: bool
    judge0_id: int
    executables: tuple[str, ...]
    # False for runtimes that reserve far more address space than they use.
    limit_address_space: bool = True
    # Address space granted beyond the memory limit when the runtime's heap flag
    # enforces memory: what the runtime reserves up front, and no more.
    address_space_extra_mb: int = 0
    # Memory the sandbox as a whole may hold beyond the limit: the runtime's own
    # (the JVM's metaspace and code cache, V8's young generation and code), since
    # the heap flag caps only the heap. Resident memory, not address space.
    runtime_memory_mb: int = 0
    time_multiplier: float = 1.0
    # Threads count against RLIMIT_NPROC; the JVM starts a dozen before main().
    extra_processes: int = 0
    # Heap-exhaustion messages of the runtime, to tell memory_limit from a crash.
    memory_markers: tuple[str, ...] = ()

    def is_available(self) -> bool:
        """True when every executable this language needs exists on this machine."""
        return all(shutil.which(exe, path=SYSTEM_PATH) for exe in self.executables)


def _python() -> Language:
    python = _which("python3")
    return Language(
        name="python",
        title="Python 3",
        source_name="main.py",
        compile_argv=lambda _mb: [python, "-I", "-S", "-c", _PY_CHECK, f"{BOX}/main.py"],
        run_argv=lambda _mb: [python, "-I", "-B", f"{BOX}/main.py"],
        compile_writes=False,
        judge0_id=71,
        executables=("python3",),
        memory_markers=("MemoryError",),
    )


def _c() -> Language:
    gcc = _which("gcc")
    return Language(
        name="c",
        title="C (GCC, C17)",
        source_name="main.c",
        compile_argv=lambda _mb: [gcc, "-O2", "-std=gnu17", "-o", "main", "main.c", "-lm"],
        run_argv=lambda _mb: [f"{BOX}/main"],
        compile_writes=True,
        judge0_id=50,
        executables=("gcc",),
    )


def _cpp() -> Language:
    gxx = _which("g++")
    return Language(
        name="cpp",
        title="C++ (G++, C++17)",
        source_name="main.cpp",
        compile_argv=lambda _mb: [gxx, "-O2", "-std=gnu++17", "-o", "main", "main.cpp"],
        run_argv=lambda _mb: [f"{BOX}/main"],
        compile_writes=True,
        judge0_id=54,
        executables=("g++",),
        memory_markers=("std::bad_alloc",),
    )


_JVM_FLAGS = [
    "-XX:+UseSerialGC",
    "-XX:TieredStopAtLevel=1",
    "-XX:-UsePerfData",
    "-Xshare:auto",
    # Shrink what the JVM reserves up front, so a tight address-space cap fits.
    "-XX:CompressedClassSpaceSize=64m",
    "-XX:ReservedCodeCacheSize=32m",
    "-XX:MaxMetaspaceSize=128m",
]


def _java() -> Language:
    javac, java = _which("javac"), _which("java")
    return Language(
        name="java",
        title="Java (OpenJDK)",
        source_name="Main.java",
        compile_argv=lambda _mb: [
            javac,
            "-J-Xmx256m",
            "-J-XX:+UseSerialGC",
            "-J-XX:TieredStopAtLevel=1",
            "-J-XX:-UsePerfData",
            # No annotation processors: the compiler runs nothing but itself.
            "-proc:none",
            "-encoding",
            "UTF-8",
            "-d",
            ".",
            "Main.java",
        ],
        run_argv=lambda mb: [java, f"-Xmx{mb}m", "-Xss64m", *_JVM_FLAGS, "-cp", BOX, "Main"],
        compile_writes=True,
        judge0_id=62,
        executables=("javac", "java"),
        limit_address_space=False,
        address_space_extra_mb=2048,
        runtime_memory_mb=192,
        time_multiplier=2.0,
        extra_processes=48,
        memory_markers=("java.lang.OutOfMemoryError",),
    )


def _javascript() -> Language:
    node = _which("node")
    return Language(
        name="javascript",
        title="JavaScript (Node.js)",
        source_name="main.js",
        compile_argv=lambda _mb: [node, "--check", f"{BOX}/main.js"],
        run_argv=lambda mb: [node, f"--max-old-space-size={mb}", f"{BOX}/main.js"],
        compile_writes=False,
        judge0_id=63,
        executables=("node",),
        limit_address_space=False,
        address_space_extra_mb=1536,
        runtime_memory_mb=128,
        time_multiplier=1.5,
        extra_processes=16,
        memory_markers=(
            "JavaScript heap out of memory",
            "Allocation failed",
            "Array buffer allocation failed",
        ),
    )


_DESCRIBED = {lang.name: lang for lang in (_python(), _c(), _cpp(), _java(), _javascript())}
if set(_DESCRIBED) != set(LANGUAGE_NAMES):
    raise RuntimeError("every name in core.languages.LANGUAGE_NAMES needs one description here")

# The one list of names is core's (settings read it at start); here each is described.
LANGUAGES: dict[str, Language] = {name: _DESCRIBED[name] for name in LANGUAGE_NAMES}


def language_names() -> tuple[str, ...]:
    return tuple(LANGUAGES)


def get_language(name: str) -> Language:
    """The language called ``name``; ``KeyError`` for an unknown one."""
    return LANGUAGES[name]
