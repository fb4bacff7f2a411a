"""The watchdog: a worker that stops heartbeating loses its task; its late writes are refused (409)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from uuid import UUID

from ledger import commands as c
from ledger import state as st
from ledger.application import TaskLedger
from ledger.domain import Task
from projections.queries import PostgresTaskView
from taskledger.watchdog import Watchdog
from tests.api.conftest import Api, assert_problem
from tests.scheduling.support import OPERATOR, WORKER, FakeClock

Ledgers = Callable[[], TaskLedger]


def _later(seconds: float) -> FakeClock:
    return FakeClock(datetime.now(timezone.utc) + timedelta(seconds=seconds))


def _sweep(ledger_app: TaskLedger, queries: PostgresTaskView, api: Api, clock: FakeClock) -> None:
    assert queries.wait_for(api.position, 10)
    Watchdog(ledger_app, queries, clock=clock).run_once()
    api.position = ledger_app.head_position()  # read the watchdog's writes back


def test_a_worker_that_stops_heartbeating_loses_its_task_to_another_and_its_late_writes_get_409(
        api: Api, ledger_app: TaskLedger, queries: PostgresTaskView, namespace: str) -> None:
    task_id, epoch = api.running(namespace, max_retries=2, heartbeat_timeout=5)
    assert api.post(f"/tasks/{task_id}/heartbeat", {"lease_epoch": epoch}, role="worker").json["directive"] == "continue"

    _sweep(ledger_app, queries, api, _later(30))
    second = api.claim(namespace, worker="worker-2")
    late_heartbeat = api.post(f"/tasks/{task_id}/heartbeat", {"lease_epoch": epoch, "progress": 99}, role="worker")
    late_complete = api.post(f"/tasks/{task_id}/complete", {"lease_epoch": epoch, "result": {"rows": 1}},
                             role="worker")

    assert (second["task_id"], second["lease_epoch"]) == (task_id, epoch + 2)
    assert_problem(late_heartbeat, 409, "stale-lease")
    assert_problem(late_complete, 409, "stale-lease")
    task = api.get(f"/tasks/{task_id}").json
    assert (task["state"], task["worker"], task["retries"], task["lease_epoch"], task["result"]) == (
        "RUNNING", "worker-2", 1, epoch + 2, None)
    runs = api.get(f"/tasks/{task_id}/runs").json["runs"]
    assert [(r["worker"], r["outcome"]) for r in runs] == [("worker-1", "retrying"), ("worker-2", "running")]
    assert runs[0]["message"].startswith(f"lease {epoch} expired")


def test_an_expired_task_whose_retries_are_used_up_fails(
        api: Api, ledger_app: TaskLedger, queries: PostgresTaskView, namespace: str) -> None:
    task_id, epoch = api.running(namespace, max_retries=0, heartbeat_timeout=5)

    _sweep(ledger_app, queries, api, _later(30))

    task = api.get(f"/tasks/{task_id}").json
    assert (task["state"], task["retries"], task["worker"]) == ("FAILED", 0, None)
    assert task["error"].startswith(f"lease {epoch} of worker-1 expired at ")
    assert api.post("/claims", {"worker": "w2", "namespace": namespace}, role="worker").status_code == 204


def test_a_cancelling_task_whose_worker_vanished_ends_cancelled(
        api: Api, ledger_app: TaskLedger, queries: PostgresTaskView, namespace: str) -> None:
    task_id, epoch = api.running(namespace, max_retries=3, heartbeat_timeout=5)
    api.post(f"/tasks/{task_id}/cancel", {"reason": "not needed"}, role="operator")

    _sweep(ledger_app, queries, api, _later(30))

    task = api.get(f"/tasks/{task_id}").json
    assert (task["state"], task["retries"]) == ("CANCELLED", 0)
    assert_problem(api.post(f"/tasks/{task_id}/heartbeat", {"lease_epoch": epoch}, role="worker"), 409, "stale-lease")


def test_a_lease_within_its_timeout_is_not_touched(
        api: Api, ledger_app: TaskLedger, queries: PostgresTaskView, namespace: str) -> None:
    task_id, epoch = api.running(namespace, heartbeat_timeout=600)

    _sweep(ledger_app, queries, api, _later(30))

    assert api.get(f"/tasks/{task_id}").json["state"] == "RUNNING"
    assert api.post(f"/tasks/{task_id}/heartbeat", {"lease_epoch": epoch}, role="worker").status_code == 200


def test_the_view_proposes_a_lease_only_once_its_deadline_passed_and_a_heartbeat_moves_it(
        ledgers: Ledgers, queries: PostgresTaskView, projections_running: object, clock: FakeClock,
        namespace: str) -> None:
    app = ledgers()
    task = app.create_task(c.CreateTask(namespace, "cube", heartbeat_timeout=10), OPERATOR).task_id
    app.start_task(c.StartTask(task, "w"), WORKER)
    clock.advance(8)
    app.record_heartbeat(c.RecordHeartbeat(task, 1), WORKER)
    assert queries.wait_for(app.head_position(), 10)

    assert task not in queries.expired_leases(clock() + timedelta(seconds=9), 1000)
    assert task in queries.expired_leases(clock() + timedelta(seconds=10.001), 1000)
    app.complete_task(c.CompleteTask(task, 1), WORKER)
    assert queries.wait_for(app.head_position(), 10)
    assert task not in queries.expired_leases(clock() + timedelta(days=1), 1000)


class StaleView:
    """A view that lags: it still proposes a task whose worker has heartbeated since."""

    def __init__(self, task: UUID) -> None:
        self.task = task

    def expired_leases(self, now: datetime, limit: int) -> list[UUID]:
        return [self.task]


def test_the_watchdog_rechecks_the_task_itself_so_a_lagging_view_expires_nothing(
        ledgers: Ledgers, clock: FakeClock, namespace: str) -> None:
    app = ledgers()
    task = app.create_task(c.CreateTask(namespace, "cube", heartbeat_timeout=10), OPERATOR).task_id
    app.start_task(c.StartTask(task, "w"), WORKER)
    clock.advance(9)
    app.record_heartbeat(c.RecordHeartbeat(task, 1), WORKER)
    clock.advance(9)

    expired = Watchdog(app, StaleView(task), clock=clock).run_once()

    assert expired == 0
    assert app.task_as_of(task).state == st.RUNNING


def test_several_watchdogs_at_once_expire_a_lease_once(
        ledgers: Ledgers, clock: FakeClock, namespace: str) -> None:
    app = ledgers()
    task = app.create_task(c.CreateTask(namespace, "cube", heartbeat_timeout=10, max_retries=5), OPERATOR).task_id
    app.start_task(c.StartTask(task, "w"), WORKER)
    clock.advance(60)
    watchdogs = [Watchdog(ledgers(), StaleView(task), clock=clock, name=f"watchdog-{n}") for n in range(3)]
    start = threading.Barrier(3)
    counts: list[int] = []

    def sweep(watchdog: Watchdog) -> None:
        start.wait()
        counts.append(watchdog.run_once())

    threads = [threading.Thread(target=sweep, args=(w,)) for w in watchdogs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    expiries = [e for e in app.events.get(task) if isinstance(e, Task.LeaseExpired)]
    assert len(expiries) == 1 and sorted(counts) == [0, 0, 1]
    state = app.task_as_of(task)
    assert (state.state, state.retries, state.lease_epoch) == (st.QUEUED, 1, 2)
