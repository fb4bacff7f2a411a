"""Completed and Failed events with an Idempotency-Key beside ones without: the chain verifies and audits clean."""

from __future__ import annotations

from collections.abc import Callable
from uuid import UUID

import pytest

from ledger import commands as c
from ledger.application import TaskLedger
from taskledger.config import eventsourcing_env
from taskledger.tools.audit import timeline
from tests.projections.helpers import drive, project_to_head
from tests.scripts.conftest import CLI

WHO = c.Caller("idempotent-worker", "req-idem", "native")


def _keyed_life(app: TaskLedger, namespace: str) -> UUID:
    """A fail requeued under a key, a replay of it, a keyless fail, then a complete under a key and its replay."""
    task_id = app.create_task(c.CreateTask(namespace, "keyed", max_retries=2), WHO).task_id
    epoch = app.start_task(c.StartTask(task_id, "w1"), WHO).lease_epoch or 0
    fail = c.FailTask(task_id, epoch, "flaky", idempotency_key="fail-1")
    app.fail_task(fail, WHO)
    assert app.fail_task(fail, WHO).replayed
    epoch = app.start_task(c.StartTask(task_id, "w2"), WHO).lease_epoch or 0
    app.fail_task(c.FailTask(task_id, epoch, "flaky again"), WHO)
    epoch = app.start_task(c.StartTask(task_id, "w3"), WHO).lease_epoch or 0
    complete = c.CompleteTask(task_id, epoch, {"rows": 9}, idempotency_key="complete-1")
    app.complete_task(complete, WHO)
    assert app.complete_task(complete, WHO).replayed
    return task_id


def test_the_audit_of_a_task_with_keyed_events_shows_the_keys_and_finds_no_break(
        ledger_app: TaskLedger, database_url: str, namespace: str) -> None:
    task_id = _keyed_life(ledger_app, namespace)

    found = timeline(database_url, task_id)

    assert found.findings == []
    assert [e.event["type"] for e in found.entries] == [
        "Created", "Started", "Failed", "Started", "Failed", "Started", "Completed"]
    assert [e.event["data"].get("idempotency_key") for e in found.entries] == [
        None, None, "fail-1", None, None, None, "complete-1"]
    assert "idempotency_key" not in found.entries[4].event["data"]
    assert [{k: v for k, v in e.event.items() if k != "position"} for e in found.entries] == (
        ledger_app.task_events(task_id))


def test_a_database_with_keyed_and_keyless_writes_verifies(new_database: Callable[[], str], cli: CLI,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    url = new_database()
    app = TaskLedger(eventsourcing_env(url, pool_size=1))
    try:
        drive(app, n_tasks=6, seed=21)
        _keyed_life(app, "ns")
    finally:
        app.close()
    project_to_head(url)

    code = cli(url, "verify", "--quiet")

    out = capsys.readouterr().out
    assert code == 0, out
    assert "verify: consistent" in out
