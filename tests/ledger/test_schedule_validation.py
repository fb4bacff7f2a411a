"""Schedules on create and update: stored with their defaults, refused by field and reason, never half-written."""

from __future__ import annotations

from typing import Any

import pytest

from ledger import commands as c
from ledger import state as st
from ledger.application import TaskLedger
from ledger.errors import IllegalTransitionError, InvalidValueError
from tests.scheduling.support import (
    EVERY_2S,
    IN_MEMORY,
    OPERATOR,
    FakeClock,
    at,
    create_recurring,
    run_work,
    scheduled_ledger,
    tick,
)

INVALID: dict[str, tuple[Any, str, str]] = {
    "not an object": ("daily", "schedule", "must be an object or null"),
    "no cron": ({"timezone": "UTC"}, "schedule.cron", "is required"),
    "cron not a string": ({"cron": 5}, "schedule.cron", "must be a string"),
    "blank cron": ({"cron": "  "}, "schedule.cron", "must be 1 to 200 printable characters"),
    "cron too long": ({"cron": "* " * 150}, "schedule.cron", "must be 1 to 200 printable characters"),
    "three fields": ({"cron": "* * *"}, "schedule.cron", "must have 5 fields"),
    "second out of range": ({"cron": "61 * * * * ?"}, "schedule.cron", "is not a valid cron expression"),
    "Quartz day 0": ({"cron": "0 0 12 ? * 0"}, "schedule.cron", "day-of-week numbers run from 1 (SUN) to 7"),
    "unknown day name": ({"cron": "0 0 12 ? * MOX"}, "schedule.cron", "'MOX' is not a day name"),
    "random values": ({"cron": "R * * * *"}, "schedule.cron", "must not use random (R) or hashed (H)"),
    "never fires": ({"cron": "0 0 0 30 2 ?"}, "schedule.cron", "has no occurrence from now on"),
    "a year gone by": ({"cron": "0 0 12 * * ? 2020"}, "schedule.cron", "has no occurrence from now on"),
    "unknown zone": ({"cron": EVERY_2S, "timezone": "Mars/Olympus"}, "schedule.timezone", "must be an IANA"),
    "machine-dependent zone": ({"cron": EVERY_2S, "timezone": "localtime"}, "schedule.timezone", "must be an IANA"),
    "zone not a string": ({"cron": EVERY_2S, "timezone": 1}, "schedule.timezone", "must be a string"),
    "unknown catch-up": ({"cron": EVERY_2S, "catch_up": "all"}, "schedule.catch_up", "must be one of missed, run_once"),
    "unknown overlap": ({"cron": EVERY_2S, "overlap": "allow"}, "schedule.overlap", "must be one of skip, queue"),
    "unknown key": ({"cron": EVERY_2S, "crontab": "x"}, "schedule.crontab", "is not a schedule field"),
}


def _app() -> TaskLedger:
    return scheduled_ledger(FakeClock())


def test_a_schedule_is_stored_with_every_default_filled_in_and_armed_at_creation() -> None:
    app = _app()

    task = create_recurring(app, cron="*/5 * * * * ?")

    state = app.task_as_of(task)
    assert state.schedule == {"cron": "*/5 * * * * ?", "timezone": "UTC", "catch_up": "missed", "overlap": "skip"}
    assert (state.schedule_cursor, state.occurrence_count, state.pending_runs, state.run_count) == (
        state.created_at, 0, [], 0)
    assert state.last_run_time is None


def test_a_given_policy_and_zone_are_kept() -> None:
    schedule = {"cron": "0 30 2 * * ?", "timezone": "Europe/Berlin", "catch_up": "run_once", "overlap": "queue"}
    app = _app()

    task = app.create_task(c.CreateTask("ns", "export", schedule=schedule), OPERATOR).task_id

    assert app.task_as_of(task).schedule == schedule


@pytest.mark.parametrize("case", INVALID)
def test_an_invalid_schedule_is_refused_at_create_naming_the_field_and_nothing_is_recorded(case: str) -> None:
    schedule, field, rule = INVALID[case]
    app = _app()

    with pytest.raises(InvalidValueError) as refused:
        app.create_task(c.CreateTask("ns", "export", schedule=schedule), OPERATOR)

    assert refused.value.field == field
    assert refused.value.rule.startswith(rule) or rule in refused.value.rule
    assert app.head_position() == 0


@pytest.mark.parametrize("case", INVALID)
def test_an_invalid_schedule_is_refused_at_update_and_nothing_is_recorded(case: str) -> None:
    schedule, field, _ = INVALID[case]
    app = _app()
    task = create_recurring(app)

    with pytest.raises(InvalidValueError) as refused:
        app.update_task(c.UpdateTask(task, {"schedule": schedule, "name": "renamed"}), OPERATOR)

    assert refused.value.field == field
    assert app.task_as_of(task).version == 1


def test_a_ledger_without_a_calendar_refuses_schedules_clearly_but_takes_tasks_without_one() -> None:
    app = TaskLedger(env=dict(IN_MEMORY))

    with pytest.raises(InvalidValueError) as refused:
        app.create_task(c.CreateTask("ns", "export", schedule={"cron": EVERY_2S}), OPERATOR)
    task = app.create_task(c.CreateTask("ns", "one-shot"), OPERATOR).task_id
    with pytest.raises(InvalidValueError):
        app.update_task(c.UpdateTask(task, {"schedule": {"cron": EVERY_2S}}), OPERATOR)

    assert (refused.value.field, refused.value.rule) == (
        "schedule", "cannot be accepted: this ledger runs without a calendar to read cron")
    assert app.head_position() == 1


def test_a_schedule_cannot_be_removed_from_a_recurring_task() -> None:
    app = _app()
    task = create_recurring(app)

    with pytest.raises(InvalidValueError) as refused:
        app.update_task(c.UpdateTask(task, {"schedule": None}), OPERATOR)

    assert (refused.value.field, refused.value.rule) == (
        "schedule", "cannot be removed from a recurring task; pause or cancel it")


def test_a_one_shot_task_becomes_recurring_while_queued_armed_from_the_update() -> None:
    clock = FakeClock()
    app = scheduled_ledger(clock)
    task = app.create_task(c.CreateTask("ns", "export"), OPERATOR).task_id
    clock.set(at("12:00:05.500"))

    app.update_task(c.UpdateTask(task, {"schedule": {"cron": EVERY_2S}}), OPERATOR)
    tick(app, task, at("12:00:06.100"))

    state = app.task_as_of(task)
    assert state.schedule_cursor == "2024-03-01T12:00:06+00:00"
    assert state.pending_runs == [{"run": 1, "time": "2024-03-01T12:00:06+00:00"}]


def test_a_one_shot_task_cannot_become_recurring_while_a_worker_holds_its_lease() -> None:
    app = _app()
    task = app.create_task(c.CreateTask("ns", "export"), OPERATOR).task_id
    app.start_task(c.StartTask(task, "w"), OPERATOR)

    with pytest.raises(IllegalTransitionError) as refused:
        app.update_task(c.UpdateTask(task, {"schedule": {"cron": EVERY_2S}}), OPERATOR)

    assert "add a schedule while a worker holds the lease" in str(refused.value)
    assert app.task_as_of(task).schedule is None


def test_changing_the_cron_rearms_the_schedule_from_the_update_and_keeps_the_waiting_run() -> None:
    clock = FakeClock()
    app = scheduled_ledger(clock)
    task = create_recurring(app)
    tick(app, task, at("12:00:02.100"))
    clock.set(at("12:00:03"))

    app.update_task(c.UpdateTask(task, {"schedule": {"cron": "*/10 * * * * ?"}}), OPERATOR)
    tick(app, task, at("12:00:09"))
    tick(app, task, at("12:00:10.100"))

    state = app.task_as_of(task)
    assert state.schedule_cursor == "2024-03-01T12:00:10+00:00"
    assert [r["time"][11:19] for r in state.pending_runs] == ["12:00:02"]
    assert state.occurrence_count == 2
    run_work(app, task)
    assert app.task_as_of(task).state == st.QUEUED


def test_an_update_that_repeats_the_schedule_does_not_rearm_it_so_no_due_occurrence_is_lost() -> None:
    clock = FakeClock()
    app = scheduled_ledger(clock)
    task = create_recurring(app)
    clock.set(at("12:00:02.200"))

    app.update_task(c.UpdateTask(task, {"name": "renamed", "schedule": {"cron": EVERY_2S}}), OPERATOR)
    tick(app, task, at("12:00:02.400"))

    state = app.task_as_of(task)
    assert (state.name, state.occurrence_count, state.pending_runs[0]["time"]) == (
        "renamed", 1, "2024-03-01T12:00:02+00:00")
