"""A projection process killed at an arbitrary point resumes and ends equal to a fresh replay."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable

import psycopg

from ledger.application import TaskLedger
from taskledger.config import eventsourcing_env
from tests.projections.helpers import drive, positions, read_tables, replay_into_fresh, wait_caught_up


def _leader_locks(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database "
                           "WHERE l.locktype = 'advisory' AND l.granted AND d.datname = current_database()").fetchone()
        return int(row[0]) if row else 0


def _start_projector(url: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "TASKLEDGER_DATABASE_URL": url, "TASKLEDGER_LOG_LEVEL": "WARNING"}
    return subprocess.Popen([sys.executable, "-m", "taskledger.cli", "project"], env=env)


def test_killed_projection_process_resumes_and_matches_a_fresh_replay(new_database: Callable[[], str]) -> None:
    url = new_database()
    app = TaskLedger(eventsourcing_env(url))
    projector = _start_projector(url)
    try:
        drive(app, n_tasks=40, seed=1)
        deadline = time.monotonic() + 30
        while positions(url)["task_view"] < 20 and time.monotonic() < deadline:
            time.sleep(0.01)
        projector.send_signal(signal.SIGKILL)
        projector.wait(timeout=10)
        killed_at = positions(url)
        assert 0 < killed_at["task_view"], "the projector had not started before it was killed"
        drive(app, n_tasks=40, seed=2)
        assert positions(url)["task_view"] == killed_at["task_view"], "nothing projects while it is down"
        projector = _start_projector(url)
        wait_caught_up(url)
    finally:
        projector.send_signal(signal.SIGTERM)
        projector.wait(timeout=30)
    fresh = new_database()
    replay_into_fresh(url, fresh)
    assert read_tables(url) == read_tables(fresh)
    for row in read_tables(url)["tasks"]:
        assert row["doc"] == app.repository.get(row["id"]).state.to_dict()
    app.close()


def test_projector_stops_cleanly_on_sigterm(new_database: Callable[[], str]) -> None:
    url = new_database()
    projector = _start_projector(url)
    deadline = time.monotonic() + 30
    while _leader_locks(url) < 2 and time.monotonic() < deadline and projector.poll() is None:
        time.sleep(0.05)
    assert _leader_locks(url) == 2, "the projector never took the lead of both projections"
    projector.send_signal(signal.SIGTERM)
    code = projector.wait(timeout=60)
    assert code == 0, f"the projector exited with {code} after SIGTERM"
