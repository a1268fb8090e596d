"""The ``safexam`` command: migrations, users, the demo, the API server, checks and ``dev``.

Every subcommand reads the same ``SAFEXAM_*`` settings as the API. Output
meant for the person at the terminal goes to stdout/stderr directly (it is the
interface, not a log); progress of long-running work is logged with structlog.
A failure exits non-zero with one line that says what was wrong.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import json
import os
import secrets
import shlex
import signal
import subprocess
import sys
from collections.abc import Callable, Coroutine, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar
from urllib.parse import urlsplit, urlunsplit

import structlog

from safexam.core.settings import Settings, SettingsError, load_settings

__all__ = [
    "DOCTOR_CHECKS",
    "PROJECT_ROOT",
    "WORKER_POOLS",
    "CheckResult",
    "build_parser",
    "doctor_check",
    "main",
]

log = structlog.get_logger(__name__)

T = TypeVar("T")

# The checkout (editable install): where the Procfile and migrations live.
PROJECT_ROOT = Path(__file__).resolve().parents[2]
# DESIGN section 6: one Dramatiq queue per pool, each pool sized on its own.
WORKER_POOLS = ("grading", "judge", "regrade", "qie", "maintenance")


class CliError(Exception):
    """A problem the user can fix; printed as ``error: <message>``, exit code 1."""


def _out(text: str = "") -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def _err(text: str) -> None:
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


def _settings(environ: dict[str, str] | None = None) -> Settings:
    try:
        return load_settings(environ)
    except SettingsError as exc:
        raise CliError(str(exc)) from None


def _require_database(settings: Settings) -> str:
    if settings.database_url is None:
        raise CliError(
            "SAFEXAM_DATABASE_URL is not set (`make run` starts an embedded PostgreSQL and sets it)"
        )
    return settings.database_url


def _run_db(settings: Settings, work: Callable[[Any], Coroutine[Any, Any, T]]) -> T:
    """Run ``work(session)`` against the configured database, then dispose the engine."""
    from safexam.core.db import create_engine, create_sessionmaker

    async def runner() -> T:
        engine = create_engine(settings.async_database_url, pool_size=1)
        try:
            async with create_sessionmaker(engine)() as session:
                return await work(session)
        finally:
            await engine.dispose()

    return asyncio.run(runner())


# --- safexam db ---------------------------------------------------------------------------


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    from safexam.core.migrate import upgrade

    url = _require_database(_settings())
    upgrade(url, args.revision)
    _out(f"database upgraded to {args.revision}")
    return 0


def cmd_db_downgrade(args: argparse.Namespace) -> int:
    from safexam.core.migrate import downgrade

    url = _require_database(_settings())
    downgrade(url, args.revision)
    _out(f"database downgraded to {args.revision}")
    return 0


# --- safexam users ------------------------------------------------------------------------


def _read_password(args: argparse.Namespace) -> str | None:
    if args.no_password:
        return None
    if args.password_stdin:
        line = sys.stdin.readline()
        password = line.rstrip("\r\n")
        if not password:
            raise CliError("--password-stdin: no password on standard input")
        return password
    if not sys.stdin.isatty():
        raise CliError(
            "no terminal to prompt for a password: use --password-stdin or --no-password"
        )
    first = getpass.getpass("Password: ")
    if first != getpass.getpass("Repeat password: "):
        raise CliError("the two passwords differ")
    return first


def cmd_users_create(args: argparse.Namespace) -> int:
    from safexam.auth.service import create_user
    from safexam.core.errors import ApiError

    settings = _settings()
    _require_database(settings)
    email = args.email.strip()
    if "@" not in email.strip("@") or any(c.isspace() for c in email):
        raise CliError(f"--email: {args.email!r} is not an email address")
    password = _read_password(args)

    async def work(db: Any) -> Any:
        return await create_user(db, email=email, name=args.name, role=args.role, password=password)

    try:
        user = _run_db(settings, work)
    except ApiError as exc:
        raise CliError(exc.message) from None
    _out(f"created {user.role} {user.email} (id {user.id})")
    return 0


# --- safexam jobs -------------------------------------------------------------------------

JOB_STATUSES = ("pending", "queued", "running", "succeeded", "failed", "dead")


def _positive_int(text: str) -> int:
    # PostgreSQL refuses a negative LIMIT: say so here rather than with a traceback.
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def cmd_jobs_list(args: argparse.Namespace) -> int:
    from sqlalchemy import select

    from safexam.jobs.models import Job

    settings = _settings()
    _require_database(settings)

    async def work(db: Any) -> list[Any]:
        query = select(Job).order_by(Job.created_at.desc()).limit(args.limit)
        if args.status:
            query = query.where(Job.status == args.status)
        if args.kind:
            query = query.where(Job.kind == args.kind)
        return list((await db.execute(query)).scalars())

    jobs = _run_db(settings, work)
    for job in jobs:
        error = (job.error or "").strip().splitlines()
        _out(
            f"{job.id}  {job.kind:<12} {job.status:<9} attempts {job.attempts}/{job.max_attempts}"
            f"  created {job.created_at:%Y-%m-%d %H:%M:%S}"
            + (f"  error: {error[-1][:120]}" if error else "")
        )
    if not jobs:
        _out("no jobs match")
    return 0


def cmd_jobs_retry(args: argparse.Namespace) -> int:
    import uuid

    from sqlalchemy import select

    from safexam.core.errors import ApiError
    from safexam.jobs.models import Job
    from safexam.jobs.service import requeue_job

    settings = _settings()
    _require_database(settings)
    if bool(args.job_ids) == bool(args.all_dead):
        raise CliError("give job ids or --all-dead (not both)")
    if args.kind and not args.all_dead:
        raise CliError("--kind goes with --all-dead; job ids name their jobs already")
    ids: list[uuid.UUID] = []
    for text_id in args.job_ids:
        try:
            ids.append(uuid.UUID(text_id))
        except ValueError:
            raise CliError(f"{text_id!r} is not a job id") from None

    async def work(db: Any) -> tuple[int, list[str]]:
        targets = ids
        if args.all_dead:
            query = select(Job.id).where(Job.status == "dead").order_by(Job.created_at)
            if args.kind:
                query = query.where(Job.kind == args.kind)
            targets = list((await db.execute(query)).scalars())
        done, problems = 0, []
        for job_id in targets:
            try:
                await requeue_job(db, job_id)
                done += 1
            except ApiError as exc:
                await db.rollback()
                problems.append(f"{job_id}: {exc.message}")
        return done, problems

    done, problems = _run_db(settings, work)
    for problem in problems:
        _err(f"error: {problem}")
    # This process has no broker: the rows are pending, and the maintenance
    # pool's outbox sweep sends them (its whole job is to send pending rows).
    _out(f"requeued {done} job(s); the maintenance pool sends them within seconds")
    return 1 if problems else 0


# --- safexam demo -------------------------------------------------------------------------


def _load_demo(settings: Settings) -> Any:
    from safexam.demo import load_demo

    return _run_db(settings, load_demo)


def cmd_demo(args: argparse.Namespace) -> int:
    settings = _settings()
    _require_database(settings)
    summary = _load_demo(settings)
    _out("demo loaded" if summary.created else "demo already present")
    _print_demo(summary)
    return 0


def _print_demo(summary: Any) -> None:
    _out(f"    educator: {summary.educator_email}")
    _out(f"    students: {', '.join(summary.student_emails)}")
    _out(f"    password (all three): {summary.password}")
    _out(f"    exam: {summary.exam_id} (published, open now)")


# --- safexam serve ------------------------------------------------------------------------


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    settings = _settings()
    _require_database(settings)
    uvicorn.run(
        "safexam.app:create_app",
        factory=True,
        host=args.host or settings.host,
        port=args.port or settings.port,
        workers=args.workers,
        # Our own middleware logs one structured access line per request.
        access_log=False,
        log_level=settings.log_level.lower(),
        proxy_headers=args.proxy_headers,
        forwarded_allow_ips=args.forwarded_allow_ips,
        timeout_graceful_shutdown=10,
    )
    return 0


# --- safexam doctor -----------------------------------------------------------------------


@dataclass(frozen=True)
class CheckResult:
    """One line of ``safexam doctor``: ok (works), warn (off or degraded), fail (broken)."""

    name: str
    status: Literal["ok", "warn", "fail"]
    detail: str


DoctorCheck = Callable[[Settings], CheckResult | list[CheckResult]]

# Each check gets the settings and says what it found. Domains add theirs with
# ``@doctor_check`` (e.g. the code runner checks the sandbox or Judge0).
DOCTOR_CHECKS: list[DoctorCheck] = []


def doctor_check(check: DoctorCheck) -> DoctorCheck:
    """Register a ``safexam doctor`` check."""
    DOCTOR_CHECKS.append(check)
    return check


def _probe(coro: Coroutine[Any, Any, T], timeout: float = 5.0) -> T:
    async def bounded() -> T:
        return await asyncio.wait_for(coro, timeout)

    return asyncio.run(bounded())


def schema_differences(settings: Settings) -> list[str]:
    """How the database's schema differs from the models (empty when they agree).

    The initial migration is still edited in place before the first release, so
    a database migrated by an older checkout can carry the head revision and
    still lack a column; this says so instead of failing at the first query.
    """
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from sqlalchemy.engine import Connection

    from safexam.core.db import create_engine
    from safexam.models import Base

    def compare(connection: Connection) -> list[str]:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return [repr(diff) for diff in compare_metadata(context, Base.metadata)]

    async def run() -> list[str]:
        engine = create_engine(settings.async_database_url, pool_size=1)
        try:
            async with engine.connect() as conn:
                return await conn.run_sync(compare)
        finally:
            await engine.dispose()

    return _probe(run(), timeout=30)


@doctor_check
def check_database(settings: Settings) -> CheckResult:
    if settings.database_url is None:
        return CheckResult(
            "database", "warn", "SAFEXAM_DATABASE_URL not set (`make run` embeds PostgreSQL)"
        )
    from alembic.script import ScriptDirectory
    from sqlalchemy import text

    from safexam.core.db import create_engine
    from safexam.core.migrate import alembic_config

    async def revision() -> str | None:
        engine = create_engine(settings.async_database_url, pool_size=1)
        try:
            async with engine.connect() as conn:
                exists = await conn.scalar(text("SELECT to_regclass('alembic_version')"))
                if exists is None:
                    return None
                value = await conn.scalar(text("SELECT version_num FROM alembic_version"))
                return None if value is None else str(value)
        finally:
            await engine.dispose()

    try:
        current = _probe(revision())
    except Exception as exc:
        return CheckResult("database", "fail", f"unreachable: {type(exc).__name__}: {exc}")
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if current != head:
        return CheckResult(
            "database", "fail", f"at revision {current}, code expects {head}: `safexam db upgrade`"
        )
    differences = schema_differences(settings)
    if differences:
        return CheckResult(
            "database", "fail", f"schema differs from the code in {len(differences)} places"
        )
    return CheckResult("database", "ok", f"reachable, schema at {head}")


@doctor_check
def check_redis(settings: Settings) -> list[CheckResult]:
    if settings.redis_url is None:
        return [CheckResult("redis", "warn", "SAFEXAM_REDIS_URL not set (`make run` embeds Redis)")]
    from safexam.core.redis import create_redis

    async def ping() -> bool:
        client = create_redis(settings.redis_url or "")
        try:
            return bool(await client.ping())
        finally:
            await client.aclose()

    results: list[CheckResult] = []
    try:
        _probe(ping())
        results.append(CheckResult("redis", "ok", "reachable"))
    except Exception as exc:
        results.append(CheckResult("redis", "fail", f"unreachable: {type(exc).__name__}: {exc}"))
    broker = settings.broker_url or settings.redis_url
    kind = "RabbitMQ" if broker.startswith("amqp") else "Redis"
    results.append(CheckResult("broker", "ok", f"{kind} ({_redact(broker)})"))
    return results


@doctor_check
def check_security(settings: Settings) -> list[CheckResult]:
    results = [CheckResult("environment", "ok", settings.env)]
    if os.environ.get("SAFEXAM_SECRET_KEY"):
        results.append(CheckResult("secret key", "ok", "set"))
    else:
        results.append(
            CheckResult("secret key", "warn", "not set: a random key per process, sessions die")
        )
    if settings.cookie_secure:
        results.append(CheckResult("cookies", "ok", "Secure (HTTPS only)"))
    else:
        results.append(CheckResult("cookies", "warn", "Secure flag off (plain-HTTP development)"))
    return results


@doctor_check
def check_outside_services(settings: Settings) -> list[CheckResult]:
    results: list[CheckResult] = []
    if settings.oidc_client_id:
        domains = ", ".join(settings.oidc_allowed_domains) or "any domain"
        results.append(CheckResult("google sign-in", "ok", f"{settings.oidc_issuer} ({domains})"))
    else:
        results.append(CheckResult("google sign-in", "warn", "off (SAFEXAM_OIDC_CLIENT_ID)"))
    # The runner, the sandbox's set-up, and each language: a hello world
    # compiled and run through the real sandbox.
    from safexam.coding.runners import doctor_checks

    results += [CheckResult(*check) for check in doctor_checks(settings)]
    if settings.llm_base_url:
        model = settings.llm_model or "default model"
        results.append(
            CheckResult("question generator", "ok", f"{settings.llm_base_url} ({model})")
        )
    else:
        results.append(
            CheckResult("question generator", "ok", "embedded (SAFEXAM_LLM_BASE_URL adds an LLM)")
        )
    return results


def _redact(url: str) -> str:
    """The URL without its password, fit to print."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username or ''}:***@{parts.hostname or ''}"
    if parts.port is not None:
        netloc += f":{parts.port}"
    return urlunsplit(parts._replace(netloc=netloc))


def cmd_doctor(args: argparse.Namespace) -> int:
    settings = _settings()
    failed = False
    for check in DOCTOR_CHECKS:
        try:
            outcome = check(settings)
        except Exception as exc:
            outcome = CheckResult(check.__name__, "fail", f"{type(exc).__name__}: {exc}")
        for result in outcome if isinstance(outcome, list) else [outcome]:
            failed = failed or result.status == "fail"
            _out(f"{result.status:<4}  {result.name:<20} {result.detail}")
    return 1 if failed else 0


# --- safexam dev: the `make run` supervisor ---------------------------------------------------


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
    """Shell exports of the services in use, for running single pieces in another terminal."""
    names = (
        "SAFEXAM_DATABASE_URL",
        "SAFEXAM_REDIS_URL",
        "SAFEXAM_COOKIE_SECURE",
        "SAFEXAM_DATA_DIR",
    )
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
        # `exec`: the process honcho signals is the program, not a shell around it.
        manager.add_process(
            process.name,
            f"exec {process.cmd}",
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


def cmd_dev(args: argparse.Namespace) -> int:
    from safexam.core.logging import configure_logging
    from safexam.core.migrate import upgrade

    env = dict(os.environ)
    env.setdefault("SAFEXAM_ENV", "development")
    data_dir = Path(env.get("SAFEXAM_DATA_DIR") or PROJECT_ROOT / ".safexam").resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    env["SAFEXAM_DATA_DIR"] = str(data_dir)
    configure_logging(_settings(env))
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
        settings = _settings(env)
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
        summary = _load_demo(settings)
        pools, why = _ready_pools(env)
        _write_env_file(data_dir / "env", env)
        url = f"http://{settings.host}:{settings.port}"
        _out("")
        _out(f"SafeExam is starting at {url}  (API docs: {url}/schema)")
        for line in started:
            _out(f"  embedded {line}")
        for line in notes:
            _out(f"  {line}")
        _out("  sign in (GET /api/v1/auth/csrf, then POST /api/v1/auth/login) as a demo account:")
        _print_demo(summary)
        _out(f"  worker pools: {', '.join(pools) or 'none'}{f' ({why})' if why else ''}")
        _out(f"  other terminals: `source {data_dir / 'env'}` to reach the same services")
        _out("  stop with Ctrl-C")
        _out("")
        rc = _supervise(["web", *pools], env)
    _out("SafeExam stopped; data kept in " + str(data_dir))
    return rc


# --- the parser ---------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    """The whole command tree (tests check Procfile and compose commands against it)."""
    from safexam.auth.models import ROLES

    parser = argparse.ArgumentParser(
        prog="safexam", description="SafeExam: exams, autosave and asynchronous grading."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    db = commands.add_parser("db", help="database migrations").add_subparsers(
        dest="db_command", required=True, metavar="ACTION"
    )
    up = db.add_parser("upgrade", help="migrate to a revision (default: head)")
    up.add_argument("revision", nargs="?", default="head")
    up.set_defaults(handler=cmd_db_upgrade)
    down = db.add_parser("downgrade", help="migrate down to a revision (default: base)")
    down.add_argument("revision", nargs="?", default="base")
    down.set_defaults(handler=cmd_db_downgrade)

    users = commands.add_parser("users", help="manage users").add_subparsers(
        dest="users_command", required=True, metavar="ACTION"
    )
    create = users.add_parser("create", help="create a user")
    create.add_argument("--email", required=True)
    create.add_argument("--name", required=True)
    create.add_argument("--role", required=True, choices=ROLES)
    secret = create.add_mutually_exclusive_group()
    secret.add_argument(
        "--password-stdin", action="store_true", help="read the password from standard input"
    )
    secret.add_argument(
        "--no-password", action="store_true", help="no password (Google sign-in only)"
    )
    create.set_defaults(handler=cmd_users_create)

    jobs = commands.add_parser("jobs", help="inspect and retry background jobs").add_subparsers(
        dest="jobs_command", required=True, metavar="ACTION"
    )
    listing = jobs.add_parser("list", help="the newest jobs, optionally by status and kind")
    listing.add_argument("--status", choices=JOB_STATUSES)
    listing.add_argument("--kind", help="grade_session, judge, regrade, qie, ...")
    listing.add_argument("--limit", type=_positive_int, default=50)
    listing.set_defaults(handler=cmd_jobs_list)
    retry = jobs.add_parser("retry", help="run failed or dead jobs again (attempts start over)")
    retry.add_argument("job_ids", nargs="*", metavar="JOB_ID")
    retry.add_argument("--all-dead", action="store_true", help="every dead job (see --kind)")
    retry.add_argument("--kind", help="with --all-dead: only jobs of this kind")
    retry.set_defaults(handler=cmd_jobs_retry)

    commands.add_parser("demo", help="load the demo users and exam").set_defaults(handler=cmd_demo)

    serve = commands.add_parser("serve", help="run the API (uvicorn)")
    serve.add_argument("--host", help="default: SAFEXAM_HOST")
    serve.add_argument("--port", type=int, help="default: SAFEXAM_PORT")
    serve.add_argument(
        "--workers",
        type=int,
        default=int(os.environ.get("SAFEXAM_WEB_WORKERS", "1")),
        help="API processes (default: SAFEXAM_WEB_WORKERS or 1)",
    )
    serve.add_argument(
        "--proxy-headers", action="store_true", help="trust X-Forwarded-* from a reverse proxy"
    )
    serve.add_argument("--forwarded-allow-ips", default="127.0.0.1")
    serve.set_defaults(handler=cmd_serve)

    commands.add_parser("doctor", help="show what is configured and reachable").set_defaults(
        handler=cmd_doctor
    )
    commands.add_parser(
        "dev", help="run everything locally (embedded PostgreSQL and Redis when not configured)"
    ).set_defaults(handler=cmd_dev)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``safexam`` console script."""
    args = build_parser().parse_args(argv)
    try:
        code: int = args.handler(args)
    except CliError as exc:
        _err(f"error: {exc}")
        return 1
    except KeyboardInterrupt:
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
