"""POST /heartbeats: one transaction per batch, each item answering its own status, version and directive."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from uuid import UUID, uuid4

import psycopg
import pytest

from ledger import commands as c
from ledger.application import TaskLedger
from taskledger.calendar import CronCalendar
from tests.api.conftest import BASE, PROBLEM_BASE, Api

WATCHDOG = c.Caller("watchdog", "req-watch")


@pytest.fixture
def other_process(es_env: dict[str, str]) -> Iterator[TaskLedger]:
    """Another server process's ledger on the same database: the API's cache does not see its writes."""
    app = TaskLedger(es_env, calendar=CronCalendar())
    yield app
    app.close()


def transactions(database_url: str, positions: list[int]) -> int:
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT count(DISTINCT xmin::text) FROM taskledger_events "
                           "WHERE notification_id = ANY(%s)", (positions,)).fetchone()
    assert row is not None
    return int(row[0])


def test_a_batch_is_recorded_in_one_transaction_with_consecutive_versions_per_task(
        api: Api, namespace: str, database_url: str) -> None:
    first, first_epoch = api.running(namespace, name="first")
    second, second_epoch = api.running(namespace, name="second")

    answer = api.post("/heartbeats", {"heartbeats": [
        {"task_id": first, "lease_epoch": first_epoch, "progress": 10},
        {"task_id": second, "lease_epoch": second_epoch, "progress": 20},
        {"task_id": first, "lease_epoch": first_epoch, "progress": 30, "message": "later"},
    ]}, role="worker")

    assert answer.status_code == 200, answer.text
    results = answer.json["results"]
    assert [(r["task_id"], r["status"], r["version"], r["directive"]) for r in results] == [
        (first, 200, 3, "continue"), (second, 200, 3, "continue"), (first, 200, 4, "continue")]
    positions = [r["position"] for r in results]
    assert positions[0] < positions[2] and len(set(positions)) == 3
    assert answer.headers["Ledger-Position"] == str(max(positions))
    assert transactions(database_url, positions) == 1
    task = api.get(f"/tasks/{first}").json
    assert (task["progress"], task["message"], task["version"]) == (30, "later", 4)


def test_items_on_tasks_the_worker_must_leave_answer_what_to_do(api: Api, namespace: str) -> None:
    cancelling, cancelling_epoch = api.running(namespace, name="cancelling")
    api.post(f"/tasks/{cancelling}/cancel", role="operator")
    aborted, aborted_epoch = api.running(namespace, name="aborted")
    api.post(f"/tasks/{aborted}/abort", role="operator")
    done, done_epoch = api.running(namespace, name="done")
    api.post(f"/tasks/{done}/complete", {"lease_epoch": done_epoch}, role="worker")
    dropped, dropped_epoch = api.running(namespace, name="dropped")
    assert api.delete(f"/tasks/{dropped}?force=true", role="operator").status_code == 204

    answer = api.post("/heartbeats", {"heartbeats": [
        {"task_id": cancelling, "lease_epoch": cancelling_epoch},
        {"task_id": aborted, "lease_epoch": aborted_epoch},
        {"task_id": done, "lease_epoch": done_epoch},
        {"task_id": dropped, "lease_epoch": dropped_epoch},
    ]}, role="worker")

    assert answer.status_code == 200, answer.text
    assert [(r["task_id"], r["status"], r["directive"], r["version"]) for r in answer.json["results"]] == [
        (cancelling, 200, "cancel", 4), (aborted, 200, "stop", 3), (done, 200, "stop", 3), (dropped, 200, "stop", 3)]


def test_a_batch_whose_every_item_is_refused_answers_each_problem_and_no_position(
        api: Api, namespace: str, ledger_app: TaskLedger) -> None:
    task_id, epoch = api.running(namespace)
    missing = str(uuid4())
    head = ledger_app.head_position()

    answer = api.post("/heartbeats", {"heartbeats": [{"task_id": missing, "lease_epoch": 1},
                                                     {"task_id": task_id, "lease_epoch": epoch + 1}]}, role="worker")

    assert answer.status_code == 200, answer.text
    results = answer.json["results"]
    assert [(r["task_id"], r["status"]) for r in results] == [(missing, 404), (task_id, 409)]
    assert [r["problem"]["type"] for r in results] == [PROBLEM_BASE + "task-not-found", PROBLEM_BASE + "stale-lease"]
    assert all(r["problem"]["instance"] == BASE + "/heartbeats" and r["problem"]["detail"] for r in results)
    assert all("version" not in r and "position" not in r for r in results)
    assert "Ledger-Position" not in answer.headers
    assert ledger_app.head_position() == head


def test_an_item_another_process_wrote_to_meanwhile_answers_the_next_version(
        api: Api, namespace: str, other_process: TaskLedger) -> None:
    busy, busy_epoch = api.running(namespace, name="busy")
    calm, calm_epoch = api.running(namespace, name="calm")
    other_process.record_heartbeat(c.RecordHeartbeat(UUID(busy), busy_epoch, progress=5.0), WATCHDOG)

    answer = api.post("/heartbeats", {"heartbeats": [{"task_id": busy, "lease_epoch": busy_epoch, "progress": 60},
                                                     {"task_id": calm, "lease_epoch": calm_epoch}]}, role="worker")

    assert [(r["status"], r["version"]) for r in answer.json["results"]] == [(200, 4), (200, 3)]
    assert api.get(f"/tasks/{busy}").json["version"] == 4


def test_an_item_whose_lease_another_process_expired_answers_stale_lease(
        api: Api, namespace: str, other_process: TaskLedger) -> None:
    expired, epoch = api.running(namespace, name="expired", max_retries=1)
    alive, alive_epoch = api.running(namespace, name="alive")
    later = datetime.now(timezone.utc) + timedelta(hours=1)
    gone = other_process.expire_lease(c.ExpireLease(UUID(expired), later), WATCHDOG)
    assert gone.lease_epoch == epoch

    answer = api.post("/heartbeats", {"heartbeats": [{"task_id": expired, "lease_epoch": epoch},
                                                     {"task_id": alive, "lease_epoch": alive_epoch}]}, role="worker")

    results = answer.json["results"]
    assert [(r["task_id"], r["status"]) for r in results] == [(expired, 409), (alive, 200)]
    assert results[0]["problem"]["type"] == PROBLEM_BASE + "stale-lease"
    assert results[1]["version"] == 3
    task = api.get(f"/tasks/{expired}").json
    assert (task["state"], task["lease_epoch"], task["version"]) == ("QUEUED", epoch + 1, 3)
