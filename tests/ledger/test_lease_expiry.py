"""Lease expiry: a lease whose heartbeats stop is voided, the task retries, fails or ends cancelled."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import pytest

from ledger import commands as c
from ledger import state as st
from ledger.application import TaskLedger
from ledger.domain import Task
from ledger.errors import LeaseMismatchError
from tests.scheduling.support import (
    OPERATOR,
    START,
    WATCHDOG,
    WORKER,
    FakeClock,
    at,
    create_recurring,
    scheduled_ledger,
    tick,
)

TIMEOUT = 30.0


def _running(max_retries: int = 1) -> tuple[TaskLedger, FakeClock, UUID]:
    clock = FakeClock()
    app = scheduled_ledger(clock)
    task = app.create_task(c.CreateTask("ns", "export", max_retries=max_retries, heartbeat_timeout=TIMEOUT),
                           OPERATOR).task_id
    app.start_task(c.StartTask(task, "worker-1"), WORKER)
    return app, clock, task


def _expire(app: TaskLedger, task: UUID, now: datetime) -> c.Written:
    return app.expire_lease(c.ExpireLease(task, now), WATCHDOG)


def test_a_lease_is_kept_until_its_deadline_and_a_heartbeat_moves_the_deadline() -> None:
    app, clock, task = _running()
    at_deadline = _expire(app, task, START + timedelta(seconds=TIMEOUT))
    clock.advance(20)
    app.record_heartbeat(c.RecordHeartbeat(task, 1), WORKER)

    after_first_deadline = _expire(app, task, START + timedelta(seconds=TIMEOUT + 10))

    assert (at_deadline.lease_epoch, after_first_deadline.lease_epoch) == (None, None)
    state = app.task_as_of(task)
    assert (state.state, state.worker, state.lease_epoch) == (st.RUNNING, "worker-1", 1)


def test_an_expired_lease_requeues_the_task_with_one_more_retry_while_retries_are_left() -> None:
    app, clock, task = _running(max_retries=2)
    clock.advance(45)

    written = _expire(app, task, START + timedelta(seconds=TIMEOUT + 0.001))

    events = list(app.events.get(task))
    assert isinstance(events[-1], Task.LeaseExpired)
    assert (events[-1].lease_epoch, events[-1].outcome, events[-1].actor) == (1, "retrying", "watchdog")
    assert events[-1].deadline == "2024-03-01T12:00:30.500000+00:00"
    state = app.task_as_of(task)
    assert (written.lease_epoch, state.state, state.retries, state.worker, state.lease_epoch) == (
        1, st.QUEUED, 1, None, 2)
    assert state.error == "lease 1 of worker-1 expired at 2024-03-01T12:00:30.500000+00:00"


def test_an_expired_lease_fails_the_task_when_its_retries_are_used_up() -> None:
    app, clock, task = _running(max_retries=0)

    _expire(app, task, START + timedelta(minutes=5))

    state = app.task_as_of(task)
    assert (state.state, state.retries, state.ended_at) == (st.FAILED, 0, START.isoformat())


def test_an_expired_lease_of_a_cancelling_task_ends_it_cancelled() -> None:
    app, clock, task = _running()
    app.cancel_task(c.CancelTask(task, "not needed"), OPERATOR)

    _expire(app, task, START + timedelta(minutes=5))

    state = app.task_as_of(task)
    assert (state.state, state.retries, state.worker) == (st.CANCELLED, 0, None)


WRITES: dict[str, Callable[[TaskLedger, UUID], Any]] = {
    "heartbeat": lambda app, t: app.record_heartbeat(c.RecordHeartbeat(t, 1, progress=90.0), WORKER),
    "progress": lambda app, t: app.report_progress(c.ReportProgress(t, 1, 90.0), WORKER),
    "step": lambda app, t: app.update_step(c.UpdateStep(t, 1, 0, "SUCCEEDED"), WORKER),
    "output": lambda app, t: app.append_output(c.AppendOutput(t, 1, "0", "late page"), WORKER),
    "complete": lambda app, t: app.complete_task(c.CompleteTask(t, 1, {"rows": 1}), WORKER),
    "fail": lambda app, t: app.fail_task(c.FailTask(t, 1, "late failure"), WORKER),
}


@pytest.mark.parametrize("write", WRITES)
def test_every_late_write_of_the_worker_whose_lease_expired_is_refused_as_stale(write: str) -> None:
    app, clock, task = _running()
    _expire(app, task, START + timedelta(minutes=5))
    version = app.task_as_of(task).version

    with pytest.raises(LeaseMismatchError) as refused:
        WRITES[write](app, task)

    assert (refused.value.given, refused.value.current) == (1, 2)
    assert app.task_as_of(task).version == version


def test_the_next_worker_gets_a_lease_the_old_worker_never_had() -> None:
    app, clock, task = _running()
    _expire(app, task, START + timedelta(minutes=5))

    epoch = app.start_task(c.StartTask(task, "worker-2"), WORKER).lease_epoch

    assert epoch == 3
    with pytest.raises(LeaseMismatchError):
        app.record_heartbeat(c.RecordHeartbeat(task, 1), WORKER)
    assert app.record_heartbeat(c.RecordHeartbeat(task, 3), WORKER).directive == st.CONTINUE


def test_expiring_again_records_nothing() -> None:
    app, clock, task = _running()
    first = _expire(app, task, START + timedelta(minutes=5))

    second = _expire(app, task, START + timedelta(minutes=6))

    assert (first.lease_epoch, second.lease_epoch, second.version) == (1, None, first.version)


@pytest.mark.parametrize("action", ["pause", "complete", "abort"])
def test_a_task_whose_lease_already_ended_has_nothing_to_expire(action: str) -> None:
    app, clock, task = _running()
    {"pause": lambda: app.pause_task(c.PauseTask(task), OPERATOR),
     "complete": lambda: app.complete_task(c.CompleteTask(task, 1), WORKER),
     "abort": lambda: app.abort_task(c.AbortTask(task), OPERATOR)}[action]()
    version = app.task_as_of(task).version

    assert _expire(app, task, START + timedelta(hours=1)).version == version


def test_an_expired_run_of_a_recurring_task_is_retried_then_recorded_failed_and_the_task_waits() -> None:
    clock = FakeClock()
    app = scheduled_ledger(clock)
    task = create_recurring(app, max_retries=1, heartbeat_timeout=10.0)
    tick(app, task, at("12:00:02.100"))
    app.start_task(c.StartTask(task, "worker-1"), WORKER)

    _expire(app, task, at("12:01:00"))
    retried = app.task_as_of(task)
    app.start_task(c.StartTask(task, "worker-2"), WORKER)
    _expire(app, task, at("12:02:00"))

    assert (retried.state, retried.retries, retried.pending_runs[0]["run"]) == (st.QUEUED, 1, 1)
    state = app.task_as_of(task)
    assert (state.state, state.retries, state.run_count, state.pending_runs, state.lease_epoch) == (
        st.QUEUED, 0, 1, [], 4)
