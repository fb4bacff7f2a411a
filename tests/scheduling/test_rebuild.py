"""Read models of recurring tasks and expired leases can be rebuilt: a fresh replay equals the live tables."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import psycopg
from psycopg.rows import dict_row

from ledger import commands as c
from ledger.application import TaskLedger
from projections.runner import start_projections
from taskledger.config import eventsourcing_env
from tests.projections.helpers import replay_into_fresh, wait_caught_up
from tests.scheduling.support import (
    OPERATOR,
    WATCHDOG,
    WORKER,
    FakeClock,
    at,
    create_recurring,
    scheduled_ledger,
    tick,
)


def _workload(app: TaskLedger, clock: FakeClock) -> None:
    """Runs that succeed, fail, retry after an expired lease, are skipped, queued, paused and cancelled."""
    skip = create_recurring(app, max_retries=1, heartbeat_timeout=5)
    queue = create_recurring(app, overlap="queue")
    for second in range(2, 30, 2):
        clock.set(at(f"12:00:{second:02d}.200"))
        for task in (skip, queue):
            tick(app, task, clock())
        if second % 6 == 0:
            epoch = app.start_task(c.StartTask(skip, "w"), WORKER).lease_epoch or 0
            clock.advance(0.5)
            if second == 12:
                app.expire_lease(c.ExpireLease(skip, clock() + timedelta(seconds=10)), WATCHDOG)
            else:
                app.complete_task(c.CompleteTask(skip, epoch, {"second": second}), WORKER)
        if second == 8:
            app.start_task(c.StartTask(queue, "w"), WORKER)
            app.pause_task(c.PauseTask(queue), OPERATOR)
        if second == 14:
            app.resume_task(c.ResumeTask(queue), OPERATOR)
    app.cancel_task(c.CancelTask(queue), OPERATOR)


def _tables(url: str) -> dict[str, list[dict[str, Any]]]:
    with psycopg.connect(url, row_factory=dict_row) as conn:
        return {
            "tasks": conn.execute("SELECT * FROM tasks ORDER BY id").fetchall(),
            "task_runs": conn.execute("SELECT * FROM task_runs ORDER BY task_id, attempt").fetchall(),
            "task_occurrences": conn.execute("SELECT * FROM task_occurrences ORDER BY task_id, run").fetchall(),
        }


def test_a_fresh_replay_of_recurring_work_rebuilds_the_same_task_view_and_history(
        new_database: Callable[[], str]) -> None:
    live, fresh = new_database(), new_database()
    clock = FakeClock()
    app = scheduled_ledger(clock, eventsourcing_env(live))
    stopping = threading.Event()
    threads = start_projections(eventsourcing_env(live, pool_size=2), live, stopping)
    try:
        _workload(app, clock)
        wait_caught_up(live)
    finally:
        stopping.set()
        for thread in threads:
            thread.join(timeout=10)
        app.close()

    replay_into_fresh(live, fresh)

    before, after = _tables(live), _tables(fresh)
    statuses = {r["status"] for r in before["task_occurrences"]}
    assert statuses >= {"succeeded", "pending", "skipped"} and len(before["task_occurrences"]) > 20
    assert any(r["reason"] == "cancelled" for r in before["task_occurrences"])
    assert before == after
