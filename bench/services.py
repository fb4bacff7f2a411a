"""What the benchmark runs against: the scratch database, `taskledger serve`, and the trivial gunicorn app."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

REPO = Path(__file__).resolve().parent.parent
GUNICORN_CONF = REPO / "ops" / "gunicorn.conf.py"
SCRATCH_DB = "taskledger_bench"
DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
RAW_TABLE = "bench_raw_events"
APPLICATION = "TaskLedger"  # the row each projection's tracking table keeps for the event store
READY_LINE = re.compile(r"taskledger is serving at (http://\S+/ledger/v1)")


class ServiceError(RuntimeError):
    """A process under test did not start, or the database did not answer."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def reachable(url: str, timeout: int = 3) -> bool:
    try:
        with psycopg.connect(url, connect_timeout=timeout, autocommit=True):
            return True
    except psycopg.Error:
        return False


def describe_url(url: str) -> str:
    """host:port/dbname of a URL, never its password."""
    info = conninfo_to_dict(url)
    return f"{info.get('host', 'localhost')}:{info.get('port', '5432')}/{info.get('dbname', '')}"


class ScratchDatabase:
    """The benchmark's own database on the chosen server: dropped and recreated, dropped at the end."""

    def __init__(self, server_url: str, name: str = SCRATCH_DB) -> None:
        self.admin_url = make_conninfo(server_url, dbname="postgres")
        self.url = make_conninfo(server_url, dbname=name)
        self.name = name

    def recreate(self) -> None:
        self.drop()
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.name)))

    def drop(self) -> None:
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(self.name)))

    def create_raw_table(self) -> None:
        """A table shaped like the event store's: same columns, primary key and unique position index."""
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(f"""
                CREATE TABLE {RAW_TABLE} (
                    originator_id uuid NOT NULL,
                    originator_version bigint NOT NULL,
                    topic text,
                    state bytea,
                    notification_id bigserial NOT NULL,
                    PRIMARY KEY (originator_id, originator_version))""")
            conn.execute(f"CREATE UNIQUE INDEX {RAW_TABLE}_notification_id_idx ON {RAW_TABLE} (notification_id)")

    def server_info(self) -> dict[str, str]:
        with psycopg.connect(self.url, autocommit=True) as conn:
            rows = conn.execute("SELECT name, setting FROM pg_settings WHERE name IN "
                                "('server_version', 'fsync', 'synchronous_commit', 'shared_buffers', "
                                "'max_connections', 'wal_sync_method')").fetchall()
        return {str(name): str(setting) for name, setting in rows}

    def projection_lag(self) -> tuple[int, int]:
        """(head position, slowest projection's position), from the event store and tracking tables."""
        with psycopg.connect(self.url, autocommit=True) as conn:
            head = conn.execute("SELECT coalesce(max(notification_id), 0) FROM taskledger_events").fetchone()
            tables = [r[0] for r in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() "
                "AND tablename LIKE '%\\_tracking'").fetchall()]
            slowest = None
            for table in tables:
                row = conn.execute(sql.SQL("SELECT coalesce(max(notification_id), 0) FROM {} "
                                           "WHERE application_name = %s").format(sql.Identifier(table)),
                                   (APPLICATION,)).fetchone()
                value = int(row[0]) if row else 0
                slowest = value if slowest is None else min(slowest, value)
        return int(head[0]) if head else 0, slowest if slowest is not None else 0

    def head(self) -> int:
        """The event store's last position."""
        with psycopg.connect(self.url, autocommit=True) as conn:
            row = conn.execute("SELECT coalesce(max(notification_id), 0) FROM taskledger_events").fetchone()
        return int(row[0]) if row else 0

    def wait_for_projections(self, timeout: float = 60.0) -> tuple[bool, float, int]:
        """Waits until every projection reached the head: (caught up, seconds waited, events behind at start)."""
        start = time.monotonic()
        head, position = self.projection_lag()
        behind = max(0, head - position)
        while position < head:
            if time.monotonic() - start > timeout:
                return False, time.monotonic() - start, behind
            time.sleep(0.1)
            head, position = self.projection_lag()
        return True, time.monotonic() - start, behind

    def event_sizes(self) -> dict[str, float]:
        """Average stored event size (bytes of `state`) per event topic."""
        with psycopg.connect(self.url, autocommit=True) as conn:
            rows = conn.execute("SELECT topic, avg(octet_length(state)), count(*) FROM taskledger_events "
                                "GROUP BY topic ORDER BY count(*) DESC").fetchall()
        return {str(topic).rsplit(":", 1)[-1]: round(float(size), 1) for topic, size, _ in rows}


class Process:
    """A child process in its own session writing straight to a log file; stopped with SIGTERM.

    The output goes to the file directly (no pipe through this process), so a busy access log never
    waits on the benchmark itself.
    """

    def __init__(self, name: str, cmd: Sequence[str], env: dict[str, str], log_path: Path) -> None:
        self.name = name
        self.log_path = log_path
        with open(log_path, "wb") as log:
            self.popen = subprocess.Popen(list(cmd), env=env, cwd=REPO, stdin=subprocess.DEVNULL,
                                          stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def wait_ready_line(self, pattern: re.Pattern[str], timeout: float) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        offset = 0
        pending = b""
        while time.monotonic() < deadline:
            with open(self.log_path, "rb") as log:
                log.seek(offset)
                chunk = log.read()
            offset += len(chunk)
            lines = (pending + chunk).split(b"\n")
            pending = lines.pop()
            for line in lines:
                match = pattern.search(line.decode(errors="replace"))
                if match:
                    return match
            if self.popen.poll() is not None:
                break
            time.sleep(0.2)
        raise ServiceError(f"{self.name} did not get ready (exit code {self.popen.poll()}); "
                           f"last lines of {self.log_path}:\n{self.tail()}")

    def wait_http_ok(self, url: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.popen.poll() is None:
            try:
                with urllib.request.urlopen(url, timeout=2) as answer:
                    if answer.status == 200:
                        return
            except OSError:
                time.sleep(0.2)
        raise ServiceError(f"{self.name} did not answer {url} (exit code {self.popen.poll()}); "
                           f"last lines of {self.log_path}:\n{self.tail()}")

    def tail(self, lines: int = 25) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def pids(self) -> list[int]:
        """The process and its descendants (for py-spy and CPU accounting)."""
        found = [self.popen.pid]
        for pid in found:
            try:
                children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
            except OSError:
                continue
            found.extend(int(c) for c in children)
        return found

    def stop(self, timeout: float = 45.0) -> int | None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                # Only this process's own session: the service and the gunicorn it started.
                os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(timeout=10)
        return self.popen.returncode


def start_service(home: Path, port: int, database_url: str, password: str, server_env: dict[str, str],
                  log_dir: Path) -> Process:
    env = {**os.environ, **server_env, "TASKLEDGER_HOME": str(home), "TASKLEDGER_PORT": str(port),
           "TASKLEDGER_BIND": "127.0.0.1", "TASKLEDGER_DATABASE_URL": database_url,
           "TASKLEDGER_ADMIN_PASSWORD": password}
    return Process("taskledger serve", [sys.executable, "-m", "taskledger.cli", "serve"], env,
                   log_dir / "taskledger-serve.log")


def migrate_and_serve(database_url: str, workdir: Path, password: str, server_env: dict[str, str],
                      progress: Any = print) -> tuple[Process, str]:
    """`taskledger migrate` on the scratch database, then `taskledger serve` on a free port: the process
    and the URL it serves the native API at."""
    progress("taskledger migrate on the scratch database")
    migrate = subprocess.run([sys.executable, "-m", "taskledger.cli", "migrate"], cwd=REPO,
                             env={**os.environ, "TASKLEDGER_DATABASE_URL": database_url,
                                  "TASKLEDGER_HOME": str(workdir / "home")},
                             capture_output=True, text=True, timeout=300)
    if migrate.returncode != 0:
        raise ServiceError(f"taskledger migrate failed:\n{migrate.stdout}{migrate.stderr}")
    progress("starting taskledger serve")
    process = start_service(workdir / "home", free_port(), database_url, password, server_env, workdir)
    url = process.wait_ready_line(READY_LINE, timeout=120).group(1)
    progress(f"taskledger is serving at {url}")
    return process, url


def drop_scratch(db: ScratchDatabase | None, embedded: Any, keep_database: bool, progress: Any = print) -> None:
    """The end of a bench run: its scratch database dropped (unless kept), an embedded server it started
    cleaned up; a failure is reported and the rest still done."""
    if db is not None and not keep_database:
        try:
            db.drop()
            progress(f"dropped {db.name}")
        except Exception as exc:  # noqa: BLE001 -- report, keep cleaning up
            print(f"bench: could not drop {db.name}: {exc}", file=sys.stderr)
    if embedded is not None:
        embedded.cleanup()


# ops/gunicorn.conf.py refuses to start without a database URL; the trivial app never connects to it.
UNUSED_DATABASE_URL = "postgresql://unused@127.0.0.1:1/unused"


def start_trivial(port: int, server_env: dict[str, str], log_dir: Path) -> Process:
    """The trivial falcon app under gunicorn with ops/gunicorn.conf.py; only the app and bind differ."""
    env = {**os.environ, "TASKLEDGER_DATABASE_URL": UNUSED_DATABASE_URL, **server_env}
    cmd = [sys.executable, "-m", "gunicorn", "-c", str(GUNICORN_CONF), "--bind", f"127.0.0.1:{port}",
           "bench.trivial:create_app()"]
    return Process("trivial gunicorn", cmd, env, log_dir / "trivial-gunicorn.log")


def gunicorn_settings(server_env: dict[str, str]) -> dict[str, Any]:
    """The settings ops/gunicorn.conf.py resolves to under this environment (what both servers get)."""
    saved = dict(os.environ)
    try:
        os.environ.update({"TASKLEDGER_DATABASE_URL": UNUSED_DATABASE_URL, **server_env})
        values: dict[str, Any] = {}
        exec(compile(GUNICORN_CONF.read_text(), str(GUNICORN_CONF), "exec"), values)  # noqa: S102
    finally:
        os.environ.clear()
        os.environ.update(saved)
    keys = ("workers", "worker_class", "threads", "keepalive", "accesslog", "loglevel")
    return {k: values.get(k) for k in keys}


class SessionSampler:
    """Samples pg_stat_activity of the scratch database: how many sessions run, wait on a lock, or
    sit idle inside a transaction (the client holds locks while it is busy or descheduled)."""

    def __init__(self, url: str, database: str, interval: float = 0.2) -> None:
        self.url = url
        self.database = database
        self.interval = interval
        self.counts: dict[str, int] = {}
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="session-sampler", daemon=True)

    def __enter__(self) -> SessionSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        query = """
            SELECT CASE WHEN wait_event_type = 'Lock' THEN 'lock-wait'
                        WHEN state = 'idle in transaction' THEN 'idle-in-tx'
                        WHEN state = 'active' AND wait_event_type = 'IO' THEN 'io-wait'
                        WHEN state = 'active' THEN 'active' END AS kind, count(*)
            FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid() GROUP BY 1"""
        with psycopg.connect(self.url, autocommit=True) as conn:
            while not self._stop.wait(self.interval):
                for kind, count in conn.execute(query, (self.database,)).fetchall():
                    if kind:
                        self.counts[kind] = self.counts.get(kind, 0) + int(count)
                self.samples += 1

    def averages(self) -> dict[str, float]:
        """Average number of sessions in each condition over the samples."""
        if not self.samples:
            return {}
        return {kind: round(self.counts.get(kind, 0) / self.samples, 2)
                for kind in ("active", "io-wait", "lock-wait", "idle-in-tx")}
