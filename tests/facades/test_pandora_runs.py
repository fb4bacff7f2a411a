"""Runs of export tasks and their history: triggered by the schedule, claimed and ended by a worker natively."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from ledger.application import TaskLedger
from tests.facades.pandora_support import Pandora, Runs, millis, new_year, unique


@pytest.fixture
def pandora(server: str) -> Pandora:
    return Pandora(server)


@pytest.fixture
def runs(pandora: Pandora, ledger_app: TaskLedger) -> Iterator[Runs]:
    made = Runs(pandora, ledger_app)
    yield made
    made.clean_up()


def test_a_run_a_worker_completes_is_a_success_row_and_the_task_keeps_running(pandora: Pandora, runs: Runs) -> None:
    prefix = unique()
    task_id = runs.task(prefix + "r")
    occurrence = millis(runs.trigger(task_id))
    epoch = runs.claim(task_id)
    time.sleep(0.05)
    runs.end(task_id, epoch, "complete", result={"rows": 10})
    page = pandora.history(task_id).json()
    assert (page["total"], page["pageNo"], page["pageSize"]) == (1, 1, 10)
    [row] = page["histories"]
    assert set(row) == {"taskId", "count", "time", "status", "message", "tookMillis"}
    assert (row["taskId"], row["count"], row["time"], row["status"]) == (task_id, 1, occurrence, "success")
    assert row["message"] is None
    assert isinstance(row["tookMillis"], int) and row["tookMillis"] >= 50
    task = pandora.task(task_id, prefix)
    assert (task["status"], task["count"], task["lastRunTime"]) == ("running", 1, occurrence)


def test_a_run_in_progress_is_a_running_row(pandora: Pandora, runs: Runs) -> None:
    task_id = runs.task(unique())
    runs.trigger(task_id)
    runs.claim(task_id)
    [row] = pandora.history(task_id).json()["histories"]
    assert (row["count"], row["status"], row["tookMillis"]) == (1, "running", None)


def test_a_task_that_never_ran_has_an_empty_history(pandora: Pandora, runs: Runs) -> None:
    resp = pandora.history(runs.task(unique()))
    assert (resp.status_code, resp.json()) == (200, {"total": 0, "pageNo": 1, "pageSize": 10, "histories": []})


def test_history_pages_newest_first_and_a_failed_run_carries_its_message(pandora: Pandora, runs: Runs) -> None:
    prefix = unique()
    task_id = runs.task(prefix)
    runs.trigger(task_id, years_ahead=1)
    runs.end(task_id, runs.claim(task_id), "complete")
    runs.trigger(task_id, years_ahead=2)
    runs.end(task_id, runs.claim(task_id), "fail", error="disk full", retry=False)
    newest = pandora.history(task_id, pageSize=1).json()
    assert (newest["total"], [r["count"] for r in newest["histories"]]) == (2, [2])
    assert (newest["histories"][0]["status"], newest["histories"][0]["message"]) == ("failed", "disk full")
    assert pandora.history(task_id, pageNo=2, pageSize=1).json()["histories"][0]["count"] == 1
    oldest = pandora.history(task_id, sort="count", order="asc").json()["histories"]
    assert [(r["count"], r["status"]) for r in oldest] == [(1, "success"), (2, "failed")]
    by_status = pandora.history(task_id, sort="status", order="asc").json()["histories"]
    assert [r["status"] for r in by_status] == ["failed", "success"]
    task = pandora.task(task_id, prefix)
    assert (task["status"], task["count"]) == ("running", 2)


def test_a_stopped_schedule_records_nothing_and_a_started_one_triggers_a_pending_run(
        pandora: Pandora, runs: Runs) -> None:
    task_id = runs.task(unique())
    pandora.set_status([task_id], "stopped")
    runs.trigger(task_id)
    assert pandora.history(task_id).json()["total"] == 0
    pandora.set_status([task_id], "running")
    occurrence = millis(runs.trigger(task_id))
    [row] = pandora.history(task_id).json()["histories"]
    assert (row["count"], row["status"], row["time"], row["tookMillis"]) == (1, "pending", occurrence, None)


def test_occurrences_found_too_late_are_missed_rows(pandora: Pandora, runs: Runs) -> None:
    task_id = runs.task(unique())
    runs.trigger(task_id, years_ahead=2)
    rows = pandora.history(task_id, sort="time", order="asc").json()["histories"]
    assert [(r["count"], r["status"], r["time"]) for r in rows] == [
        (1, "missed", millis(new_year(1))), (2, "pending", millis(new_year(2)))]


def test_stopping_a_task_during_a_run_tells_its_worker_to_pause(pandora: Pandora, runs: Runs) -> None:
    task_id = runs.task(unique())
    runs.trigger(task_id)
    epoch = runs.claim(task_id)
    assert pandora.set_status([task_id], "stopped").status_code == 200
    assert runs.heartbeat(task_id, epoch) == "pause"
    [row] = pandora.history(task_id).json()["histories"]
    assert row["status"] == "pending"


def test_deleting_a_task_during_a_run_tells_its_worker_to_stop(pandora: Pandora, runs: Runs) -> None:
    task_id = runs.task(unique())
    runs.trigger(task_id)
    epoch = runs.claim(task_id)
    assert pandora.delete(task_id).status_code == 200
    assert runs.heartbeat(task_id, epoch) == "stop"
    assert pandora.history(task_id).status_code == 404


def test_a_bad_history_query_is_400_naming_the_parameter(pandora: Pandora, runs: Runs) -> None:
    task_id = runs.task(unique())
    for params, field in (({"sort": "name"}, "sort"), ({"pageNo": "0"}, "pageNo"), ({"order": "up"}, "order")):
        resp = pandora.history(task_id, **params)
        assert resp.status_code == 400
        assert resp.json()["error"].startswith(field + ": ")
