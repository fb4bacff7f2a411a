"""Every command and setting taskledger cannot use is one line on stderr naming what to fix, exit code 2.

The real `taskledger` console script runs in a subprocess with an empty TASKLEDGER_HOME: no traceback, no
hang, and no embedded PostgreSQL made where none was asked for.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from eventsourcing.persistence import OperationalError as StoreOperationalError
from psycopg import sql
from psycopg.conninfo import make_conninfo
from psycopg_pool import PoolTimeout

from taskledger import preflight
from taskledger.cli import build_parser, run
from taskledger.config import ConfigError, Settings, load_settings

ROOT = Path(__file__).resolve().parents[2]
TASKLEDGER = Path(sys.executable).parent / "taskledger"
CLOSED_PORT_URL = "postgresql://postgres@127.0.0.1:1/x"
TASK = "0b7e2c1a-4c44-4f39-a4f5-2d1e3c9d7f10"
# Every command that works on an existing database, with the arguments it needs (`serve` alone makes one).
DATABASE_COMMANDS = {
    "migrate": ("migrate",),
    "project": ("project",),
    "schedule": ("schedule",),
    "watchdog": ("watchdog",),
    "users add": ("users", "add", "bob", "--role", "viewer", "--password-stdin"),
    "users token": ("users", "token", "admin"),
    "users list": ("users", "list"),
    "users remove": ("users", "remove", "bob"),
    "tokens list": ("tokens", "list"),
    "tokens revoke": ("tokens", "revoke", "0123456789abcdef"),
    "audit": ("audit", TASK),
    "replay": ("replay", TASK, "--version", "1"),
    "verify": ("verify", "--quiet"),
    "export": ("export", "--quiet"),
    "import": ("import", "--quiet", "events.jsonl"),
    "rebuild": ("rebuild", "--quiet"),
    "archive": ("archive", "--all-namespaces", "--ended-before", "30d", "--dry-run"),
}


@dataclass(frozen=True)
class Refused:
    """A command's one-line refusal, and where it ran."""

    line: str
    seconds: float


@dataclass(frozen=True)
class Sandbox:
    """An empty working directory and TASKLEDGER_HOME; runs the console script there."""

    cwd: Path
    home: Path

    def run(self, *argv: str, stdin: str = "password-1\n", home: bool = True,
            **variables: str) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("TASKLEDGER_")}
        env.update({"TASKLEDGER_HOME": str(self.home)} if home else {}, **variables)
        return subprocess.run([str(TASKLEDGER), *argv], cwd=self.cwd, env=env, input=stdin, capture_output=True,
                              text=True, timeout=60, check=False)

    def refused(self, *argv: str, home: bool = True, **variables: str) -> Refused:
        """Runs a command that must refuse: exit 2, one line on stderr, no traceback, no new PostgreSQL."""
        started = time.monotonic()
        done = self.run(*argv, home=home, **variables)
        seconds = time.monotonic() - started
        assert "Traceback" not in done.stderr + done.stdout, done.stderr
        assert (done.returncode, len(done.stderr.splitlines())) == (2, 1), done.stderr
        assert not (self.home / "pgdata").exists() and not (self.cwd / "var").exists()
        return Refused(done.stderr.strip(), seconds)


@pytest.fixture
def sandbox(tmp_path: Path) -> Sandbox:
    (tmp_path / "home").mkdir()
    return Sandbox(tmp_path, tmp_path / "home")


@pytest.fixture(scope="module")
def unmigrated_url(pg_server_url: str) -> Iterator[str]:
    """A database that exists and is empty: nobody ran `taskledger migrate` on it."""
    name = f"tl_cli_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(pg_server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    yield make_conninfo(pg_server_url, dbname=name)
    with psycopg.connect(pg_server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.mark.parametrize(("argv", "variable", "value"), [
    (("serve",), "TASKLEDGER_PORT", "abc"),
    (("serve",), "TASKLEDGER_BIND", "not a host"),
    (("serve",), "TASKLEDGER_WORKERS", "0"),
    (("serve",), "TASKLEDGER_THREADS", "many"),
    (("serve",), "TASKLEDGER_WORKER_CLASS", "eventlet"),
    (("serve",), "TASKLEDGER_WORKER_CONNECTIONS", "-5"),
    (("serve",), "TASKLEDGER_API_NICE", "-3"),
    (("serve",), "TASKLEDGER_ACCESS_LOG", "/no/such/directory/access.log"),
    (("serve",), "TASKLEDGER_ADMIN_PASSWORD", "short"),
    (("users", "list"), "TASKLEDGER_LOG_LEVEL", "LOUD"),
    (("users", "token", "admin"), "TASKLEDGER_DATABASE_URL", "not a url"),
    (("verify",), "TASKLEDGER_MIN_POSITION_WAIT", "soon"),
    (("migrate",), "TASKLEDGER_LAG_BUDGET", "-1"),
    (("migrate",), "TASKLEDGER_POOL_SIZE", "0"),
    (("project",), "TASKLEDGER_TRUSTED_PROXIES", "proxy.example"),
])
def test_a_bad_setting_is_one_line_naming_the_variable(argv: tuple[str, ...], variable: str, value: str,
                                                       sandbox: Sandbox) -> None:
    refused = sandbox.refused(*argv, **{variable: value})

    assert refused.line.startswith(f"taskledger: {variable}")


def test_a_data_directory_that_is_a_file_is_refused_naming_taskledger_home(sandbox: Sandbox) -> None:
    (sandbox.cwd / "a-file").write_text("")

    refused = sandbox.refused("users", "list", TASKLEDGER_HOME=str(sandbox.cwd / "a-file"))

    assert "TASKLEDGER_HOME" in refused.line and "is not a directory" in refused.line


@pytest.mark.parametrize("command", DATABASE_COMMANDS)
def test_a_command_on_a_data_directory_without_a_database_makes_none_and_says_what_to_set(
        command: str, sandbox: Sandbox) -> None:
    refused = sandbox.refused(*DATABASE_COMMANDS[command])

    assert refused.line == (f"taskledger: no taskledger database in {sandbox.home / 'pgdata'}: set TASKLEDGER_HOME "
                            f"to the directory `taskledger serve` uses, or TASKLEDGER_DATABASE_URL to your PostgreSQL")


API_COMMANDS = {"bulk"} | {f"tasks {c}" for c in ("list", "show", "watch", "pause", "resume", "cancel", "abort",
                                                  "drop")}


def test_every_command_but_serve_is_checked_without_a_database() -> None:
    def subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
        return {name: sub for action in parser._actions if isinstance(action, argparse._SubParsersAction)
                for name, sub in action.choices.items()}

    commands = {f"{name} {action}".strip()
                for name, sub in subcommands(build_parser()).items() for action in subcommands(sub) or [""]}

    # `bulk` and `tasks` speak to the API, not the database (their errors: tests/e2e/test_bulk_cli.py,
    # tests/e2e/test_tasks_cli.py)
    offline = {"budget"}  # arithmetic on its options only: no database, no service
    assert commands - {"serve"} - API_COMMANDS - offline == set(DATABASE_COMMANDS)


def test_a_data_directory_with_a_database_is_opened_and_only_serve_makes_one(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    started: list[Path] = []

    def start_embedded(pgdata: Path) -> str:
        started.append(pgdata)
        return "server"

    monkeypatch.setattr(preflight, "start_embedded", start_embedded)
    monkeypatch.setattr(preflight, "embedded_url", lambda server: f"url of {server}")
    existing, new = load_settings({"TASKLEDGER_HOME": str(tmp_path / "a")}), load_settings(
        {"TASKLEDGER_HOME": str(tmp_path / "b")})
    existing.pgdata.mkdir(parents=True)
    (existing.pgdata / "PG_VERSION").write_text("18\n")

    assert preflight.open_database(existing) == ("url of server", "server")
    with pytest.raises(ConfigError, match="no taskledger database in"):
        preflight.open_database(new)
    assert started == [existing.pgdata] and not new.home.exists()
    assert preflight.open_database(new, create=True) == ("url of server", "server")
    assert started == [existing.pgdata, new.pgdata]


def test_migrate_still_makes_a_database_that_does_not_exist(sandbox: Sandbox, pg_server_url: str) -> None:
    name = f"tl_cli_{uuid.uuid4().hex[:10]}"
    try:
        done = sandbox.run("migrate", TASKLEDGER_DATABASE_URL=make_conninfo(pg_server_url, dbname=name))
        assert (done.returncode, done.stdout) == (0, "schema is up to date\n"), done.stderr
    finally:
        with psycopg.connect(pg_server_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def test_users_token_without_taskledger_home_names_the_default_directory(sandbox: Sandbox) -> None:
    refused = sandbox.refused("users", "token", "admin", home=False)

    assert f"no taskledger database in {sandbox.cwd / 'var' / 'pgdata'}:" in refused.line
    assert "TASKLEDGER_HOME" in refused.line and "TASKLEDGER_DATABASE_URL" in refused.line


@pytest.mark.parametrize("argv", [("users", "token", "admin"), ("tokens", "list"), ("verify", "--quiet"),
                                  ("migrate",), ("schedule",), ("import", "-"), ("serve",)])
def test_a_database_at_a_closed_port_is_one_line_at_once(argv: tuple[str, ...], sandbox: Sandbox) -> None:
    refused = sandbox.refused(*argv, TASKLEDGER_DATABASE_URL=CLOSED_PORT_URL, TASKLEDGER_PORT=str(_free_port()))

    assert "cannot reach PostgreSQL at 127.0.0.1:1/x" in refused.line and "Connection refused" in refused.line
    assert "TASKLEDGER_DATABASE_URL" in refused.line
    assert refused.seconds < 10


@pytest.mark.parametrize("argv", [("users", "list"), ("verify", "--quiet"), ("export", "--quiet"), ("project",)])
def test_a_database_that_does_not_exist_asks_for_migrate(argv: tuple[str, ...], sandbox: Sandbox,
                                                         pg_server_url: str) -> None:
    url = make_conninfo(pg_server_url, dbname="tl_cli_no_such_db")

    refused = sandbox.refused(*argv, TASKLEDGER_DATABASE_URL=url)

    # (on an embedded server the database is named with its socket directory, before "does not exist")
    assert "tl_cli_no_such_db" in refused.line
    assert "does not exist: run `taskledger migrate` first" in refused.line
    assert "TASKLEDGER_DATABASE_URL" in refused.line


def test_a_refused_login_names_the_user_and_the_variable(sandbox: Sandbox, pg_server_url: str) -> None:
    url = make_conninfo(pg_server_url, user="tl_cli_nobody")

    refused = sandbox.refused("users", "list", TASKLEDGER_DATABASE_URL=url)

    assert "refused the login" in refused.line and "tl_cli_nobody" in refused.line
    assert "fix the user or password in TASKLEDGER_DATABASE_URL" in refused.line


@pytest.mark.parametrize("argv", [("users", "list"), ("tokens", "revoke", "0123456789abcdef"), ("verify", "--quiet"),
                                  ("replay", TASK, "--version", "1"), ("rebuild", "--quiet"), ("watchdog",)])
def test_an_unmigrated_database_asks_for_migrate(argv: tuple[str, ...], sandbox: Sandbox, unmigrated_url: str) -> None:
    refused = sandbox.refused(*argv, TASKLEDGER_DATABASE_URL=unmigrated_url)

    assert "is not migrated (no table taskledger_events): run `taskledger migrate` with the same " \
           "TASKLEDGER_DATABASE_URL" in refused.line


def test_a_database_missing_one_table_is_not_migrated_either(sandbox: Sandbox,
                                                             new_database: Callable[[], str]) -> None:
    url = new_database()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP TABLE credentials_version")

    refused = sandbox.refused("users", "add", "bob", "--role", "viewer", "--password-stdin",
                              TASKLEDGER_DATABASE_URL=url)

    assert "is not migrated (no table credentials_version)" in refused.line


def test_export_to_a_file_it_cannot_write_says_so(sandbox: Sandbox, database_url: str) -> None:
    refused = sandbox.refused("export", "--quiet", "--out", "/no/such/directory/events.jsonl",
                              TASKLEDGER_DATABASE_URL=database_url)

    assert refused.line == "taskledger export: cannot write /no/such/directory/events.jsonl: No such file or directory"


def test_serve_on_a_port_in_use_says_so_before_starting_anything(sandbox: Sandbox) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]

        refused = sandbox.refused("serve", TASKLEDGER_PORT=str(port))

    assert refused.line.startswith(f"taskledger: cannot listen on 127.0.0.1:{port} (Address already in use)")
    assert "TASKLEDGER_PORT" in refused.line


@pytest.mark.parametrize(("argv", "named"), [
    ((), "COMMAND"),
    (("users",), "ACTION"),
    (("users", "add", "a:b", "--role", "viewer"), "argument name: 'a:b' is not a user name"),
    (("users", "add", "bob", "--role", "boss"), "argument --role: invalid choice: 'boss'"),
    (("users", "token", "bob", "--expires-in", "3x"), "argument --expires-in:"),
    (("users", "token", "bob", "--label", "tab\there"), "argument --label:"),
    (("rebuild", "--batch-size", "many"), "argument --batch-size: 'many' is not a whole number"),
    (("rebuild", "--handover-timeout", "0"), "argument --handover-timeout:"),
    (("rebuild", "no_such_projection"), "unknown projection 'no_such_projection'"),
    (("project", "no_such_projection"), "unknown projection 'no_such_projection'"),
    (("schedule", "--interval", "soon"), "argument --interval: 'soon' is not a number of seconds"),
    (("watchdog", "--interval", "nan"), "argument --interval:"),
    (("replay", TASK, "--version", "0"), "argument --version: '0' is not a version number"),
    (("replay", TASK, "--at", "yesterday"), "argument --at: 'yesterday' is not an ISO-8601 time"),
    (("audit",), "the following arguments are required: TASK"),
])
def test_a_bad_argument_is_one_line_naming_it(argv: tuple[str, ...], named: str, sandbox: Sandbox) -> None:
    refused = sandbox.refused(*argv)

    assert named in refused.line


@pytest.mark.parametrize("failure", [PoolTimeout("couldn't get a connection after 5.00 sec"),
                                     StoreOperationalError("server closed the connection unexpectedly\n\tThis "
                                                           "probably means the server terminated abnormally")])
def test_a_database_lost_after_the_checks_is_one_line_too(failure: Exception,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    def handler(args: argparse.Namespace, settings: Settings) -> int:
        raise failure

    code = run(argparse.Namespace(handler=handler))

    [line] = capsys.readouterr().err.splitlines()
    assert code == 2 and line.startswith("taskledger: lost the connection to PostgreSQL (")
    assert "run the command again" in line and "TASKLEDGER_DATABASE_URL" in line


def test_gunicorn_refuses_a_bad_setting_in_its_master_with_one_line(sandbox: Sandbox) -> None:
    done = _gunicorn(sandbox, TASKLEDGER_WORKERS="abc", TASKLEDGER_DATABASE_URL=CLOSED_PORT_URL)

    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip() == ("taskledger: TASKLEDGER_WORKERS='abc' is not a whole number from 1 to 64; fix it "
                                   f"or unset it (default {load_settings({}).serving.workers})")


def test_gunicorn_without_a_database_url_says_to_set_it(sandbox: Sandbox) -> None:
    done = _gunicorn(sandbox)

    assert done.returncode == 2
    assert done.stderr.strip().startswith("taskledger: TASKLEDGER_DATABASE_URL is not set")


def test_a_gunicorn_worker_that_cannot_reach_the_database_stops_the_server_with_one_line(sandbox: Sandbox) -> None:
    # One worker: when several fail at once, gunicorn 27's master trips over its own HaltServer (a traceback).
    done = _gunicorn(sandbox, TASKLEDGER_WORKERS="1", TASKLEDGER_DATABASE_URL=CLOSED_PORT_URL)

    ours = [line for line in done.stderr.splitlines() if line.startswith("taskledger:")]
    assert done.returncode == 4 and "Traceback" not in done.stderr  # gunicorn's "App failed to load"
    assert ours == ["taskledger: cannot reach PostgreSQL at 127.0.0.1:1/x; is the service running, and is "
                    "TASKLEDGER_DATABASE_URL right? (Connection refused)"]


def test_the_gunicorn_settings_import_no_psycopg_before_the_workers_monkey_patch(sandbox: Sandbox) -> None:
    probe = ("import runpy, sys; runpy.run_path(sys.argv[1]); "
             "print(sorted(m for m in sys.modules if m.split('.')[0] in ('psycopg', 'psycopg_pool')))")
    env = {**os.environ, "TASKLEDGER_DATABASE_URL": CLOSED_PORT_URL}

    done = subprocess.run([sys.executable, "-c", probe, str(ROOT / "ops" / "gunicorn.conf.py")], env=env,
                          capture_output=True, text=True, timeout=60, check=False)

    assert (done.returncode, done.stdout.strip()) == (0, "[]"), done.stderr


def _gunicorn(sandbox: Sandbox, **variables: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TASKLEDGER_")}
    env.update(TASKLEDGER_HOME=str(sandbox.home), TASKLEDGER_PORT=str(_free_port()), **variables)
    return subprocess.run([sys.executable, "-m", "gunicorn", "-c", str(ROOT / "ops" / "gunicorn.conf.py")],
                          cwd=sandbox.cwd, env=env, capture_output=True, text=True, timeout=60, check=False)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_the_gunicorn_settings_give_every_mode_a_fresh_multiprocess_metrics_dir(tmp_path: Path) -> None:
    probe = ("import os, runpy, sys; conf = runpy.run_path(sys.argv[1]); conf['on_starting'](None); "
             "path = os.environ['PROMETHEUS_MULTIPROC_DIR']; print(path, sorted(os.listdir(path)))")
    conf = str(ROOT / "ops" / "gunicorn.conf.py")
    base = {k: v for k, v in os.environ.items() if k not in ("PROMETHEUS_MULTIPROC_DIR", "TASKLEDGER_PARENT_PID")}
    base["TASKLEDGER_DATABASE_URL"] = CLOSED_PORT_URL
    private = subprocess.run([sys.executable, "-c", probe, conf], env=base, capture_output=True, text=True,
                             timeout=60, check=True)
    path, files = private.stdout.split(" ", 1)
    assert "taskledger-metrics-" in path and files.strip() == "[]"  # production gunicorn sums its workers too
    given = tmp_path / "metrics"
    given.mkdir()
    (given / "counter_123.db").write_bytes(b"stale")
    (given / "keep.txt").write_text("not a metric file")
    named = subprocess.run([sys.executable, "-c", probe, conf], env={**base, "PROMETHEUS_MULTIPROC_DIR": str(given)},
                           capture_output=True, text=True, timeout=60, check=True)
    assert named.stdout.strip() == f"{given} ['keep.txt']"  # a previous run's metric files are wiped
