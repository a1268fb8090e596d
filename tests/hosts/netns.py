"""SafeExam spread over separate hosts on one machine: network namespaces on a private bridge.

Each host is a network namespace with an address of its own on a private
/24 (``10.77.<n>.0/24``, ``n`` free on this machine). Every namespace has one
veth whose other end is a port of a bridge living in a namespace of its own
(the "switch"); the root namespace gets a port too, at ``.1``: that is where
the test (the students and the operator) stands. Nothing routes further: the
namespaces have no default route, so their traffic stays on the bridge.

Hosts, as a small deployment has them:

- ``db``: a private PostgreSQL (``initdb`` + ``postgres`` from Debian's
  binaries, as the ``postgres`` user, in a temporary folder) and a Redis,
  listening on the host's address only;
- ``api1``, ``api2``: the Procfile's ``web`` line (``safexam serve``), after
  its ``release`` line (``safexam db upgrade``) ran once on ``api1``;
- ``work1``, ``work2``: the Procfile's ``judge``, ``grading`` and
  ``maintenance`` lines (one judge process each: the machine's cores are
  shared by both);
- ``proxy``: Debian's Caddy, round robin over the API hosts with active and
  passive health checks and retries (:func:`caddyfile`).

A host is cut off by setting its switch port down (``ip link set ... down``):
its processes keep running, their packets go nowhere, as when a cable or a
top-of-rack switch fails. Names carry the creating process's id, so a run
killed before its clean-up is recognised and removed by the next one
(:func:`remove_leftovers`), processes included; :meth:`Cluster.close` removes
everything this run made, whatever happened.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
PG_BIN = Path(os.environ.get("SAFEXAM_FAULTS_PG_BIN", "/usr/lib/postgresql/15/bin"))
PREFIX = "sxh"
NETNS_DIR = Path("/run/netns")
#: The run's folder (databases, logs): ``<tmp>/safexam-hosts-<pid>-<random>``.
TMP_PREFIX = "safexam-hosts-"

#: The hosts and the last byte of their address.
ADDRESSES = {"proxy": 10, "api1": 21, "api2": 22, "work1": 31, "work2": 32, "db": 40}
API_PORT = 8000
PROXY_PORT = 8080
#: Pools each worker host runs (Procfile lines), one process each.
WORKER_POOLS = ("judge", "grading", "maintenance")

__all__ = [
    "ADDRESSES",
    "Cluster",
    "Host",
    "Network",
    "Proc",
    "caddyfile",
    "cluster",
    "missing",
    "procfile",
    "remove_leftovers",
    "stop_all",
]


def missing() -> str | None:
    """Why hosts cannot be made here (not root, no ``ip``), or None when they can."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    if shutil.which("ip") is None:
        return "the ip command (iproute2) is not installed"
    return None


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], check=check, capture_output=True, text=True, timeout=30)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _kill_namespace_processes(netns: str) -> None:
    """SIGKILL whatever still runs in ``netns`` (only this module starts processes there)."""
    for _ in range(5):
        listed = _ip("netns", "pids", netns, check=False).stdout.split()
        pids = [int(p) for p in listed if p.isdigit()]
        if not pids:
            return
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.1)


def remove_leftovers() -> list[str]:
    """Remove the namespaces and links of runs whose process is gone; what was removed."""
    removed: list[str] = []
    pattern = re.compile(rf"^{PREFIX}-(\d+)-")
    for line in _ip("netns", "list", check=False).stdout.splitlines():
        name = line.split()[0] if line.split() else ""
        match = pattern.match(name)
        if match and not _alive(int(match.group(1))):
            _kill_namespace_processes(name)
            _ip("netns", "del", name, check=False)
            removed.append(name)
    links = json.loads(_ip("-j", "link", "show", check=False).stdout or "[]")
    for link in links:
        name = str(link.get("ifname", ""))
        match = re.fullmatch(rf"{PREFIX}(\d+)", name)
        if match and not _alive(int(match.group(1))):
            _ip("link", "del", name, check=False)
            removed.append(name)
    for folder in Path(tempfile.gettempdir()).glob(f"{TMP_PREFIX}*-*"):
        owner = folder.name[len(TMP_PREFIX) :].split("-", 1)[0]
        if owner.isdigit() and not _alive(int(owner)):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(str(folder))
    return removed


def _free_subnet(owner: int) -> int:
    """A third byte ``n`` such that nothing on this machine routes ``10.77.n.0/24`` yet."""
    routes = json.loads(_ip("-j", "route", "show", "table", "all", check=False).stdout or "[]")
    taken = {str(r.get("dst", "")) for r in routes}
    for step in range(200):
        n = 20 + (owner + step) % 200
        if not any(dst.startswith(f"10.77.{n}.") for dst in taken):
            return n
    raise RuntimeError("no free 10.77.x.0/24 subnet for the test's hosts")


@dataclass
class Host:
    """One network namespace with one address on the bridge."""

    role: str
    netns: str
    address: str
    port: str  # its switch port, in the switch's namespace

    def argv(self, command: Sequence[str], user: str | None = None) -> list[str]:
        """``command`` run inside this host (as ``user``); only the network is separate."""
        prefix = ["nsenter", f"--net={NETNS_DIR / self.netns}", "--"]
        if user is not None:
            prefix += ["setpriv", f"--reuid={user}", f"--regid={user}", "--init-groups", "--"]
        return [*prefix, *command]


class Network:
    """The switch, the root namespace's port and one namespace per host."""

    def __init__(self, roles: Mapping[str, int]) -> None:
        self.owner = os.getpid()
        self.base = f"{PREFIX}-{self.owner}"
        self.switch = f"{self.base}-lan"
        self.uplink = f"{PREFIX}{self.owner}"  # the root namespace's port
        self.made: list[str] = []
        self.hosts: dict[str, Host] = {}
        n = _free_subnet(self.owner)
        self.prefix = f"10.77.{n}"
        self.client_address = f"{self.prefix}.1"
        try:
            self._add_netns(self.switch)
            _ip("-n", self.switch, "link", "add", "br0", "type", "bridge", "forward_delay", "0")
            _ip("-n", self.switch, "link", "set", "br0", "up")
            _ip("link", "add", self.uplink, "type", "veth", "peer", "name", "up0")
            self.made.append(self.uplink)
            _ip("link", "set", "up0", "netns", self.switch)
            _ip("-n", self.switch, "link", "set", "up0", "master", "br0", "up")
            _ip("addr", "add", f"{self.client_address}/24", "dev", self.uplink)
            _ip("link", "set", self.uplink, "up")
            for role, last in roles.items():
                self._add_host(role, f"{self.prefix}.{last}")
        except BaseException:
            self.close()
            raise

    def _add_netns(self, name: str) -> None:
        _ip("netns", "add", name)
        self.made.append(name)

    def _add_host(self, role: str, address: str) -> None:
        netns = f"{self.base}-{role}"
        port = f"p-{role}"
        self._add_netns(netns)
        _ip("-n", self.switch, "link", "add", port, "type", "veth", "peer", "name", "eth0")
        _ip("-n", self.switch, "link", "set", "eth0", "netns", netns)
        _ip("-n", self.switch, "link", "set", port, "master", "br0", "up")
        _ip("-n", netns, "addr", "add", f"{address}/24", "dev", "eth0")
        _ip("-n", netns, "link", "set", "eth0", "up")
        _ip("-n", netns, "link", "set", "lo", "up")
        self.hosts[role] = Host(role, netns, address, port)

    def cut(self, role: str) -> None:
        """Disconnect the host: its switch port goes down, its packets are lost."""
        _ip("-n", self.switch, "link", "set", self.hosts[role].port, "down")

    def reconnect(self, role: str) -> None:
        _ip("-n", self.switch, "link", "set", self.hosts[role].port, "up")

    def close(self) -> None:
        """Kill what runs in the hosts, delete the namespaces and the root port."""
        for name in reversed(self.made):
            if name == self.uplink:
                _ip("link", "del", name, check=False)
            else:
                _kill_namespace_processes(name)
                _ip("netns", "del", name, check=False)
        self.made.clear()


class Proc:
    """A process started in a host, its output in a log file."""

    def __init__(self, name: str, argv: Sequence[str], env: Mapping[str, str], log: Path) -> None:
        self.name = name
        self.log_path = log
        with log.open("ab") as out:
            self.popen = subprocess.Popen(
                list(argv),
                env=dict(env),
                cwd=ROOT,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def running(self) -> bool:
        return self.popen.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def events(self, name: str | None = None) -> list[dict[str, Any]]:
        """The structured (JSON) log lines, those of event ``name`` when given."""
        found = []
        for line in self.log().splitlines():
            if not line.startswith("{"):
                continue
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict) and (name is None or record.get("event") == name):
                found.append(record)
        return found

    def terminate(self) -> None:
        """SIGTERM to the process only: it stops its own children (Dramatiq, uvicorn)."""
        if self.running():
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGTERM)

    def kill(self) -> None:
        """SIGKILL to the process's whole group."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout=10)

    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM, then SIGKILL to the group after ``grace`` seconds."""
        stop_all([self], grace)


def stop_all(procs: Sequence[Proc], grace: float) -> None:
    """Stop ``procs`` together: SIGTERM to each, one shared wait, then SIGKILL."""
    for proc in procs:
        proc.terminate()
    deadline = time.monotonic() + grace
    for proc in procs:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.popen.wait(timeout=max(0.0, deadline - time.monotonic()))
    for proc in procs:
        proc.kill()


def procfile(path: Path = ROOT / "Procfile") -> dict[str, str]:
    """The Procfile's lines by name (``name: command``)."""
    lines: dict[str, str] = {}
    for line in path.read_text().splitlines():
        name, sep, command = line.partition(":")
        if sep and name.strip() and not name.startswith("#"):
            lines[name.strip()] = command.strip()
    return lines


def caddyfile(upstreams: Sequence[str], port: int = PROXY_PORT) -> str:
    """The proxy: deploy/Caddyfile's load balancing, with static upstreams and checks.

    Round robin. A replica failing ``/readyz`` (checked every second, allowed three seconds
    to answer, since a loaded CI machine is slow and a replica wrongly marked
    down leaves the proxy answering 503) is
    skipped until it passes again. A request that cannot reach its replica is
    tried on another within ``lb_try_duration`` when the connection cannot be
    made (``dial_timeout``), and a GET also when a connection made before the
    replica vanished gets no answer (``response_header_timeout``). A PUT or
    POST sent on such a connection is answered 502 instead: Caddy 2.6 cannot
    send a body twice (asked to, it sends an empty one), so the client's
    outbox sends the save again, as the exam page does. No passive health
    checks: with them, one failure that was not the replica's fault (that
    empty body) marked the surviving replica down as well, and the proxy
    answered 502 "no upstreams available" for seconds.
    ``X-Upstream`` in each answer tells the test which replica served it.
    """
    return f"""{{
	admin off
	auto_https off
}}

:{port} {{
	reverse_proxy {" ".join(upstreams)} {{
		lb_policy round_robin
		lb_try_duration 5s
		lb_try_interval 100ms
		health_uri /readyz
		health_interval 1s
		health_timeout 3s
		flush_interval -1
		header_down X-Upstream {{http.reverse_proxy.upstream.hostport}}
		transport http {{
			dial_timeout 500ms
			response_header_timeout 3s
		}}
	}}
}}
"""


def _wait(what: str, ready: Any, timeout: float, procs: Sequence[Proc] = ()) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for proc in procs:
            if not proc.running():
                raise RuntimeError(
                    f"{proc.name} exited while waiting for {what}:\n{proc.log()[-3000:]}"
                )
        if ready():
            return
        time.sleep(0.1)
    tails = "\n".join(f"--- {p.name}\n{p.log()[-2000:]}" for p in procs)
    raise RuntimeError(f"{what} not ready within {timeout:.0f} s\n{tails}")


def _http_ok(url: str) -> bool:
    # The root namespace's own proxies (if any are configured) must not be used.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=1) as answer:
            return bool(answer.status == 200)
    except OSError:
        return False


@dataclass
class Cluster:
    """The deployment: proxy, two API hosts, worker hosts and a database host.

    ``env`` adds ``SAFEXAM_*`` settings for every SafeExam process (e.g. a
    short ``SAFEXAM_JOB_STALE_AFTER_SECONDS``). Worker hosts start with
    :meth:`start_workers`, so a test can decide which hosts take work.
    """

    env: Mapping[str, str] = field(default_factory=dict)
    worker_hosts: int = 2
    network: Network | None = None
    tmp: Path = field(
        default_factory=lambda: Path(tempfile.mkdtemp(prefix=f"{TMP_PREFIX}{os.getpid()}-"))
    )
    procs: dict[str, Proc] = field(default_factory=dict)
    secret_key: str = field(default_factory=lambda: secrets.token_urlsafe(32))

    # --------------------------------------------------------------- addresses

    def address(self, role: str) -> str:
        assert self.network is not None
        return self.network.hosts[role].address

    @property
    def database_url(self) -> str:
        return f"postgresql://postgres@{self.address('db')}:5432/postgres"

    @property
    def redis_url(self) -> str:
        return f"redis://{self.address('db')}:6379/0"

    @property
    def proxy_url(self) -> str:
        return f"http://{self.address('proxy')}:{PROXY_PORT}"

    def api_url(self, role: str) -> str:
        return f"http://{self.address(role)}:{API_PORT}"

    def safexam_env(self, **extra: str) -> dict[str, str]:
        """What every SafeExam process of the cluster is started with."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("SAFEXAM_")}
        env.update(
            {
                "PATH": f"{BIN}:{env.get('PATH', '/usr/bin:/bin')}",
                "SAFEXAM_ENV": "test",
                "SAFEXAM_DATABASE_URL": self.database_url,
                "SAFEXAM_REDIS_URL": self.redis_url,
                "SAFEXAM_SECRET_KEY": self.secret_key,
                # Plain HTTP between the students and the proxy, on a private network.
                "SAFEXAM_COOKIE_SECURE": "false",
                "SAFEXAM_TRUSTED_PROXIES": self.address("proxy"),
                "SAFEXAM_LOG_FORMAT": "json",
                "SAFEXAM_LOG_LEVEL": "INFO",
                "PYTHONUNBUFFERED": "1",
            }
        )
        env.update(self.env)
        env.update(extra)
        return env

    # --------------------------------------------------------------- start

    def start(self) -> Cluster:
        """Make the hosts and start everything but the worker hosts; returns self."""
        for tool in ("nsenter", "setpriv", "redis-server", "caddy"):
            if shutil.which(tool) is None:
                raise RuntimeError(f"{tool} is not installed (make setup installs Caddy)")
        if not (PG_BIN / "postgres").exists():
            raise RuntimeError(f"{PG_BIN / 'postgres'} not found (set SAFEXAM_FAULTS_PG_BIN)")
        remove_leftovers()
        roles = {"proxy": ADDRESSES["proxy"], "api1": ADDRESSES["api1"], "api2": ADDRESSES["api2"]}
        for i in range(1, self.worker_hosts + 1):
            roles[f"work{i}"] = ADDRESSES["work1"] + i - 1
        roles["db"] = ADDRESSES["db"]
        try:
            self.network = Network(roles)
            self._start_database()
            self._release()
            for role in ("api1", "api2"):
                self._spawn(
                    f"{role}-web",
                    role,
                    ["sh", "-c", f"exec {procfile()['web']}"],
                    self.safexam_env(SAFEXAM_HOST=self.address(role), SAFEXAM_PORT=str(API_PORT)),
                )
            self._start_proxy()
            apis = [self.procs["api1-web"], self.procs["api2-web"]]
            for role in ("api1", "api2"):
                _wait(
                    f"{role} /readyz",
                    lambda r=role: _http_ok(f"{self.api_url(r)}/readyz"),
                    60,
                    apis,
                )
            _wait(
                "the proxy", lambda: _http_ok(f"{self.proxy_url}/readyz"), 20, [self.procs["proxy"]]
            )
        except BaseException:
            self.close()
            raise
        return self

    def _spawn(
        self,
        name: str,
        role: str,
        command: Sequence[str],
        env: Mapping[str, str],
        user: str | None = None,
    ) -> Proc:
        assert self.network is not None
        host = self.network.hosts[role]
        proc = Proc(name, host.argv(command, user), env, self.tmp / f"{name}.log")
        self.procs[name] = proc
        return proc

    def _start_database(self) -> None:
        entry = pwd.getpwnam("postgres")
        data = self.tmp / "pg"
        data.mkdir()
        os.chown(data, entry.pw_uid, entry.pw_gid)
        os.chmod(self.tmp, 0o755)
        subprocess.run(
            [
                "setpriv",
                "--reuid=postgres",
                "--regid=postgres",
                "--init-groups",
                "--",
                str(PG_BIN / "initdb"),
                "-D",
                str(data),
                "-U",
                "postgres",
                "--auth=trust",
                "--encoding=UTF8",
                "--no-sync",
            ],
            check=True,
            capture_output=True,
            timeout=120,
            cwd="/",
        )
        address = self.address("db")
        assert self.network is not None
        # initdb trusts local connections only; the other hosts are on the private /24.
        with (data / "pg_hba.conf").open("a") as hba:
            hba.write(f"host all all {self.network.prefix}.0/24 trust\n")
        postgres = self._spawn(
            "db-postgres",
            "db",
            [
                str(PG_BIN / "postgres"),
                "-D",
                str(data),
                "-c",
                f"listen_addresses={address}",
                "-c",
                "port=5432",
                "-c",
                "unix_socket_directories=",
                "-c",
                "fsync=off",
                "-c",
                "full_page_writes=off",
                "-c",
                "max_connections=200",
            ],
            os.environ,
            user="postgres",
        )
        redis = self._spawn(
            "db-redis",
            "db",
            [
                "redis-server",
                "--bind",
                address,
                "--port",
                "6379",
                "--save",
                "",
                "--appendonly",
                "no",
                "--protected-mode",
                "no",
            ],
            os.environ,
        )

        def listening(port: int) -> bool:
            with socket.socket() as s:
                s.settimeout(0.5)
                return s.connect_ex((address, port)) == 0

        _wait("PostgreSQL", lambda: listening(5432), 30, [postgres])
        _wait("Redis", lambda: listening(6379), 10, [redis])

    def _release(self) -> None:
        """The Procfile's ``release`` line (migrations), once, from the first API host."""
        release = self._spawn(
            "api1-release",
            "api1",
            ["sh", "-c", f"exec {procfile()['release']}"],
            self.safexam_env(),
        )
        deadline = time.monotonic() + 120
        while release.running() and time.monotonic() < deadline:
            time.sleep(0.1)
        if release.running() or release.popen.returncode != 0:
            release.stop(1)
            raise RuntimeError(f"migrations failed:\n{release.log()[-3000:]}")

    def _start_proxy(self) -> None:
        config = self.tmp / "Caddyfile"
        config.write_text(caddyfile([f"{self.address(r)}:{API_PORT}" for r in ("api1", "api2")]))
        home = self.tmp / "caddy-home"
        home.mkdir()
        env = {
            **os.environ,
            "HOME": str(home),
            "XDG_DATA_HOME": str(home / "data"),
            "XDG_CONFIG_HOME": str(home / "config"),
        }
        self._spawn(
            "proxy",
            "proxy",
            ["caddy", "run", "--config", str(config), "--adapter", "caddyfile"],
            env,
        )

    # --------------------------------------------------------------- workers

    def worker_procs(self, host: int) -> list[Proc]:
        return [self.procs[n] for n in (f"work{host}-{p}" for p in WORKER_POOLS) if n in self.procs]

    def start_workers(self, *hosts: int, timeout: float = 90) -> None:
        """Start the worker pools of each ``work<host>`` and wait until every one booted."""
        lines = procfile()
        started = []
        for host, pool in ((h, p) for h in hosts for p in WORKER_POOLS):
            name = f"work{host}-{pool}"
            if name in self.procs and self.procs[name].running():
                continue
            env = self.safexam_env(**{f"SAFEXAM_{pool.upper()}_PROCESSES": "1"})
            started.append(
                self._spawn(name, f"work{host}", ["sh", "-c", f"exec {lines[pool]}"], env)
            )
        for proc in started:
            _wait(
                f"{proc.name} booted",
                lambda p=proc: bool(p.events("worker_booted")),
                timeout,
                [proc],
            )

    def stop_workers(self, host: int, grace: float = 10.0) -> None:
        stop_all(self.worker_procs(host), grace)

    # --------------------------------------------------------------- faults

    def cut(self, role: str) -> None:
        assert self.network is not None
        self.network.cut(role)

    def reconnect(self, role: str) -> None:
        assert self.network is not None
        self.network.reconnect(role)

    # --------------------------------------------------------------- end

    def close(self) -> None:
        """Stop every process, remove the hosts and the temporary folder; never raises."""
        try:
            stop_all(list(self.procs.values()), grace=3)
        finally:
            if self.network is not None:
                self.network.close()
            if not os.environ.get("SAFEXAM_HOSTS_KEEP_LOGS"):
                shutil.rmtree(self.tmp, ignore_errors=True)


@contextlib.contextmanager
def cluster(**options: Any) -> Iterator[Cluster]:
    """A started :class:`Cluster`, closed at the end whatever happens."""
    made = Cluster(**options)
    try:
        yield made.start()
    finally:
        made.close()
