"""Pandora batch start/stop (`PUT /api/v1/export/tasks/status`): pause and resume, checked before anything is written."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from ledger.application import TaskLedger
from tests.facades.pandora_support import Pandora, unique


@pytest.fixture
def pandora(server: str) -> Pandora:
    return Pandora(server)


def native_state(pandora: Pandora, task_id: str) -> str:
    return str(pandora.native(task_id).json()["state"])


def test_stopping_pauses_and_starting_resumes_each_task(pandora: Pandora) -> None:
    prefix = unique()
    ids = [pandora.create_task(prefix + name) for name in ("a", "b")]
    resp = pandora.set_status(ids, "stopped")
    assert (resp.status_code, resp.json()) == (200, {})
    assert [t["status"] for t in pandora.listed(prefix)] == ["stopped", "stopped"]
    assert [native_state(pandora, i) for i in ids] == ["PAUSED", "PAUSED"]
    assert pandora.set_status(ids, "running").status_code == 200
    assert [t["status"] for t in pandora.listed(prefix)] == ["running", "running"]
    assert [native_state(pandora, i) for i in ids] == ["QUEUED", "QUEUED"]


def test_asking_for_the_status_a_task_already_has_records_nothing(pandora: Pandora, ledger_app: TaskLedger) -> None:
    task_id = pandora.create_task(unique())
    head = ledger_app.head_position()
    assert pandora.set_status([task_id, task_id], "running").status_code == 200
    assert ledger_app.head_position() == head
    assert pandora.set_status([task_id], "stopped").status_code == 200
    head = ledger_app.head_position()
    assert pandora.set_status([task_id], "stopped").status_code == 200
    assert ledger_app.head_position() == head


def test_a_batch_naming_an_unknown_task_is_404_and_changes_nothing(pandora: Pandora, ledger_app: TaskLedger) -> None:
    task_id, unknown = pandora.create_task(unique()), str(uuid.uuid4())
    head = ledger_app.head_position()
    resp = pandora.set_status([task_id, unknown], "stopped")
    assert (resp.status_code, resp.json()) == (404, {"error": f"export task {unknown!r} does not exist"})
    assert ledger_app.head_position() == head
    assert native_state(pandora, task_id) == "QUEUED"


def test_a_cancelled_task_cannot_be_started_and_the_batch_changes_nothing(
        pandora: Pandora, ledger_app: TaskLedger) -> None:
    stopped, cancelled = pandora.create_task(unique()), pandora.create_task(unique())
    pandora.set_status([stopped], "stopped")
    assert pandora.call("POST", f"/ledger/v1/tasks/{cancelled}/cancel", json={}).status_code == 200
    head = ledger_app.head_position()
    resp = pandora.set_status([stopped, cancelled], "running")
    assert resp.status_code == 409
    assert resp.json() == {"error": f"export task {cancelled} is stopped (cancelled): cannot start it now"}
    assert ledger_app.head_position() == head
    assert native_state(pandora, stopped) == "PAUSED"


@pytest.mark.parametrize(("body", "field"), [
    ({"status": "stopped"}, "tasks"), ({"tasks": "abc", "status": "stopped"}, "tasks"),
    ({"tasks": [1], "status": "stopped"}, "tasks"), ({"tasks": ["x"] * 1001, "status": "stopped"}, "tasks"),
    ({"tasks": []}, "status"), ({"tasks": [], "status": "paused"}, "status"),
])
def test_a_malformed_batch_is_400_naming_the_field(
        pandora: Pandora, ledger_app: TaskLedger, body: dict[str, Any], field: str) -> None:
    head = ledger_app.head_position()
    resp = pandora.call("PUT", "/api/v1/export/tasks/status", json=body)
    assert resp.status_code == 400
    assert resp.json()["error"].startswith(field + ": ")
    assert ledger_app.head_position() == head
