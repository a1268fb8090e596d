"""The ``safexam`` console script, run as a person (or a deploy script) runs it."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from safexam.auth.models import User
from safexam.auth.passwords import verify_password
from safexam.cli import build_parser, dev_judge_processes
from safexam.cli.common import CliError
from safexam.coding.languages import LANGUAGES
from safexam.coding.sandbox import bwrap_path
from safexam.core.migrate import alembic_config
from safexam.core.settings import Settings
from safexam.demo import DEMO_PASSWORD, EDUCATOR, STUDENTS
from safexam.exams.models import Enrollment, Exam, ExamItem, Question
from tests.fault_servers import free_port
from tests.helpers import login

if TYPE_CHECKING:
    from tests.helpers import ServiceUrls

SAFEXAM = Path(sys.executable).parent / "safexam"


def _env(services: ServiceUrls | None = None, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SAFEXAM_")}
    if services is not None:
        env["SAFEXAM_DATABASE_URL"] = services.database_url
        env["SAFEXAM_REDIS_URL"] = services.redis_url
        env["SAFEXAM_REDIS_NAMESPACE"] = services.namespace
    env["SAFEXAM_LOG_LEVEL"] = "WARNING"
    env.update(extra)
    return env


async def _safexam(
    env: dict[str, str], *args: str, stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(
        subprocess.run,
        [str(SAFEXAM), *args],
        input=stdin,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


async def test_users_create_then_the_user_signs_in(services: ServiceUrls, client: Any) -> None:
    done = await _safexam(
        _env(services),
        "users", "create", "--email", "Teacher@College.edu", "--name", "Ada Teacher",
        "--role", "educator", "--password-stdin",
        stdin="a long enough password\n",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "teacher@college.edu" in done.stdout
    me = await login(client, "teacher@college.edu", "a long enough password")
    assert me["role"] == "educator" and me["name"] == "Ada Teacher"
    # And the wrong password does not sign in.
    response = await client.post(
        "/api/v1/auth/login", json={"email": "teacher@college.edu", "password": "wrong password"}
    )
    assert response.status_code == 401


async def test_users_create_errors_name_the_problem(
    services: ServiceUrls, db: AsyncSession
) -> None:
    env = _env(services)
    base = ["users", "create", "--email", "s@college.edu", "--name", "S", "--password-stdin"]

    bad_role = await _safexam(env, *base, "--role", "teacher", stdin="password123\n")
    assert bad_role.returncode != 0
    assert "--role" in bad_role.stderr and "teacher" in bad_role.stderr

    short = await _safexam(env, *base, "--role", "student", stdin="short\n")
    assert short.returncode != 0
    assert "at least 8 characters" in short.stderr

    empty = await _safexam(env, *base, "--role", "student", stdin="")
    assert empty.returncode != 0
    assert "no password" in empty.stderr

    bad_email = await _safexam(
        env, "users", "create", "--email", "not-an-email", "--name", "S", "--role", "student",
        "--password-stdin", stdin="password123\n",
    )  # fmt: skip
    assert bad_email.returncode != 0
    assert "--email" in bad_email.stderr

    first = await _safexam(env, *base, "--role", "student", stdin="password123\n")
    assert first.returncode == 0, first.stderr
    duplicate = await _safexam(env, *base, "--role", "admin", stdin="password123\n")
    assert duplicate.returncode != 0
    assert "s@college.edu" in duplicate.stderr and "already exists" in duplicate.stderr
    assert "Traceback" not in duplicate.stderr

    roles = (await db.execute(select(User.role).where(User.email == "s@college.edu"))).scalars()
    assert list(roles) == ["student"]


async def test_commands_without_a_database_say_which_variable(services: ServiceUrls) -> None:
    done = await _safexam(
        _env(None), "users", "create", "--email", "a@b.c", "--name", "A", "--role", "admin",
        "--password-stdin", stdin="password123\n",
    )  # fmt: skip
    assert done.returncode != 0
    assert "SAFEXAM_DATABASE_URL" in done.stderr

    malformed = await _safexam(_env(services, SAFEXAM_PORT="eighty"), "db", "upgrade")
    assert malformed.returncode != 0
    assert "SAFEXAM_PORT" in malformed.stderr


async def test_db_upgrade_is_idempotent(services: ServiceUrls, db: AsyncSession) -> None:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    for _ in range(2):
        done = await _safexam(_env(services), "db", "upgrade")
        assert done.returncode == 0, done.stderr
    version = await db.scalar(text("SELECT version_num FROM alembic_version"))
    assert version == head


async def test_jobs_retry_requeues_dead_jobs_and_names_bad_ones(
    services: ServiceUrls, db: AsyncSession
) -> None:
    from safexam.jobs.models import Job

    def job(kind: str, status: str) -> Job:
        return Job(
            id=uuid.uuid4(), kind=kind, queue="grading", actor="grade_session", args={},
            status=status, attempts=5, error="worker lost\nConnectionRefusedError",
        )  # fmt: skip

    jobs = [job("grade_session", "dead"), job("judge", "dead"), job("grade_session", "succeeded")]
    dead_grade, dead_judge, done = (j.id for j in jobs)
    db.add_all(jobs)
    await db.commit()

    listed = await _safexam(_env(services), "jobs", "list", "--status", "dead")
    assert listed.returncode == 0, listed.stderr
    assert str(dead_grade) in listed.stdout and str(dead_judge) in listed.stdout
    assert str(done) not in listed.stdout
    assert "ConnectionRefusedError" in listed.stdout

    both = await _safexam(_env(services), "jobs", "retry", str(done), "--all-dead")
    assert both.returncode != 0 and "not both" in both.stderr
    refused = await _safexam(_env(services), "jobs", "retry", str(done), "not-an-id")
    assert refused.returncode != 0 and "'not-an-id' is not a job id" in refused.stderr
    kind_alone = await _safexam(_env(services), "jobs", "retry", str(dead_grade), "--kind", "judge")
    assert kind_alone.returncode != 0 and "--kind goes with --all-dead" in kind_alone.stderr
    negative = await _safexam(_env(services), "jobs", "list", "--limit", "-1")
    assert negative.returncode != 0 and "must be at least 1" in negative.stderr
    assert "Traceback" not in negative.stderr

    retried = await _safexam(_env(services), "jobs", "retry", "--all-dead", "--kind", "judge")
    assert retried.returncode == 0, retried.stderr
    assert "requeued 1 job(s)" in retried.stdout
    db.expire_all()
    statuses = {j.id: (j.status, j.attempts) for j in (await db.execute(select(Job))).scalars()}
    assert statuses[dead_judge] == ("pending", 0)
    assert statuses[dead_grade] == ("dead", 5)

    again = await _safexam(_env(services), "jobs", "retry", str(dead_grade), str(done))
    assert again.returncode == 1
    assert "requeued 1 job(s)" in again.stdout
    assert f"{done}: Only failed or dead jobs can be retried" in again.stderr
    db.expire_all()
    assert (await db.get(Job, dead_grade)).status == "pending"  # type: ignore[union-attr]


async def test_demo_loads_once_and_its_accounts_sign_in(
    services: ServiceUrls, db: AsyncSession, client: Any
) -> None:
    for _ in range(2):
        done = await _safexam(_env(services), "demo")
        assert done.returncode == 0, done.stderr
        assert EDUCATOR[0] in done.stdout and DEMO_PASSWORD in done.stdout

    async def count(model: Any) -> int:
        return int(await db.scalar(select(func.count()).select_from(model)) or 0)

    assert await count(User) == 1 + len(STUDENTS)
    assert await count(Exam) == 1
    assert await count(Question) == await count(ExamItem) == 5
    # One question of every kind, so a new student meets every input of the exam page.
    kinds = (await db.scalars(select(Question.kind))).all()
    assert sorted(kinds) == ["coding", "mcq_multi", "mcq_single", "numeric", "short_text"]
    assert await count(Enrollment) == len(STUDENTS)
    exam = (await db.execute(select(Exam))).scalar_one()
    assert exam.status == "published"
    now = await db.scalar(text("SELECT now()"))
    assert exam.opens_at <= now < exam.closes_at

    assert (await login(client, EDUCATOR[0], DEMO_PASSWORD))["role"] == "educator"
    student = await db.scalar(select(User).where(User.email == STUDENTS[0][0]))
    assert student is not None and student.role == "student"
    assert verify_password(student.password_hash, DEMO_PASSWORD)


async def test_doctor_reports_configured_services(services: ServiceUrls) -> None:
    done = await _safexam(_env(services), "doctor")
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert any(line.startswith("ok") and "database" in line for line in lines), done.stdout
    assert any(line.startswith("ok") and "redis" in line for line in lines), done.stdout
    # Which runner and languages work here: each language ran a hello world in the sandbox.
    for name, lang in LANGUAGES.items():
        [line] = [line for line in lines if line.split()[1:3] == ["language", name]]
        if lang.is_available() and bwrap_path() is not None:
            assert line.startswith("ok") and "hello world ran in" in line, line

    unreachable = await _safexam(
        _env(services, SAFEXAM_REDIS_URL="redis://127.0.0.1:1/0"), "doctor"
    )
    assert unreachable.returncode != 0
    assert any(
        line.startswith("fail") and "redis" in line for line in unreachable.stdout.splitlines()
    ), unreachable.stdout


async def test_doctor_reports_the_judge0_mode(services: ServiceUrls) -> None:
    judge0 = {
        "SAFEXAM_CODE_RUNNER": "judge0",
        "SAFEXAM_JUDGE0_URL": "http://judge0.test:2358",
        "SAFEXAM_JUDGE0_LANGUAGE_IDS": "python=92",
    }
    polling = await _safexam(_env(services, **judge0), "doctor")
    assert polling.returncode == 0, polling.stdout + polling.stderr
    [line] = [line for line in polling.stdout.splitlines() if "judge0 mode" in line]
    assert line.startswith("ok") and "polling" in line and "python=92" in line, line

    callback = await _safexam(
        _env(
            services,
            **judge0,
            SAFEXAM_SECRET_KEY="a-stable-key-shared-by-api-and-workers",
            SAFEXAM_JUDGE0_CALLBACK_URL="https://exam.college.test/",
            SAFEXAM_JUDGE0_CALLBACK_WAIT_SECONDS="45",
        ),
        "doctor",
    )
    assert callback.returncode == 0, callback.stdout + callback.stderr
    [line] = [line for line in callback.stdout.splitlines() if "judge0 mode" in line]
    assert "callback to https://exam.college.test/api/v1/judge0/callbacks/" in line, line
    assert "45 s" in line and "polling" not in line, line

    bad_ids = {**judge0, "SAFEXAM_JUDGE0_LANGUAGE_IDS": "python=71,ruby=72"}
    malformed = await _safexam(_env(services, **bad_ids), "doctor")
    assert malformed.returncode != 0
    assert "SAFEXAM_JUDGE0_LANGUAGE_IDS" in malformed.stderr and "ruby" in malformed.stderr


def _pool_process(marker: str, pool: str, *, missing_ok: bool = False) -> int | None:
    """The pid of a pool's program started by `make run`'s restarting wrapper."""
    wrappers = {
        int(line.split(":", 1)[0])
        for line in _processes_mentioning(marker)
        if "safexam.cli.keepalive" in line and f" {pool} " in line
    }
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            stat = (proc / "stat").read_text().rsplit(") ", 1)[-1].split()
        except OSError:
            continue
        if stat[0] != "Z" and int(stat[1]) in wrappers:
            return int(proc.name)
    if missing_ok:
        return None
    raise AssertionError(f"no {pool} process under {wrappers}")


def _processes_mentioning(marker: str) -> list[str]:
    """Processes whose command line or environment names ``marker`` (our data folder)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes()
            environ = (proc / "environ").read_bytes()
            state = (proc / "stat").read_text().split(") ")[-1][:1]
        except OSError:
            continue
        if state != "Z" and (marker.encode() in cmdline or marker.encode() in environ):
            command = cmdline.replace(b"\0", b" ").decode(errors="replace")
            found.append(f"{proc.name}: {command}")
    return found


def _wait_ready(url: str, process: subprocess.Popen[str], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, "safexam dev exited early"
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise AssertionError(f"{url} not ready within {timeout} s")


def _start_dev(env: dict[str, str], log: Any) -> subprocess.Popen[str]:
    # A session of its own, so the SIGINT below reaches it as a Ctrl-C would.
    return subprocess.Popen(
        [str(SAFEXAM), "dev"],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def _ctrl_c(process: subprocess.Popen[str]) -> int:
    try:
        os.killpg(process.pid, signal.SIGINT)
        return process.wait(timeout=60)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)


@pytest.fixture
def dev_data_dir() -> Iterator[str]:
    # Short, so the embedded servers' unix socket paths stay within the limit.
    path = tempfile.mkdtemp(prefix="sx-dev-")
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_dev_leaves_a_core_to_the_api() -> None:
    assert [dev_judge_processes(n) for n in (None, 1, 2, 4, 16)] == [1, 1, 1, 3, 15]


def test_dev_runs_everything_embedded_and_stops_cleanly(dev_data_dir: str) -> None:
    """`make run` on a bare machine: serve, sign in, Ctrl-C, nothing left, data kept."""
    data_dir = dev_data_dir
    port = free_port()
    # One judge process: the pools all start, on a 2-core CI machine too.
    env = _env(None, SAFEXAM_DATA_DIR=data_dir, SAFEXAM_PORT=str(port), SAFEXAM_JUDGE_PROCESSES="1")
    base = f"http://127.0.0.1:{port}"
    log_path = Path(data_dir) / "dev.log"
    with log_path.open("w") as log, httpx.Client(base_url=base, timeout=10) as browser:
        process = _start_dev(env, log)
        try:
            _wait_ready(f"{base}/readyz", process, timeout=120)
            token = browser.get("/api/v1/auth/csrf").json()["csrf_token"]
            signed_in = browser.post(
                "/api/v1/auth/login",
                json={"email": EDUCATOR[0], "password": DEMO_PASSWORD},
                headers={"X-CSRF-Token": token},
            )
            assert signed_in.status_code == 200, signed_in.text
            me = browser.get("/api/v1/auth/me")
            assert me.status_code == 200 and me.json()["role"] == "educator"

            # Another terminal reaches the same services, queues and key from the env file.
            exported = (Path(data_dir) / "env").read_text()
            for name in ("SAFEXAM_BROKER_URL", "SAFEXAM_REDIS_NAMESPACE", "SAFEXAM_SECRET_KEY"):
                assert f"export {name}=" in exported, exported

            # A pool that dies is started again; the API and the other pools go on.
            first = _pool_process(data_dir, "maintenance")
            os.kill(first, signal.SIGKILL)
            deadline = time.monotonic() + 20
            again_pid = None
            while time.monotonic() < deadline:
                again_pid = _pool_process(data_dir, "maintenance", missing_ok=True)
                if again_pid not in (None, first):
                    break
                time.sleep(0.2)
            assert again_pid not in (None, first), log_path.read_text()[-3000:]
            assert process.poll() is None
            assert browser.get("/readyz").status_code == 200
        finally:
            assert _ctrl_c(process) == 0, log_path.read_text()[-3000:]
        output = log_path.read_text()
        assert base in output and DEMO_PASSWORD in output
        assert "SAFEXAM_COOKIE_SECURE=false" in output
        # The stop reaches the API, the pools and both embedded servers.
        deadline = time.monotonic() + 10
        while _processes_mentioning(data_dir) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _processes_mentioning(data_dir) == [], output[-3000:]
        assert (Path(data_dir) / "secret_key").stat().st_mode & 0o077 == 0

        # A restart keeps users and sessions: the same browser is still signed in.
        process = _start_dev(env, log)
        try:
            _wait_ready(f"{base}/readyz", process, timeout=120)
            again = browser.get("/api/v1/auth/me")
            assert again.status_code == 200, again.text
            assert again.json()["id"] == me.json()["id"]
        finally:
            assert _ctrl_c(process) == 0, log_path.read_text()[-3000:]
    assert _processes_mentioning(data_dir) == []


def test_forwarded_headers_are_believed_from_named_proxies_only() -> None:
    from safexam.cli.serve import proxy_options

    parser = build_parser()
    plain = parser.parse_args(["serve"])
    assert proxy_options(Settings(), plain) == {"proxy_headers": False}
    named = Settings(trusted_proxies=("10.0.0.5", "172.30.0.0/24"))
    assert proxy_options(named, plain) == {
        "proxy_headers": True,
        "forwarded_allow_ips": "10.0.0.5,172.30.0.0/24",
    }
    flagged = parser.parse_args(["serve", "--forwarded-allow-ips", "127.0.0.1"])
    assert proxy_options(Settings(), flagged)["forwarded_allow_ips"] == "127.0.0.1"
    anyone = parser.parse_args(["serve", "--forwarded-allow-ips", "*"])
    with pytest.raises(CliError, match="SAFEXAM_TRUSTED_PROXIES"):
        proxy_options(Settings(), anyone)
