"""Our autosave against the peer baseline (bench/peers/), same load, same run.

Starts two servers with the same number of uvicorn workers on the same
database and Redis: SafeExam's API and ``bench/peers/fastapi_autosave.py``
(FastAPI + pydantic + SQLAlchemy ORM). The students sign in and start their
sessions on SafeExam's API once; then the same client processes save against
one server and the other in alternating phases (ours, peer, ours, peer, ...),
so both see the same machine load over the run. Prints every phase, the
median of each side and the ratios (throughput, and server CPU per save,
which is robust to other load on the machine)::

    SAFEXAM_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/safexam_bench \\
    SAFEXAM_REDIS_URL=redis://127.0.0.1:6379/5 \\
        .venv/bin/python bench/peer_compare.py --students 100 --rounds 3

The database must be migrated (``safexam db upgrade``) and have 2 x workers x 20
connections free (both servers keep a pool of 20 per worker; PostgreSQL's
default limit is 100, so stop other API processes on it first). Both servers
listen on 127.0.0.1 only and are stopped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from autosave import Phase, phase_figures, print_phase, run_phases, set_up

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def start_server(
    name: str, argv: list[str], port: int, workers: int, env: dict[str, str], logs: Path
) -> subprocess.Popen[bytes]:
    log = (logs / f"{name}.log").open("wb")
    proc = subprocess.Popen(
        [
            str(BIN / "uvicorn"),
            *argv,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--no-access-log",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{name} exited at start; see {logs / (name + '.log')}")
        with contextlib.suppress(OSError):
            # The peer has no health route: any HTTP answer means it is up.
            with contextlib.suppress(urllib.error.HTTPError):
                urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1)
            return proc
        time.sleep(0.3)
    proc.terminate()
    raise SystemExit(f"{name} did not start in 60 s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--students", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3, help="phases per server")
    parser.add_argument("--duration", type=float, default=15.0, help="measured seconds a phase")
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--workers", type=int, default=2, help="uvicorn workers of each server")
    parser.add_argument("--processes", type=int, default=2, help="client processes")
    parser.add_argument("--think-ms", type=float, default=0.0)
    parser.add_argument("--interval-ms", type=float, default=0.0)
    parser.add_argument("--port", type=int, default=8123, help="ours; the peer's is port + 1")
    args = parser.parse_args()
    database_url = os.environ.get("SAFEXAM_DATABASE_URL")
    if not database_url:
        print("set SAFEXAM_DATABASE_URL (a migrated database of its own)", file=sys.stderr)
        return 2
    if not 1 <= args.rounds <= 10 or not 1 <= args.students <= 2000:
        print("rounds must be 1..10 and students 1..2000", file=sys.stderr)
        return 2
    env = {
        **os.environ,
        # Both servers check the same CSRF signature and read the same sessions.
        "SAFEXAM_SECRET_KEY": os.environ.get("SAFEXAM_SECRET_KEY") or secrets.token_urlsafe(32),
        "SAFEXAM_COOKIE_SECURE": "false",
        "SAFEXAM_LOG_FORMAT": os.environ.get("SAFEXAM_LOG_FORMAT", "json"),
    }
    ours_url = f"http://127.0.0.1:{args.port}"
    peer_url = f"http://127.0.0.1:{args.port + 1}"
    with tempfile.TemporaryDirectory(prefix="safexam-peer-") as tmp:
        logs = Path(tmp)
        ours = start_server(
            "safexam",
            ["--factory", "safexam.app:create_app"],
            args.port,
            args.workers,
            env,
            logs,
        )
        try:
            peer = start_server(
                "peer",
                [
                    "--app-dir",
                    str(ROOT / "bench" / "peers"),
                    "--factory",
                    "fastapi_autosave:create_app",
                ],
                args.port + 1,
                args.workers,
                env,
                logs,
            )
            try:
                started = time.perf_counter()
                exam_id, emails = asyncio.run(set_up(database_url, args.students, 10))
                phases = []
                for i in range(args.rounds):
                    phases.append(Phase(f"safexam #{i + 1}", ours_url, args.warmup, args.duration))
                    phases.append(Phase(f"peer #{i + 1}", peer_url, args.warmup, args.duration))
                results = run_phases(
                    url=ours_url,
                    emails=emails,
                    exam_id=exam_id,
                    phases=phases,
                    processes=args.processes,
                    think_ms=args.think_ms,
                    interval_ms=args.interval_ms,
                    server_pids={"safexam": ours.pid, "peer": peer.pid},
                    started=started,
                )
            finally:
                peer.terminate()
                peer.wait(15)
        finally:
            ours.terminate()
            ours.wait(15)

    print(
        f"students={args.students} workers={args.workers} client processes={args.processes} "
        f"think_ms={args.think_ms} interval_ms={args.interval_ms}"
    )
    for result in results:
        print_phase(result)
    side: dict[str, list[dict[str, float]]] = {"safexam": [], "peer": []}
    for result in results:
        name = result.phase.name.split(" ")[0]
        figures = phase_figures(result)
        figures["cpu"] = figures.get(f"cpu_ms_per_save_{name}", float("nan"))
        side[name].append(figures)
    medians = {
        name: {
            key: statistics.median(f[key] for f in rows)
            for key in ("saves_per_s", "p50", "p95", "p99", "cpu")
        }
        for name, rows in side.items()
    }
    print("median of the phases:")
    for name, m in medians.items():
        print(
            f"  {name:<8} {m['saves_per_s']:7.0f} saves/s  p50 {m['p50']:6.1f}  p95 "
            f"{m['p95']:6.1f}  p99 {m['p99']:6.1f} ms  server CPU {m['cpu']:.2f} ms/save"
        )
    ratio = medians["safexam"]["saves_per_s"] / medians["peer"]["saves_per_s"]
    cpu_ratio = medians["peer"]["cpu"] / medians["safexam"]["cpu"]
    print(f"ratio (safexam / peer): throughput {ratio:.2f}x, server CPU per save {cpu_ratio:.2f}x")
    errors = sum(phase_figures(r)["errors"] for r in results)
    return 0 if not errors else 1


if __name__ == "__main__":
    sys.exit(main())
