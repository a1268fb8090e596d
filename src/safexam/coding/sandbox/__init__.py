"""The embedded runner: every compile and every test in a fresh bubblewrap sandbox.

- :mod:`.launcher`: the C launcher (``launcher.c``) in front of bwrap and as
  the sandbox's PID 1, built once per worker process, else stock tools;
- :mod:`.root`: the read-only root a worker prepares once, and bwrap's
  command line around it;
- :mod:`.process`: one sandboxed process tree, under its limits;
- :mod:`.cgroups`: memory, tasks and CPU time per sandbox (control groups);
- :mod:`.boxes`: throw-away uids and the per-submission box directories;
- :mod:`.verdicts`: how a finished program is judged;
- :mod:`.warm`: first-step sandboxes set up between judgings;
- :mod:`.shutdown`: what a stopping judge process removes;
- :mod:`.sandbox_runner`: :class:`SandboxRunner`, the ``CodeRunner`` that
  puts these together.
"""

from safexam.coding.sandbox.boxes import (
    SANDBOX_UID_BASE,
    SANDBOX_UID_SPAN,
    STALE_BOX_SECONDS,
    default_work_root,
    remove_stale_boxes,
    sandbox_processes,
    submission_box,
)
from safexam.coding.sandbox.cgroups import describe_limits, tasks_unbounded
from safexam.coding.sandbox.launcher import compiled_launcher, launcher_source, time_path
from safexam.coding.sandbox.process import Execution, Sandbox, bwrap_path, execute
from safexam.coding.sandbox.root import describe_setup
from safexam.coding.sandbox.sandbox_runner import COMPILE_LIMITS, SandboxConfig, SandboxRunner
from safexam.coding.sandbox.shutdown import SandboxCleanup, release_sandboxes
from safexam.coding.sandbox.verdicts import classify
from safexam.coding.sandbox.warm import WARM_MAX_AGE_S

__all__ = [
    "COMPILE_LIMITS",
    "SANDBOX_UID_BASE",
    "SANDBOX_UID_SPAN",
    "STALE_BOX_SECONDS",
    "WARM_MAX_AGE_S",
    "Execution",
    "Sandbox",
    "SandboxCleanup",
    "SandboxConfig",
    "SandboxRunner",
    "bwrap_path",
    "classify",
    "compiled_launcher",
    "default_work_root",
    "describe_limits",
    "describe_setup",
    "execute",
    "launcher_source",
    "release_sandboxes",
    "remove_stale_boxes",
    "sandbox_processes",
    "submission_box",
    "tasks_unbounded",
    "time_path",
]
