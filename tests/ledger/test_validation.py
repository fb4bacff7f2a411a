"""Values that break a domain rule are refused with InvalidValueError naming the field; no event."""

from __future__ import annotations

import math
from typing import Any

import pytest

from ledger import commands as c
from ledger import state as st
from ledger.errors import InvalidValueError, LedgerError
from tests.ledger.support import OPERATOR, WORKER, drive, events_of, new_ledger, state_of


def _refused(app: Any, task_id: Any, field: str, write: Any) -> InvalidValueError:
    events = events_of(app, task_id)
    with pytest.raises(InvalidValueError) as refused:
        write()
    assert refused.value.field == field
    assert str(refused.value).startswith(f"{field}: ")
    assert events_of(app, task_id) == events
    return refused.value


@pytest.mark.parametrize("progress", [-0.1, 100.1, -1000.0, math.nan, math.inf])
def test_progress_outside_0_to_100_is_refused(progress: float) -> None:
    app = new_ledger()
    task = drive(app, st.RUNNING)

    _refused(app, task.task_id, "progress", lambda: app.report_progress(
        c.ReportProgress(task.task_id, task.lease_epoch, progress), WORKER))
    _refused(app, task.task_id, "progress", lambda: app.record_heartbeat(
        c.RecordHeartbeat(task.task_id, task.lease_epoch, progress=progress), WORKER))
    assert state_of(app, task.task_id).progress == 0.0


@pytest.mark.parametrize("progress", [0.0, 100.0, 0, 100])
def test_progress_at_the_bounds_is_accepted(progress: float) -> None:
    app = new_ledger()
    task = drive(app, st.RUNNING)

    app.report_progress(c.ReportProgress(task.task_id, task.lease_epoch, progress), WORKER)
    app.record_heartbeat(c.RecordHeartbeat(task.task_id, task.lease_epoch, progress=progress), WORKER)

    assert state_of(app, task.task_id).progress == progress


def test_a_heartbeat_while_cancelling_still_validates_its_progress() -> None:
    app = new_ledger()
    task = drive(app, st.CANCELLING)

    _refused(app, task.task_id, "progress", lambda: app.record_heartbeat(
        c.RecordHeartbeat(task.task_id, task.lease_epoch, progress=101.0), WORKER))


@pytest.mark.parametrize("step", [-1, 2, 99])
def test_a_step_index_outside_the_tasks_steps_is_refused(step: int) -> None:
    app = new_ledger()
    task = drive(app, st.RUNNING, steps=("extract", "load"))

    err = _refused(app, task.task_id, "step", lambda: app.update_step(
        c.UpdateStep(task.task_id, task.lease_epoch, step, "RUNNING"), WORKER))
    assert err.rule == "must be between 0 and 1"


def test_a_task_without_steps_refuses_every_step_update() -> None:
    app = new_ledger()
    task = drive(app, st.RUNNING, steps=())

    _refused(app, task.task_id, "step", lambda: app.update_step(
        c.UpdateStep(task.task_id, task.lease_epoch, 0, "RUNNING"), WORKER))


@pytest.mark.parametrize("status", ["DONE", "running", ""])
def test_an_unknown_step_status_is_refused(status: str) -> None:
    app = new_ledger()
    task = drive(app, st.RUNNING)

    err = _refused(app, task.task_id, "status", lambda: app.update_step(
        c.UpdateStep(task.task_id, task.lease_epoch, 0, status), WORKER))
    assert err.rule == "must be one of " + ", ".join(st.STEP_STATUSES)


@pytest.mark.parametrize("status", st.STEP_STATUSES)
def test_every_known_step_status_is_accepted(status: str) -> None:
    app = new_ledger()
    task = drive(app, st.RUNNING)

    app.update_step(c.UpdateStep(task.task_id, task.lease_epoch, 1, status), WORKER)

    assert state_of(app, task.task_id).steps[1]["status"] == status


@pytest.mark.parametrize(("field", "value"), [
    ("max_retries", -1),
    ("heartbeat_timeout", 0),
    ("heartbeat_timeout", -5.0),
])
def test_creating_a_task_with_bad_limits_is_refused_and_records_nothing(field: str, value: Any) -> None:
    app = new_ledger()

    with pytest.raises(InvalidValueError) as refused:
        app.create_task(c.CreateTask("ns", "n", **{field: value}), OPERATOR)

    assert refused.value.field == field
    assert app.head_position() == 0


@pytest.mark.parametrize(("field", "value"), [
    ("max_retries", -1),
    ("heartbeat_timeout", 0),
    ("heartbeat_timeout", -0.5),
])
def test_updating_a_task_with_bad_limits_is_refused(field: str, value: Any) -> None:
    app = new_ledger()
    task = drive(app, st.QUEUED)

    _refused(app, task.task_id, field, lambda: app.update_task(
        c.UpdateTask(task.task_id, {"name": "renamed", field: value}), OPERATOR))
    assert state_of(app, task.task_id).name == "nightly-export"


@pytest.mark.parametrize("field", ["state", "retries", "lease_epoch", "dropped", "id", "chain_hash"])
def test_updating_a_field_that_is_not_updatable_is_refused(field: str) -> None:
    app = new_ledger()
    task = drive(app, st.QUEUED)

    err = _refused(app, task.task_id, field, lambda: app.update_task(
        c.UpdateTask(task.task_id, {field: "x", "name": "renamed"}), OPERATOR))
    assert err.rule == "is not an updatable field"


def test_every_updatable_field_can_be_updated() -> None:
    app = new_ledger()
    task = drive(app, st.QUEUED)
    changes = {"name": "n2", "input": {"q": [1, 2]}, "labels": {"team": "bi"}, "max_retries": 4,
               "heartbeat_timeout": 15.5,
               "schedule": {"cron": "0 0 * * * ?", "timezone": "UTC", "catch_up": "missed", "overlap": "skip"}}

    app.update_task(c.UpdateTask(task.task_id, changes), OPERATOR)

    after = state_of(app, task.task_id)
    assert {k: getattr(after, k) for k in changes} == changes


# --- limits that must also be refused: today they are accepted (see the bug report) ---------------

@pytest.mark.parametrize("field", ["max_retries", "heartbeat_timeout"])
def test_updating_a_limit_to_null_is_refused(field: str) -> None:
    app = new_ledger()
    task = drive(app, st.QUEUED, max_retries=1)

    _refused(app, task.task_id, field, lambda: app.update_task(
        c.UpdateTask(task.task_id, {field: None}), OPERATOR))


@pytest.mark.parametrize(("field", "value"), [("max_retries", "3"), ("max_retries", 1.5),
                                              ("heartbeat_timeout", "30")])
def test_updating_a_limit_to_a_value_of_the_wrong_type_is_a_domain_error(field: str, value: Any) -> None:
    app = new_ledger()
    task = drive(app, st.QUEUED)

    _refused(app, task.task_id, field, lambda: app.update_task(
        c.UpdateTask(task.task_id, {field: value}), OPERATOR))


def test_a_heartbeat_timeout_that_is_not_a_number_is_refused() -> None:
    app = new_ledger()
    task = drive(app, st.QUEUED)

    with pytest.raises(InvalidValueError):
        app.create_task(c.CreateTask("ns", "n", heartbeat_timeout=math.nan), OPERATOR)
    _refused(app, task.task_id, "heartbeat_timeout", lambda: app.update_task(
        c.UpdateTask(task.task_id, {"heartbeat_timeout": math.nan}), OPERATOR))


def test_a_running_task_whose_max_retries_was_updated_can_still_fail() -> None:
    """A worker's fail must end in a domain answer, never in a TypeError, whatever update came before."""
    app = new_ledger()
    task = drive(app, st.QUEUED, max_retries=1)
    try:
        app.update_task(c.UpdateTask(task.task_id, {"max_retries": None}), OPERATOR)
    except LedgerError:
        pass
    app.start_task(c.StartTask(task.task_id, "worker-1"), WORKER)

    app.fail_task(c.FailTask(task.task_id, 1, "boom"), WORKER)

    assert state_of(app, task.task_id).state == st.QUEUED
