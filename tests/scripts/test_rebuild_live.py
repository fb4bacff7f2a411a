"""rebuild against a running service: the live runners hand their lead over for the switch and carry on
afterwards, API reads under writes never fail or miss a task, and a killed rebuild resumes."""

from __future__ import annotations

import base64
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from uuid import UUID

import psycopg
import pytest
from falcon import testing

from api.app import create_app
from ledger import commands as c
from ledger.application import TaskLedger
from projections.queries import PostgresTaskView
from projections.runner import SupervisedProjection, lock_key, release_lead, request_lead, start_projections
from taskledger.accounts import PostgresAccounts
from taskledger.config import eventsourcing_env
from tests.projections.helpers import WHO, drive, positions, wait_caught_up
from tests.scripts.conftest import CLI, Workload
from tests.scripts.test_rebuild import assert_equal_to_a_fresh_replay, catalog, schemas_like

NS = "rebuild-load"
VIEWER = ("rb-viewer", "viewer-secret-pw")


@dataclass
class Running:
    url: str
    app: TaskLedger
    runners: list[SupervisedProjection]
    stopping: threading.Event = field(default_factory=threading.Event)


@pytest.fixture
def running(new_database: Callable[[], str]) -> Iterator[Callable[[int], Running]]:
    """A fresh database with `n` driven tasks and the projection runners in-process, as `serve` runs them."""
    made: list[Running] = []

    def make(n: int) -> Running:
        url = new_database()
        app = TaskLedger(eventsourcing_env(url, pool_size=2))
        drive(app, n_tasks=n, seed=3, namespace=NS)
        stopping = threading.Event()
        made.append(Running(url, app, start_projections(eventsourcing_env(url, pool_size=2), url, stopping), stopping))
        wait_caught_up(url)
        return made[-1]

    yield make
    for r in made:
        r.stopping.set()
        for thread in r.runners:
            thread.join(timeout=10)
        r.app.close()


def test_a_leading_runner_hands_its_lead_over_on_request_and_takes_it_back(
        running: Callable[[int], Running]) -> None:
    r = running(2)
    task_view = r.runners[0]
    with psycopg.connect(r.url, autocommit=True) as conn:
        request_lead(conn, "task_view", timeout=10)
        assert not task_view.leading.is_set() and task_view.handovers == 1
        written = r.app.create_task(c.CreateTask(namespace=NS, name="while paused"), WHO)
        time.sleep(1.5)
        assert positions(r.url)["task_view"] < written.position, "the runner went on writing without its lead"
        release_lead(conn, "task_view")
    wait_caught_up(r.url, timeout=15)
    assert task_view.leading.wait(10) and task_view.failures == 0


def test_a_rebuild_whose_live_runner_does_not_hand_over_exits_2_and_keeps_its_work(
        workload: Callable[..., Workload], cli: CLI, capsys: pytest.CaptureFixture[str]) -> None:
    w = workload(n=3)
    with psycopg.connect(w.url, autocommit=True) as holder:  # an old runner: holds the lock, never looks
        holder.execute("SELECT pg_advisory_lock(%s::bigint)", (lock_key("task_view"),))
        code = cli(w.url, "rebuild", "task_view", "--quiet", "--handover-timeout", "1")

    assert code == 2
    assert "the live runner of task_view did not hand over its lead within 1s" in capsys.readouterr().err
    assert schemas_like(w.url, "taskledger_rebuild_") == ["taskledger_rebuild_task_view"]


class ApiLoad:
    """Threads reading known tasks and lists through the API, and a thread writing new tasks meanwhile."""

    def __init__(self, r: Running, known: list[UUID]) -> None:
        self.r = r
        self.view = PostgresTaskView(r.url)
        self.view.open()
        self.accounts = PostgresAccounts(r.url)
        self.accounts.open()
        self.accounts.create_user(*VIEWER, "viewer")
        self.client = testing.TestClient(create_app(r.app, self.view, self.accounts, min_position_wait=5.0))
        self.auth = {"Authorization": "Basic " + base64.b64encode(":".join(VIEWER).encode()).decode()}
        self.known = list(known)
        self.reads: list[float] = []
        self.failures: list[str] = []
        self.written: list[float] = []
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._read, args=(i,)) for i in range(2)]
        self.threads.append(threading.Thread(target=self._write))

    def __enter__(self) -> ApiLoad:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=30)
        self.view.close()
        self.accounts.close()

    def _read(self, offset: int) -> None:
        i, least_total = offset, 0
        while not self.stop.is_set():
            task_id = self.known[i % len(self.known)]
            got = self.client.simulate_get(f"/ledger/v1/tasks/{task_id}", headers=self.auth)
            if got.status_code != 200 or got.json["id"] != str(task_id):
                self.failures.append(f"GET {task_id}: {got.status_code} {got.text[:200]}")
            if i % 5 == 0:
                expected = len(self.known)
                page = self.client.simulate_get("/ledger/v1/tasks", params={"namespace": NS, "limit": "5"},
                                                headers=self.auth)
                if page.status_code != 200 or page.json["total"] < max(expected, least_total):
                    self.failures.append(f"list: {page.status_code} {page.text[:200]} (expected >= {expected})")
                else:
                    least_total = page.json["total"]
            self.reads.append(time.monotonic())
            i += 2

    def _write(self) -> None:
        seed = 100
        while not self.stop.is_set():
            ids = drive(self.r.app, n_tasks=1, seed=seed, namespace=NS)
            seed += 1
            if not self.view.wait_for(positions(self.r.url)["head"], 10):
                self.failures.append("a write was not visible in the read tables within 10s")
            self.known.extend(ids)
            self.written.append(time.monotonic())
            time.sleep(0.02)


def test_api_reads_see_no_error_and_no_missing_task_while_rebuilds_switch_under_writes(
        running: Callable[[int], Running], cli: CLI, new_database: Callable[[], str]) -> None:
    r = running(150)
    with psycopg.connect(r.url) as conn:
        known = [row[0] for row in conn.execute("SELECT id FROM tasks").fetchall()]

    with ApiLoad(r, known) as load:
        time.sleep(0.3)
        started = time.monotonic()
        codes = [cli(r.url, "rebuild", "--quiet"), cli(r.url, "rebuild", "task_view", "--quiet", "--drop-retired")]
        ended = time.monotonic()
        time.sleep(0.3)

    during = [t for t in load.reads if started <= t <= ended]
    assert codes == [0, 0]
    assert load.failures == []
    assert len(during) > 50 and max(b - a for a, b in zip(during, during[1:])) < 2.0, "reads stalled"
    assert any(started <= t <= ended for t in load.written), "no write went on during the rebuild"
    wait_caught_up(r.url)
    assert all(t.leading.wait(10) for t in r.runners), "a runner did not take its lead back"
    assert [(t.handovers, t.failures) for t in r.runners] == [(2, 0), (1, 0)]
    assert_equal_to_a_fresh_replay(r.url, new_database)


def _project_process(url: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "TASKLEDGER_DATABASE_URL": url, "TASKLEDGER_LOG_LEVEL": "WARNING"}
    return subprocess.Popen([sys.executable, "-m", "taskledger.cli", "project"], env=env)


def _leaders(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted "
                           "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())").fetchone()
    return int(row[0]) if row else 0


def test_a_project_process_and_in_process_runners_both_carry_on_after_the_switch(
        new_database: Callable[[], str], cli: CLI) -> None:
    url = new_database()
    app = TaskLedger(eventsourcing_env(url, pool_size=1))
    drive(app, n_tasks=20, seed=4)
    projector = _project_process(url)
    stopping = threading.Event()
    standby: list[SupervisedProjection] = []
    try:
        deadline = time.monotonic() + 30
        while _leaders(url) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        standby = start_projections(eventsourcing_env(url, pool_size=2), url, stopping)
        wait_caught_up(url)

        assert cli(url, "rebuild", "--quiet") == 0

        drive(app, n_tasks=10, seed=5)
        wait_caught_up(url)
        assert projector.poll() is None and all(t.failures == 0 for t in standby)
    finally:
        projector.send_signal(signal.SIGTERM)
        projector.wait(timeout=30)
        stopping.set()
        for thread in standby:
            thread.join(timeout=10)
        app.close()
    assert_equal_to_a_fresh_replay(url, new_database)


def _rebuilt_position(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT to_regclass('taskledger_rebuild_task_view.task_view_tracking') IS NOT NULL"
                           ).fetchone()
        if not (row and row[0]):
            return 0
        row = conn.execute("SELECT coalesce(max(notification_id), 0) FROM "
                           "taskledger_rebuild_task_view.task_view_tracking WHERE application_name = 'TaskLedger'"
                           ).fetchone()
        return int(row[0]) if row else 0


def test_a_rebuild_killed_midway_resumes_where_it_stopped(
        workload: Callable[..., Workload], cli: CLI, new_database: Callable[[], str],
        capsys: pytest.CaptureFixture[str]) -> None:
    w = workload(n=250)
    before = catalog(w.url)
    env = {**os.environ, "TASKLEDGER_DATABASE_URL": w.url, "TASKLEDGER_LOG_LEVEL": "WARNING"}
    process = subprocess.Popen([sys.executable, "-m", "taskledger.cli", "rebuild", "--quiet", "--batch-size", "100"],
                               env=env,
                               stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while _rebuilt_position(w.url) == 0 and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.005)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)
    killed_at = _rebuilt_position(w.url)

    assert 0 < killed_at < before["positions"]["head"], "the rebuild was not stopped midway"
    assert catalog(w.url)["tables"] == before["tables"] and schemas_like(w.url, "taskledger_retired_") == []
    assert cli(w.url, "rebuild", "--quiet") == 0
    resumed = re.search(r"resuming the rebuild in schema taskledger_rebuild_task_view after position (\d+)",
                        capsys.readouterr().err)
    assert resumed is not None and int(resumed.group(1)) == killed_at
    assert_equal_to_a_fresh_replay(w.url, new_database)
