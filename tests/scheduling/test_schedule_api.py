"""Recurring tasks through the native API: schedules validated by field, runs claimed, history served."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import pytest

from ledger.application import TaskLedger
from projections.queries import PostgresTaskView
from taskledger.calendar import CronCalendar
from taskledger.scheduler import Scheduler
from tests.api.conftest import Api, assert_problem
from tests.scheduling.support import EVERY_2S, FakeClock

REFUSED: dict[str, tuple[Any, str]] = {
    "bad cron": ({"cron": "*/2 * * *"}, "schedule.cron"),
    "cron out of range": ({"cron": "0 61 * * * ?"}, "schedule.cron"),
    "unknown zone": ({"cron": EVERY_2S, "timezone": "Europe/Atlantis"}, "schedule.timezone"),
    "zone not a string": ({"cron": EVERY_2S, "timezone": 2}, "schedule.timezone"),
    "no cron": ({"timezone": "UTC"}, "schedule.cron"),
    "unknown policy": ({"cron": EVERY_2S, "catch_up": "everything"}, "schedule.catch_up"),
    "unknown field": ({"cron": EVERY_2S, "interval": "2s"}, "schedule.interval"),
    "not an object": (["*/2 * * * * ?"], "schedule"),
}


@pytest.mark.parametrize("case", REFUSED)
def test_an_invalid_schedule_is_refused_at_create_with_422_naming_the_field_and_no_event(
        case: str, api: Api, ledger_app: TaskLedger, namespace: str) -> None:
    schedule, field = REFUSED[case]
    head = ledger_app.head_position()

    refused = api.post("/tasks", {"namespace": namespace, "name": "export", "schedule": schedule}, role="operator")

    assert_problem(refused, 422, field=field)
    assert ledger_app.head_position() == head


@pytest.mark.parametrize("case", REFUSED)
def test_an_invalid_schedule_is_refused_at_update_with_422_naming_the_field_and_no_event(
        case: str, api: Api, ledger_app: TaskLedger, namespace: str, ended: list[UUID]) -> None:
    schedule, field = REFUSED[case]
    task = api.create(namespace, schedule={"cron": EVERY_2S})
    ended.append(UUID(task["id"]))
    head = ledger_app.head_position()

    refused = api.put(f"/tasks/{task['id']}", {"schedule": schedule}, role="operator")

    assert_problem(refused, 422, field=field)
    assert ledger_app.head_position() == head


def test_a_recurring_task_shows_its_schedule_with_defaults_and_is_not_claimable_between_runs(
        api: Api, namespace: str, ended: list[UUID]) -> None:
    task = api.create(namespace, schedule={"cron": "0 0 3 * * ?", "timezone": "Europe/Berlin"})
    ended.append(UUID(task["id"]))

    assert task["schedule"] == {"cron": "0 0 3 * * ?", "timezone": "Europe/Berlin", "catch_up": "missed",
                                "overlap": "skip"}
    assert (task["state"], task["run_count"], task["last_run_time"], task["pending_runs"]) == ("QUEUED", 0, None, [])
    assert task["schedule_cursor"] == task["created_at"]
    assert api.post("/claims", {"worker": "w", "namespace": namespace}, role="worker").status_code == 204
    assert_problem(api.post(f"/tasks/{task['id']}/start", {"worker": "w"}, role="worker"), 409, "no-run-due")


def test_a_worker_claims_a_triggered_run_heartbeats_completes_it_and_the_history_shows_it(
        api: Api, ledger_app: TaskLedger, queries: PostgresTaskView, namespace: str, ended: list[UUID]) -> None:
    task = api.create(namespace, schedule={"cron": EVERY_2S})
    ended.append(UUID(task["id"]))
    created = datetime.fromisoformat(task["created_at"])
    first = CronCalendar().occurrences(task["schedule"], created, created + timedelta(seconds=5), 1)[0]
    clock = FakeClock(first + timedelta(milliseconds=300))
    assert queries.wait_for(api.position, 10)

    Scheduler(ledger_app, queries, CronCalendar(clock), clock=clock).run_once()
    claimed = api.claim(namespace)
    api.post(f"/tasks/{task['id']}/heartbeat", {"lease_epoch": claimed["lease_epoch"], "progress": 50}, role="worker")
    done = api.post(f"/tasks/{task['id']}/complete", {"lease_epoch": claimed["lease_epoch"], "result": {"rows": 9}},
                    role="worker")

    assert done.status_code == 200
    assert claimed["task"]["current_run"] == {"run": 1, "time": first.isoformat()}
    after = api.get(f"/tasks/{task['id']}").json
    assert (after["state"], after["run_count"], after["last_run_time"], after["result"]) == (
        "QUEUED", 1, first.isoformat(), {"rows": 9})
    history = api.get(f"/tasks/{task['id']}/runs").json
    assert history["occurrences_total"] == 1
    (row,) = history["occurrences"]
    assert (row["run"], row["time"], row["status"], row["reason"], row["message"]) == (
        1, first.isoformat(), "succeeded", None, None)
    took = datetime.fromisoformat(row["ended_at"]) - datetime.fromisoformat(row["started_at"])
    assert row["took_ms"] == (took // timedelta(microseconds=1) + 500) // 1000  # whole milliseconds, rounded
    assert [r["outcome"] for r in history["runs"]] == ["succeeded"]


def test_a_one_shot_task_answers_its_runs_and_no_occurrences(api: Api, namespace: str) -> None:
    task_id, epoch = api.running(namespace)
    api.post(f"/tasks/{task_id}/complete", {"lease_epoch": epoch}, role="worker")

    history = api.get(f"/tasks/{task_id}/runs").json

    assert (history["occurrences"], history["occurrences_total"]) == ([], 0)
    assert [r["outcome"] for r in history["runs"]] == ["succeeded"]
    assert api.get(f"/tasks/{task_id}").json["state"] == "SUCCEEDED"


def test_the_runs_of_an_unknown_task_are_404(api: Api) -> None:
    assert_problem(api.get(f"/tasks/{UUID(int=7)}/runs"), 404, "task-not-found")
