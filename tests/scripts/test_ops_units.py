"""The systemd units in ops/systemd: they parse, name commands and settings that exist, pass `systemd-analyze
verify`, and the four roles run from them as separate processes, replicas included, and stop on SIGTERM."""

from __future__ import annotations

import contextlib
import os
import re
import runpy
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
import requests
from psycopg.conninfo import make_conninfo

from projections.registry import PROJECTIONS
from taskledger import budget
from taskledger.config import load_settings
from taskledger.database import drop_database

REPO = Path(__file__).resolve().parents[2]
UNITS = REPO / "ops" / "systemd"
ENV_EXAMPLE = UNITS / "taskledger.env.example"
INSTALLED = "/opt/taskledger"  # where docs/deployment.md installs the checkout and its venv
VENV_BIN = Path(sys.executable).parent
SERVICES = ("taskledger-migrate.service", "taskledger-api.service", "taskledger-project@.service",
            "taskledger-schedule@.service", "taskledger-watchdog@.service")
PORTS = range(18300, 18400)


@dataclass(frozen=True)
class Unit:
    """A unit file as systemd reads it: sections of (key, value) lines, keys repeatable."""

    name: str
    sections: dict[str, list[tuple[str, str]]]

    def values(self, section: str, key: str) -> list[str]:
        return [value for k, value in self.sections.get(section, []) if k == key]

    def one(self, section: str, key: str) -> str:
        found = self.values(section, key)
        assert len(found) == 1, f"{self.name}: [{section}] {key}= is set {len(found)} times, wanted once"
        return found[0]

    def words(self, section: str, key: str) -> set[str]:
        return {word for value in self.values(section, key) for word in value.split()}

    def environment(self, instance: str, runtime_dir: Path) -> dict[str, str]:
        """Its Environment= lines with the specifiers %i (instance) and %t (runtime directory) expanded."""
        found = {}
        for line in self.values("Service", "Environment"):
            for item in shlex.split(line):
                key, _, value = item.partition("=")
                found[key] = value.replace("%i", instance).replace("%t", str(runtime_dir))
        return found


def parse_unit(path: Path) -> Unit:
    sections: dict[str, list[tuple[str, str]]] = {}
    current = None
    for number, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], [])
            continue
        assert current is not None and "=" in line, f"{path.name}:{number}: not a `Key=value` line in a section"
        key, _, value = line.partition("=")
        current.append((key.strip(), value.strip()))
    return Unit(path.name, sections)


def read_env_file(path: Path, *, commented: bool) -> dict[str, str]:
    """KEY=value lines of an EnvironmentFile; with `commented`, also the `#KEY=value` examples of defaults."""
    pattern = re.compile(r"^(#)?([A-Z][A-Z0-9_]*)=(.*)$")
    found = {}
    for line in path.read_text().splitlines():
        match = pattern.match(line.strip())
        if match and (commented or not match.group(1)):
            found[match.group(2)] = match.group(3)
    return found


@pytest.fixture(scope="module")
def units() -> dict[str, Unit]:
    return {path.name: parse_unit(path) for path in sorted(UNITS.glob("*.service")) + [UNITS / "taskledger.target"]}


def local_command(exec_start: str) -> list[str]:
    """An ExecStart line as run from this checkout: the installed venv is ours, the installed tree the repo."""
    argv = shlex.split(exec_start)
    return [a.replace(f"{INSTALLED}/venv/bin", str(VENV_BIN)).replace(INSTALLED, str(REPO)) for a in argv]


def test_every_unit_named_in_the_docs_is_shipped_with_its_sections(units: dict[str, Unit]) -> None:
    for name in SERVICES:
        assert name in units, f"ops/systemd/{name} is missing"
        for section in ("Unit", "Service", "Install"):
            assert section in units[name].sections, f"{name} has no [{section}]"
    assert set(units) == {*SERVICES, "taskledger.target"}, "a unit no test checks"


def test_every_command_a_unit_runs_exists_and_answers_help(units: dict[str, Unit]) -> None:
    listed = subprocess.run([str(VENV_BIN / "taskledger"), "--help"], capture_output=True, text=True, timeout=60)
    assert listed.returncode == 0, listed.stderr
    helping = []
    for unit in units.values():
        for line in unit.values("Service", "ExecStart"):
            argv = local_command(line)
            assert Path(argv[0]).is_file() and os.access(argv[0], os.X_OK), f"{unit.name}: {argv[0]} not executable"
            if Path(argv[0]).name == "taskledger":
                assert re.search(rf"^\s+{argv[1]}\s", listed.stdout, re.M), f"{unit.name}: no subcommand {argv[1]}"
                helping.append((unit.name, argv, subprocess.Popen([*argv, "--help"], stdout=subprocess.DEVNULL,
                                                                  stderr=subprocess.PIPE, text=True)))
            else:
                assert Path(argv[0]).name == "gunicorn", f"{unit.name}: runs {argv[0]}"
                config = argv[argv.index("-c") + 1]
                assert config == str(REPO / "ops" / "gunicorn.conf.py"), f"{unit.name}: gunicorn config {config}"
        for line in unit.values("Service", "ExecReload"):
            assert Path(shlex.split(line)[0]).exists(), f"{unit.name}: ExecReload runs {line}"
    assert len(helping) == 4, helping
    for name, argv, process in helping:
        _, errors = process.communicate(timeout=60)
        assert process.returncode == 0, f"{name}: {argv} --help: {errors}"


def _settings_config_reads() -> set[str]:
    """Every TASKLEDGER_* name taskledger/config.py reads: the ones load_settings asks the environment for, and
    every literal the module names (a read behind a condition is still listed)."""

    class Recording(dict[str, str]):
        def __init__(self) -> None:
            super().__init__()
            self.asked: set[str] = set()

        def get(self, key: str, default: Any = None) -> Any:
            self.asked.add(key)
            return super().get(key, default)

        def __getitem__(self, key: str) -> str:
            self.asked.add(key)
            return super().__getitem__(key)

    env = Recording()
    load_settings(env, parse_url=False)
    source = (REPO / "taskledger" / "config.py").read_text()
    literals = set(re.findall(r"[\"'](TASKLEDGER_[A-Z0-9_]+)[\"']", source))
    return {name for name in env.asked if name.startswith("TASKLEDGER_")} | literals


def test_the_environment_example_lists_exactly_the_settings_taskledger_reads() -> None:
    listed = set(read_env_file(ENV_EXAMPLE, commented=True))
    read = _settings_config_reads()
    assert len(read) >= 15, read  # the recording saw load_settings at work
    assert read - listed == set(), f"taskledger/config.py reads these, ops/systemd/taskledger.env.example lacks them"
    assert listed - read == set(), "the example lists these, taskledger/config.py never reads them"


def test_every_value_in_the_environment_example_is_one_taskledger_accepts() -> None:
    example = read_env_file(ENV_EXAMPLE, commented=True)
    settings = load_settings(example)  # a ConfigError names the variable
    assert settings.database_url and "target_session_attrs=read-write" in settings.database_url
    assert str(settings.home) == "/var/lib/taskledger"
    assert set(read_env_file(ENV_EXAMPLE, commented=False)) == {"TASKLEDGER_DATABASE_URL", "TASKLEDGER_HOME"}


def test_every_service_runs_hardened_as_the_dedicated_user_with_the_shared_settings(units: dict[str, Unit]) -> None:
    sysusers = (UNITS / "taskledger.sysusers.conf").read_text()
    assert re.search(r"^u taskledger ", sysusers, re.M)
    for name in SERVICES:
        unit = units[name]
        assert unit.one("Service", "User") == "taskledger" and unit.one("Service", "Group") == "taskledger"
        assert unit.one("Service", "EnvironmentFile") == "/etc/taskledger/taskledger.env"
        for key, wanted in (("NoNewPrivileges", "yes"), ("ProtectSystem", "strict"), ("PrivateTmp", "yes"),
                            ("ProtectHome", "yes"), ("Restart", "on-failure"), ("StateDirectory", "taskledger")):
            assert unit.one("Service", key) == wanted, f"{name}: {key}"
        assert unit.one("Service", "CapabilityBoundingSet") == ""
        if name != "taskledger-migrate.service":
            assert int(unit.one("Unit", "StartLimitBurst")) > 1 and int(unit.one("Unit", "StartLimitIntervalSec")) > 0


def test_the_metrics_directory_is_the_api_s_own_per_boot_runtime_directory(units: dict[str, Unit],
                                                                          tmp_path: Path) -> None:
    api = units["taskledger-api.service"]
    runtime = api.one("Service", "RuntimeDirectory")
    metrics = Path(api.environment("", tmp_path)["PROMETHEUS_MULTIPROC_DIR"])
    # Under ProtectSystem=strict only the runtime directory (and /tmp) is writable: the metrics must be in it.
    assert metrics == tmp_path / runtime or tmp_path / runtime in metrics.parents, metrics


def test_every_role_starts_after_the_migration_and_belongs_to_the_target(units: dict[str, Unit]) -> None:
    migrate = units["taskledger-migrate.service"]
    assert migrate.one("Service", "Type") == "oneshot" and migrate.one("Service", "RemainAfterExit") == "yes"
    target = units["taskledger.target"]
    for name in SERVICES:
        unit = units[name]
        assert unit.one("Unit", "PartOf") == "taskledger.target"
        assert "taskledger.target" in unit.words("Install", "WantedBy")
        wanted_name = name.replace("@.", "@1.")
        assert wanted_name in target.words("Unit", "Wants"), f"taskledger.target does not start {wanted_name}"
        if name != "taskledger-migrate.service":
            assert "taskledger-migrate.service" in unit.words("Unit", "Requires"), name
            assert "taskledger-migrate.service" in unit.words("Unit", "After"), name
    for name in ("taskledger-project@.service", "taskledger-schedule@.service", "taskledger-watchdog@.service"):
        assert units[name].one("Install", "DefaultInstance") == "1"
        assert "%i" in units[name].one("Service", "Environment"), "replicas are told apart in pg_stat_activity"


def test_the_api_unit_matches_gunicorn_s_signals_and_graceful_timeout(units: dict[str, Unit],
                                                                     monkeypatch: pytest.MonkeyPatch,
                                                                     tmp_path: Path) -> None:
    monkeypatch.setenv("TASKLEDGER_DATABASE_URL", "postgresql://localhost/unused")
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    gunicorn_conf = runpy.run_path(str(REPO / "ops" / "gunicorn.conf.py"))
    api = units["taskledger-api.service"]
    assert api.one("Service", "Type") == "notify" and api.one("Service", "NotifyAccess") == "main"
    assert api.one("Service", "KillMode") == "mixed"  # TERM to the master, which stops its workers itself
    assert api.one("Service", "ExecReload") == "/bin/kill -s HUP $MAINPID"
    stop_timeout = int(api.one("Service", "TimeoutStopSec"))
    assert stop_timeout >= gunicorn_conf["graceful_timeout"] + 5, (stop_timeout, gunicorn_conf["graceful_timeout"])
    for name in ("taskledger-project@.service", "taskledger-schedule@.service", "taskledger-watchdog@.service"):
        # cli.py joins each thread for up to 10 s after SIGTERM; `project` runs two projections.
        assert int(units[name].one("Service", "TimeoutStopSec")) >= 2 * 10 + 5, name


def test_systemd_analyze_verify_accepts_every_unit(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed here (apt-get install systemd): only the parse tests "
                    "above checked the units")
    # A root of its own: systemd's stock units, the units installed, and executables where ExecStart expects.
    root = tmp_path / "root"
    shutil.copytree("/usr/lib/systemd/system", root / "usr/lib/systemd/system", symlinks=True)
    shutil.copytree(UNITS, root / "etc/systemd/system")
    for name in ("gunicorn", "taskledger"):
        path = root / f"opt/taskledger/venv/bin/{name}"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("#!/bin/sh\n")
        path.chmod(0o755)
    (root / "bin").mkdir()
    shutil.copy("/bin/kill", root / "bin/kill")
    names = [n.replace("@.", "@2.") for n in SERVICES] + ["taskledger.target"]
    verified = subprocess.run([analyze, "verify", f"--root={root}", *names], capture_output=True, text=True,
                              timeout=60)
    assert verified.returncode == 0 and not verified.stderr.strip() and not verified.stdout.strip(), \
        verified.stdout + verified.stderr


def test_the_worked_example_in_docs_deployment_is_what_taskledger_budget_prints() -> None:
    doc = (REPO / "docs" / "deployment.md").read_text()
    found = re.search(r"^\$ (taskledger budget [^\n]*)\n(.*?)^```", doc, re.M | re.S)
    assert found, "docs/deployment.md has no `$ taskledger budget …` example"
    env = {k: v for k, v in os.environ.items() if not k.startswith("TASKLEDGER_")}
    printed = subprocess.run([str(VENV_BIN / "taskledger"), *shlex.split(found.group(1))[1:]], env=env,
                             capture_output=True, text=True, timeout=60)
    assert printed.returncode == 0, printed.stderr
    assert printed.stdout == found.group(2), printed.stdout
    roles = budget.per_role(2, 4, 4, 2, 2, 2)
    assert sum(b.peak for b in roles.values()) == 2 * 4 * (2 * 4 + 2) + 2 * 6 + 2 + 4 * 5


def test_budget_refuses_a_count_that_is_not_a_positive_number_in_one_line() -> None:
    refused = subprocess.run([str(VENV_BIN / "taskledger"), "budget", "--schedulers", "0"], capture_output=True,
                             text=True, timeout=60)
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1 and "--schedulers" in refused.stderr


# --- the roles as separate processes, started as the units start them ---

def _free_port() -> int:
    for port in PORTS:
        with socket.socket() as probe:
            with contextlib.suppress(OSError):
                probe.bind(("127.0.0.1", port))
                return port
    raise RuntimeError("no free port in 18300-18399")


@dataclass
class Started:
    name: str
    process: subprocess.Popen[bytes]
    stop_timeout: float


class Host:
    """Runs units' ExecStart commands the way systemd would: the environment file, the unit's Environment=
    (with %i and %t), its own process group; stops them with SIGTERM as KillSignal= says."""

    def __init__(self, units: Mapping[str, Unit], base_env: Mapping[str, str], runtime: Path, logs: Path) -> None:
        self.units, self.base_env, self.runtime, self.logs = units, dict(base_env), runtime, logs
        self.started: list[Started] = []

    def env_of(self, unit: Unit, instance: str) -> dict[str, str]:
        for directory in unit.values("Service", "RuntimeDirectory"):
            (self.runtime / directory).mkdir(mode=0o700)
        return {**self.base_env, **unit.environment(instance, self.runtime)}

    def start(self, template: str, instance: str = "", extra_env: Mapping[str, str] | None = None) -> Started:
        unit = self.units[template]
        name = template.replace("@.", f"@{instance}.")
        env = {**self.env_of(unit, instance), **(extra_env or {})}
        log = (self.logs / f"{name}.log").open("wb")
        process = subprocess.Popen(local_command(unit.one("Service", "ExecStart")), env=env, stdout=log,
                                   stderr=subprocess.STDOUT, cwd=self.base_env["TASKLEDGER_HOME"],
                                   start_new_session=True)
        started = Started(name, process, float(unit.one("Service", "TimeoutStopSec")))
        self.started.append(started)
        return started

    def run(self, template: str) -> subprocess.CompletedProcess[str]:
        unit = self.units[template]
        return subprocess.run(local_command(unit.one("Service", "ExecStart")), env=self.env_of(unit, ""),
                              capture_output=True, text=True, timeout=120, cwd=self.base_env["TASKLEDGER_HOME"])

    def stop(self, started: Started) -> tuple[int, float]:
        """SIGTERM; the exit code and the seconds it took (SIGKILL, as systemd, past TimeoutStopSec)."""
        began = time.monotonic()
        started.process.send_signal(signal.SIGTERM)
        try:
            code = started.process.wait(timeout=started.stop_timeout)
        except subprocess.TimeoutExpired:
            os.killpg(started.process.pid, signal.SIGKILL)
            code = started.process.wait()
        return code, time.monotonic() - began

    def log_of(self, started: Started) -> str:
        return (self.logs / f"{started.name}.log").read_text(errors="replace")[-3000:]

    def kill_all(self) -> None:
        for started in self.started:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(started.process.pid, signal.SIGKILL)
            started.process.wait()


@pytest.fixture
def ops_database(pg_server_url: str) -> Iterator[str]:
    """An empty database of this test's own (created by the migrate unit), dropped at the end."""
    url = make_conninfo(pg_server_url, dbname=f"tl_ops_{uuid.uuid4().hex[:10]}")
    yield url
    drop_database(url)


@pytest.fixture
def host(units: dict[str, Unit], ops_database: str) -> Iterator[Host]:
    with tempfile.TemporaryDirectory(prefix="tl-ops-units-") as base:
        home, runtime, logs = Path(base) / "home", Path(base) / "run", Path(base) / "logs"
        for directory in (home, runtime, logs):
            directory.mkdir()
        env = {key: value for key, value in os.environ.items() if not key.startswith(("TASKLEDGER_", "PGAPP"))}
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        env.update(read_env_file(ENV_EXAMPLE, commented=False))
        # The shared test server has max_connections 100 for everyone: the smallest API.
        env.update(TASKLEDGER_DATABASE_URL=ops_database, TASKLEDGER_HOME=str(home), TASKLEDGER_PORT=str(_free_port()),
                   TASKLEDGER_WORKERS="1", TASKLEDGER_POOL_SIZE="2", TASKLEDGER_LOG_LEVEL="INFO")
        started = Host(units, env, runtime, logs)
        try:
            yield started
        finally:
            started.kill_all()


def _notify_socket(path: Path) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    return sock


def _until(what: str, check: Any, timeout: float, log: Any = lambda: "") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(requests.RequestException, psycopg.Error):
            found = check()
            if found:
                return found
        time.sleep(0.1)
    raise AssertionError(f"{what}: not within {timeout} s\n{log()}")


def _leaders(url: str) -> dict[str, str]:
    """Projection name → the application_name of the session holding its leader lock."""
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute("SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
                            "WHERE l.locktype = 'advisory' AND l.granted AND l.database = "
                            "(SELECT oid FROM pg_database WHERE datname = current_database())").fetchall()
    return {name.rsplit("/lead-", 1)[1]: name.rsplit("/", 1)[0] for (name,) in rows if "/lead-" in name}


def _connections(url: str) -> dict[str, int]:
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute("SELECT split_part(application_name, '/', 1), count(*) FROM pg_stat_activity "
                            "WHERE datname = current_database() AND pid <> pg_backend_pid() GROUP BY 1").fetchall()
    return {name: count for name, count in rows}


@pytest.mark.e2e
def test_the_roles_run_as_separate_processes_with_replicas_and_stop_on_sigterm(host: Host, ops_database: str,
                                                                             tmp_path: Path) -> None:
    migrated = host.run("taskledger-migrate.service")
    assert migrated.returncode == 0 and "schema is up to date" in migrated.stdout, migrated.stderr
    again = host.run("taskledger-migrate.service")  # a restart of the target runs it again: idempotent
    assert again.returncode == 0, again.stderr
    password = "ops-units-pass"
    added = subprocess.run([str(VENV_BIN / "taskledger"), "users", "add", "ops", "--role", "admin",
                            "--password-stdin"], input=password + "\n", env=host.base_env, capture_output=True,
                           text=True, timeout=60)
    assert added.returncode == 0, added.stderr

    notify_path = tmp_path / "notify.sock"
    notify = _notify_socket(notify_path)
    notify.settimeout(30)
    began = time.monotonic()
    api = host.start("taskledger-api.service", extra_env={"NOTIFY_SOCKET": str(notify_path)})
    roles = [host.start("taskledger-project@.service", "1"), host.start("taskledger-project@.service", "2"),
             host.start("taskledger-schedule@.service", "1"), host.start("taskledger-watchdog@.service", "1")]
    ready = notify.recv(4096).decode()
    assert "READY=1" in ready, ready  # what Type=notify waits for
    print(f"gunicorn told systemd READY=1 after {time.monotonic() - began:.1f} s")
    base = f"http://127.0.0.1:{host.base_env['TASKLEDGER_PORT']}"
    auth = ("ops", password)
    _until("the API answers /readyz", lambda: requests.get(f"{base}/readyz", timeout=2).status_code == 200, 30,
           lambda: host.log_of(api))
    for role in roles:
        assert role.process.poll() is None, host.log_of(role)

    def created(name: str, **fields: Any) -> str:
        answer = requests.post(f"{base}/ledger/v1/tasks", json={"namespace": "ops-units", "name": name, **fields},
                               auth=auth, timeout=10)
        assert answer.status_code == 201, answer.text
        return str(answer.json()["id"])

    def listed() -> set[str]:
        page = requests.get(f"{base}/ledger/v1/tasks", params={"namespace": "ops-units"}, auth=auth, timeout=5)
        return {task["id"] for task in page.json()["items"]} if page.status_code == 200 else set()

    first = created("first")
    _until("the task is projected and listed", lambda: first in listed(), 20)
    leaders = _until("each projection has one leader", lambda: _leaders(ops_database), 10)
    assert set(leaders.values()) <= {"taskledger-project-1", "taskledger-project-2"}, leaders
    held = _connections(ops_database)
    print(f"connections by process: {held}; leaders {leaders}")
    one_projection, waiting = budget.projections(1).peak, budget.PROJECTION_FOLLOWER
    allowed = {"taskledger-api": budget.api(1, 2).peak, "taskledger-schedule-1": budget.role().peak,
               "taskledger-watchdog-1": budget.role().peak}
    for replica in ("taskledger-project-1", "taskledger-project-2"):
        led = sum(1 for name in leaders.values() if name == replica)
        allowed[replica] = led * one_projection + (len(PROJECTIONS) - led) * waiting
    assert set(held) == set(allowed), held
    assert all(held[name] <= allowed[name] for name in held), (held, allowed)  # taskledger/budget.py holds

    # The watchdog process expires a lease whose heartbeats stopped.
    watched = created("watched", heartbeat_timeout=0.5, max_retries=0)
    started = requests.post(f"{base}/ledger/v1/tasks/{watched}/start", json={"worker": "w1"}, auth=auth, timeout=10)
    assert started.status_code == 200, started.text
    expired = _until("the watchdog expires the lease", lambda: "expired" in str(
        requests.get(f"{base}/ledger/v1/tasks/{watched}", auth=auth, timeout=5).json().get("error") or ""), 20)
    assert expired

    # Stopping the leading replica: the other takes over, and new tasks are still projected.
    replica = next(iter(leaders.values())).rsplit("-", 1)[1]  # taskledger-project-2 → 2
    leading = next(r for r in roles if r.name == f"taskledger-project@{replica}.service")
    code, took = host.stop(leading)
    assert code == 0, host.log_of(leading)
    second = created("second")
    _until("a task created after the leader stopped is projected by the other replica",
           lambda: second in listed(), 20)
    survivors = {r.name for r in roles if r is not leading and r.name.startswith("taskledger-project@")}
    assert set(_leaders(ops_database).values()) == {n.removesuffix(".service").replace("@", "-") for n in survivors}
    timings = {leading.name: took}

    for process in [api, *(r for r in roles if r is not leading)]:
        code, took = host.stop(process)
        assert code == 0, f"{process.name} exited {code} on SIGTERM\n{host.log_of(process)}"
        assert took < process.stop_timeout, (process.name, took)
        timings[process.name] = took
    print("stopped on SIGTERM in " + ", ".join(f"{name} {took:.1f} s" for name, took in timings.items()))
    assert _connections(ops_database) == {}, "a stopped process left a connection open"
