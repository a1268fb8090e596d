"""Keep one process of ``make run`` running: restart it when it dies, with backoff.

honcho stops every process as soon as one exits. On a laptop that turned one
crashed pool (an out-of-memory kill, a lost database connection at start) into
no API and no maintenance pool, and the maintenance pool is what auto-submits
at each deadline. ``safexam dev`` therefore runs each Procfile command under
this wrapper: a process that dies on its own is started again after 1 s, then
2, 4 ... up to 30 s while it keeps dying young, and everything stops only when
the wrapper itself is told to (Ctrl-C), which it passes on to its process.

Run as ``python -m safexam.cli.keepalive NAME COMMAND``; COMMAND is a shell
command line, as in the Procfile.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from types import FrameType

import structlog

log = structlog.get_logger("safexam.keepalive")

FIRST_DELAY_SECONDS = 1.0
MAX_DELAY_SECONDS = 30.0
# A process that ran this long was healthy: the next restart starts from the first delay.
HEALTHY_SECONDS = 60.0


def keep_running(name: str, command: str) -> int:
    child: subprocess.Popen[bytes] | None = None
    stopping = False

    def stop(signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        if child is not None and child.poll() is None:
            child.send_signal(signum)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    delay = FIRST_DELAY_SECONDS
    while True:
        started = time.monotonic()
        # `exec`: the process signalled is the program, not a shell around it.
        child = subprocess.Popen(["/bin/sh", "-c", f"exec {command}"])  # noqa: S603 - the Procfile's line
        returncode = child.wait()
        if stopping:
            return 0
        if time.monotonic() - started >= HEALTHY_SECONDS:
            delay = FIRST_DELAY_SECONDS
        log.warning("process_died", process=name, returncode=returncode, restart_in=delay)
        deadline = time.monotonic() + delay
        while time.monotonic() < deadline and not stopping:
            time.sleep(0.05)
        if stopping:
            return 0
        delay = min(delay * 2, MAX_DELAY_SECONDS)
        log.info("process_restarting", process=name)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        sys.stderr.write("usage: python -m safexam.cli.keepalive NAME COMMAND\n")
        return 2
    return keep_running(args[0], args[1])


if __name__ == "__main__":
    sys.exit(main())
