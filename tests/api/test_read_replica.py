"""GETs read a real streaming replica, a second behind its primary, and still read their writes; writes, auth and
facade writes keep seeing their own; with the replica stopped, GETs fail over to the primary (docs/replicas.md)."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from falcon import testing
from prometheus_client.parser import text_string_to_metric_families
from psycopg.conninfo import make_conninfo

from api.app import create_app
from api.auth import LoginLimiter
from ledger import commands as c
from ledger.application import TaskLedger
from projections.queries import PostgresTaskView
from projections.replica import ReplicaRoutedView, Route, Served, begin, finish
from projections.runner import start_projections
from taskledger import budget
from taskledger.accounts import PostgresAccounts
from taskledger.calendar import CronCalendar
from taskledger.config import ConfigError, eventsourcing_env, load_settings
from taskledger.migrate import migrate
from taskledger.wsgi import replica_view
from tests.api.conftest import BASE

BIN = Path("/usr/lib/postgresql/15/bin")
PRIMARY_PORT, REPLICA_PORT = 18501, 18502
APPLY_DELAY = 1.0  # the replica's recovery_min_apply_delay: the lag every test here reads across


def as_postgres(*args: str) -> None:
    """PostgreSQL refuses to run as root (and the tests run as root)."""
    subprocess.run(["runuser", "-u", "postgres", "--", *args], check=True, capture_output=True, timeout=60)


@dataclass
class Cluster:
    base: Path
    primary_url: str
    replica_url: str

    def pg_ctl(self, node: str, *args: str) -> None:
        as_postgres(str(BIN / "pg_ctl"), "-D", str(self.base / node), "-l", str(self.base / f"{node}.log"),
                    "-w", *args)


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    """A primary and a streaming replica of it (`pg_basebackup -R`) replaying each commit a second late."""
    base = Path(tempfile.mkdtemp(prefix="tl_read_"))
    shutil.chown(base, "postgres")
    dbname = f"tl_read_{uuid.uuid4().hex[:8]}"
    server = {"host": "127.0.0.1", "user": "postgres", "connect_timeout": "5"}
    found = Cluster(base, make_conninfo("", **server, port=str(PRIMARY_PORT), dbname=dbname),
                    make_conninfo("", **server, port=str(REPLICA_PORT), dbname=dbname))
    try:
        as_postgres(str(BIN / "initdb"), "-D", str(base / "primary"), "-U", "postgres", "--auth=trust", "-N")
        with open(base / "primary" / "postgresql.conf", "a") as conf:
            conf.write(f"port = {PRIMARY_PORT}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{base}'\n"
                       "wal_level = replica\nmax_wal_senders = 4\nmax_connections = 50\nfsync = off\n"
                       "shared_buffers = 32MB\n")
        with open(base / "primary" / "pg_hba.conf", "a") as hba:
            hba.write("host replication all 127.0.0.1/32 trust\n")
        found.pg_ctl("primary", "start")
        # Copied while still empty (quicker), so the schema reaches the replica as everything else does: streamed.
        as_postgres(str(BIN / "pg_basebackup"), "-h", "127.0.0.1", "-p", str(PRIMARY_PORT), "-U", "postgres",
                    "-D", str(base / "replica"), "-R", "-X", "stream", "-c", "fast", "--no-sync")
        with open(base / "replica" / "postgresql.conf", "a") as conf:
            conf.write(f"port = {REPLICA_PORT}\nrecovery_min_apply_delay = '{int(APPLY_DELAY * 1000)}ms'\n")
        found.pg_ctl("replica", "start")
        migrate(found.primary_url)  # (creates the database)
        wait_for_schema(found.replica_url)  # the tests pause the replay: the schema must be there first
        yield found
    finally:
        for node in ("replica", "primary"):
            if (base / node / "postmaster.pid").exists():
                found.pg_ctl(node, "stop", "-m", "immediate")
        shutil.rmtree(base, ignore_errors=True)


def wait_for_schema(replica_url: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with psycopg.connect(replica_url, autocommit=True) as conn:
                if conn.execute("SELECT to_regclass('tasks') IS NOT NULL AND to_regclass('task_view_tracking') "
                                "IS NOT NULL").fetchone() == (True,):
                    return
        except psycopg.OperationalError:  # the database itself not replayed yet
            pass
        assert time.monotonic() < deadline, f"the replica has not replayed the migration after {timeout:g} s"
        time.sleep(0.2)


@dataclass
class Stack:
    client: testing.TestClient
    primary: PostgresTaskView
    routed: ReplicaRoutedView
    cluster: Cluster
    headers: dict[str, dict[str, str]]
    accounts: PostgresAccounts

    def call(self, method: str, path: str, role: str = "operator", headers: dict[str, str] | None = None,
             **kwargs: Any) -> testing.Result:
        return self.client.simulate_request(method, path, headers={**self.headers[role], **(headers or {})}, **kwargs)

    def create(self, namespace: str) -> tuple[str, int]:
        created = self.call("POST", f"{BASE}/tasks", json={"namespace": namespace, "name": "job"})
        assert created.status_code == 201, created.text
        return created.json["id"], int(created.headers["Ledger-Position"])

    def served(self) -> dict[str, float]:
        """Where this process's GETs were answered so far, from /metrics."""
        text = self.client.simulate_get("/metrics").text
        family = next(f for f in text_string_to_metric_families(text) if f.name == "taskledger_replica_reads")
        return {s.labels["served_by"]: s.value for s in family.samples if s.name.endswith("_total")}

    def metric(self, name: str) -> float:
        text = self.client.simulate_get("/metrics").text
        return next(s.value for f in text_string_to_metric_families(text) for s in f.samples if s.name == name)


@pytest.fixture(scope="module")
def stack(cluster: Cluster) -> Iterator[Stack]:
    """The API (as taskledger.wsgi wires it) over the primary, reading from the replica; projections on the primary."""
    es_env = eventsourcing_env(cluster.primary_url, pool_size=2)
    ledger = TaskLedger(es_env, calendar=CronCalendar())
    primary = PostgresTaskView(cluster.primary_url, max_size=2)
    primary.open()
    replica = replica_view(cluster.replica_url, 2)
    accounts = PostgresAccounts(cluster.primary_url, pool=primary.pool)
    accounts.open()
    headers = {}
    for role in ("operator", "worker", "viewer"):  # bearer tokens: no argon2 on every first request
        accounts.create_user(f"rr-{role}", f"{role}-secret-pw", role)
        issued = accounts.create_token(f"rr-{role}")
        assert issued is not None
        headers[role] = {"Authorization": f"Bearer {issued.token}"}
    stopping = threading.Event()
    threads = start_projections(es_env, cluster.primary_url, stopping)
    routed = ReplicaRoutedView(primary, replica, retry_after=1.0)
    app = create_app(ledger, routed, accounts, min_position_wait=5.0,
                     limiter=LoginLimiter(per_source=10**6, per_name=10**6))
    try:
        yield Stack(testing.TestClient(app), primary, routed, cluster, headers, accounts)
    finally:
        stopping.set()
        for thread in threads:
            thread.join(timeout=10)
        for closing in (accounts, replica, primary, ledger):
            closing.close()


def replica_queries(cluster: Cluster) -> list[str]:
    """The last statement of each of the API's connections on the replica."""
    with psycopg.connect(cluster.replica_url, autocommit=True) as conn:
        rows = conn.execute("SELECT query FROM pg_stat_activity WHERE application_name = 'taskledger-api/replica'")
        return [row[0] for row in rows]


def on_replica(cluster: Cluster, statement: str) -> Any:
    with psycopg.connect(cluster.replica_url, autocommit=True) as conn:
        row = conn.execute(statement).fetchone()
        return row[0] if row else None


class Held:
    """A request sent from a thread while the replica's replay is paused: it must not be answered until resumed."""

    def __init__(self, send: Any) -> None:
        self.result: list[testing.Result] = []
        self.thread = threading.Thread(target=lambda: self.result.append(send()), daemon=True)

    def __enter__(self) -> Held:
        self.thread.start()
        return self

    def answer(self, cluster: Cluster) -> testing.Result:
        self.thread.join(0.5)
        assert self.thread.is_alive(), "answered while the replica could not show the write yet"
        on_replica(cluster, "SELECT pg_wal_replay_resume()")
        self.thread.join(30)
        assert self.result, "no answer 30 s after the replica resumed"
        return self.result[0]

    def __exit__(self, *exc: Any) -> None:
        self.thread.join(30)  # the caller resumes the replay in any case (finally)


def test_a_get_with_ledger_min_position_waits_for_the_replica_and_reads_the_write_there(stack: Stack) -> None:
    on_replica(stack.cluster, "SELECT pg_wal_replay_pause()")
    try:
        task_id, position = stack.create(f"rr-{uuid.uuid4().hex[:8]}")
        assert on_replica(stack.cluster, f"SELECT count(*) FROM tasks WHERE id = '{task_id}'") == 0
        before = stack.served().get("replica", 0.0)
        with Held(lambda: stack.call("GET", f"{BASE}/tasks/{task_id}", role="viewer",
                                     headers={"Ledger-Min-Position": str(position)})) as held:
            read = held.answer(stack.cluster)
    finally:
        on_replica(stack.cluster, "SELECT pg_wal_replay_resume()")
    assert read.status_code == 200, read.text
    assert read.json["id"] == task_id and read.json["state"] == "QUEUED"
    queries = replica_queries(stack.cluster)
    assert any("FROM tasks WHERE id" in query for query in queries)
    assert 1 <= len(queries) <= budget.api_replica(workers=1, pool_size=2).peak
    assert stack.served().get("replica", 0.0) == before + 1  # answered there, not by the primary after the wait


def test_a_get_without_the_header_may_read_the_replica_a_second_behind(stack: Stack) -> None:
    task_id, position = stack.create(f"rr-{uuid.uuid4().hex[:8]}")
    shown = stack.call("GET", f"{BASE}/tasks/{task_id}", headers={"Ledger-Min-Position": str(position)})
    assert shown.status_code == 200 and shown.json["state"] == "QUEUED"
    paused = stack.call("POST", f"{BASE}/tasks/{task_id}/pause", json={"reason": "replica test"})
    assert paused.status_code == 200, paused.text
    pause_position = int(paused.headers["Ledger-Position"])
    assert stack.primary.wait_for(pause_position, 5.0)
    assert stack.primary.get(uuid.UUID(task_id))["state"] == "PAUSED"  # type: ignore[index]

    stale = stack.call("GET", f"{BASE}/tasks/{task_id}", role="viewer")
    ready = stack.client.simulate_get("/readyz")
    assert stale.status_code == 200 and stale.json["state"] == "QUEUED"  # what the replica shows for a second
    assert ready.status_code == 200 and ready.json["replica"]["status"] == "up"
    assert ready.json["replica"]["lag_events"] >= 1, ready.json["replica"]
    assert stack.metric("taskledger_replica_up") == 1.0

    fresh = stack.call("GET", f"{BASE}/tasks/{task_id}", role="viewer",
                       headers={"Ledger-Min-Position": str(pause_position)})
    assert fresh.status_code == 200 and fresh.json["state"] == "PAUSED"


def test_native_writes_read_the_primary_a_claim_takes_a_task_the_replica_does_not_show_yet(stack: Stack) -> None:
    namespace = f"rr-{uuid.uuid4().hex[:8]}"
    task_id, position = stack.create(namespace)
    claimed = stack.call("POST", f"{BASE}/claims", role="worker", json={"worker": "w1", "namespace": namespace},
                         headers={"Ledger-Min-Position": str(position)})
    assert claimed.status_code == 200, claimed.text
    assert claimed.json["task_id"] == task_id
    assert stack.call("GET", f"{BASE}/tasks/{task_id}", role="viewer").status_code == 404  # not on the replica yet


def test_a_revoked_token_is_refused_at_once_though_the_replica_still_holds_it(stack: Stack) -> None:
    minted = stack.accounts.create_token("rr-viewer", "revoked soon")
    assert minted is not None
    bearer = {"Authorization": f"Bearer {minted.token}"}
    time.sleep(APPLY_DELAY + 0.5)  # the replica has the token now
    assert stack.client.simulate_get(f"{BASE}/tasks", headers=bearer).status_code == 200
    revoked = stack.client.simulate_delete(f"{BASE}/tokens/{minted.id}", headers=bearer)
    assert revoked.status_code == 204
    assert stack.client.simulate_get(f"{BASE}/tasks", headers=bearer).status_code == 401


def test_a_hugegraph_write_answers_once_the_replica_shows_it_so_its_next_get_sees_it(stack: Stack) -> None:
    graph = f"rr_{uuid.uuid4().hex[:8]}"
    on_replica(stack.cluster, "SELECT pg_wal_replay_pause()")
    try:
        with Held(lambda: stack.call("POST", f"/graphs/{graph}/jobs/gremlin",
                                     json={"gremlin": "g.V().count()"})) as held:
            created = held.answer(stack.cluster)
    finally:
        on_replica(stack.cluster, "SELECT pg_wal_replay_resume()")
    assert created.status_code == 201, created.text
    number = created.json["task_id"]
    before = stack.served().get("replica", 0.0)

    # As hugegraph-python does: no Ledger-Min-Position, ever.
    read = stack.call("GET", f"/graphs/{graph}/tasks/{number}", role="viewer")
    assert read.status_code == 200, read.text
    assert read.json["id"] == number and read.json["task_status"] == "queued"
    cancelled = stack.call("PUT", f"/graphs/{graph}/tasks/{number}", params={"action": "cancel"})
    assert cancelled.status_code == 202, cancelled.text
    again = stack.call("GET", f"/graphs/{graph}/tasks/{number}", role="viewer")
    assert again.status_code == 200 and again.json["task_status"] == cancelled.json["task_status"]
    assert again.json["task_status"] != "queued"
    assert stack.served().get("replica", 0.0) == before + 2


def test_with_the_replica_stopped_gets_fail_over_to_the_primary_and_return_once_it_is_back(stack: Stack) -> None:
    task_id, position = stack.create(f"rr-{uuid.uuid4().hex[:8]}")
    stack.cluster.pg_ctl("replica", "stop", "-m", "fast")
    try:
        before = stack.served()
        started = time.monotonic()
        read = stack.call("GET", f"{BASE}/tasks/{task_id}", role="viewer",
                          headers={"Ledger-Min-Position": str(position)})
        took = time.monotonic() - started
        assert read.status_code == 200, read.text
        assert read.json["id"] == task_id
        assert took < 3.0, f"the failover took {took:.3f} s"
        after = stack.served()
        assert after.get("primary_failover", 0.0) == before.get("primary_failover", 0.0) + 1
        assert after.get("replica", 0.0) == before.get("replica", 0.0)

        listed = stack.call("GET", f"{BASE}/tasks", role="viewer", params={"limit": "1"})
        assert listed.status_code == 200, listed.text  # within the retry interval: straight to the primary
        ready = stack.client.simulate_get("/readyz")
        assert ready.status_code == 200, ready.text  # the service still answers every GET
        assert ready.json["replica"]["status"] == "down" and ready.json["replica"]["serving"] == "primary"
        assert stack.metric("taskledger_replica_up") == 0.0
    finally:
        stack.cluster.pg_ctl("replica", "start")

    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        counted = stack.served().get("replica", 0.0)
        read = stack.call("GET", f"{BASE}/tasks/{task_id}", role="viewer",
                          headers={"Ledger-Min-Position": str(position)})
        assert read.status_code == 200, read.text
        if stack.served().get("replica", 0.0) == counted + 1:
            break
        time.sleep(0.5)
    else:
        pytest.fail("GETs did not return to the replica within 20 s of its restart")


def test_the_read_database_url_is_read_and_checked_like_the_database_url() -> None:
    assert load_settings({}).read_database_url is None
    url = "postgresql://reader@replica.example:5432/taskledger"
    assert load_settings({"TASKLEDGER_READ_DATABASE_URL": url}).read_database_url == url
    with pytest.raises(ConfigError, match="TASKLEDGER_READ_DATABASE_URL is not a PostgreSQL URL"):
        load_settings({"TASKLEDGER_READ_DATABASE_URL": "nonsense"})


def test_a_replica_whose_schema_is_behind_the_primary_sends_reads_to_the_primary(
        pg_server_url: str, queries: PostgresTaskView, ledger_app: TaskLedger, projections_running: Any) -> None:
    """A migration the replica has not replayed yet (seen when a replica was made moments before `migrate`): a
    missing table there is the replica being unusable, not a 500; its reads and waits go to the primary."""
    written = ledger_app.create_task(c.CreateTask("rr-schema", "behind"), c.Caller("t", "r"))
    task_id = written.task_id
    empty = f"tl_read_empty_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg_server_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{empty}"')
    behind = PostgresTaskView(make_conninfo(pg_server_url, dbname=empty), max_size=1)
    behind.open()
    try:
        routed = ReplicaRoutedView(queries, behind, retry_after=60.0)
        begin(Route.REPLICA)
        try:
            assert routed.wait_for(written.position, 10.0)
            assert routed.get(task_id) is not None
            assert finish() is Served.FAILOVER
        finally:
            finish()
    finally:
        behind.close()
        with psycopg.connect(pg_server_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE "{empty}" WITH (FORCE)')
