"""Pandora facade claims of docs/compatibility.md that the other Pandora tests leave open, over real HTTP."""

from __future__ import annotations

import pytest
import requests

from tests.facades.pandora_support import BASE, CRONTAB, NAMESPACE, Pandora, unique


@pytest.fixture
def pandora(server: str) -> Pandora:
    return Pandora(server)


@pytest.mark.parametrize("path", [f"{BASE}/nothing", f"{BASE}/tasks/everything", BASE, f"{BASE}/task/list/more"])
def test_an_unknown_path_under_the_prefix_is_a_404_in_pandoras_error_body(pandora: Pandora, path: str) -> None:
    resp = pandora.call("GET", path)
    assert resp.status_code == 404 and resp.headers["Content-Type"].startswith("application/json")
    assert resp.json() == {"error": f"no such endpoint: GET {path}"}


def test_head_is_served_with_get_and_options_lists_the_methods(pandora: Pandora) -> None:
    head = pandora.call("HEAD", f"{BASE}/task/list")
    assert (head.status_code, head.content) == (200, b"")
    options = pandora.call("OPTIONS", f"{BASE}/task/list")
    assert (options.status_code, options.headers["Allow"]) == (200, "GET, HEAD, OPTIONS")
    assert pandora.call("OPTIONS", f"{BASE}/task/{'0' * 8}-0000-0000-0000-{'0' * 12}").headers["Allow"] == (
        "PUT, DELETE, OPTIONS")


def test_a_task_finished_natively_cannot_be_updated_or_started_and_nothing_is_recorded(pandora: Pandora) -> None:
    name = unique("native")
    made = pandora.call("POST", "/ledger/v1/tasks", json={"namespace": NAMESPACE, "name": name, "type": "export"})
    assert made.status_code in (200, 201), made.text
    task_id = made.json()["id"]
    cancelled = pandora.call("POST", f"/ledger/v1/tasks/{task_id}/cancel", json={})
    assert cancelled.status_code == 200, cancelled.text
    version = pandora.native(task_id).json()["version"]
    update = pandora.update(task_id, {"name": name, "spl": "*", "interval": CRONTAB})
    assert update.status_code == 409
    assert update.json() == {"error": f"export task {task_id} is stopped (cancelled): cannot update it now"}
    start = pandora.set_status([task_id], "running")
    assert start.status_code == 409 and task_id in start.json()["error"]
    assert "Ledger-Position" not in update.headers and "Ledger-Position" not in start.headers
    assert pandora.native(task_id).json()["version"] == version
    listed = pandora.task(task_id, name)
    assert (listed["status"], listed["spl"], listed["interval"]) == ("stopped", None, None)
    assert pandora.delete(task_id).status_code == 200


def test_a_read_at_a_position_beyond_the_logs_head_is_a_400_in_pandoras_error_body(pandora: Pandora) -> None:
    resp = requests.get(pandora.server + f"{BASE}/task/list", auth=pandora.auth, timeout=30,
                        headers={"Ledger-Min-Position": str(10**17)})
    assert resp.status_code == 400
    assert resp.json()["error"].startswith("Ledger-Min-Position: is beyond the log's head (")


def test_a_write_that_records_nothing_answers_no_ledger_position(pandora: Pandora) -> None:
    task_id = pandora.create_task(unique())
    assert "Ledger-Position" in pandora.set_status([task_id], "stopped").headers
    again = pandora.set_status([task_id], "stopped")
    assert (again.status_code, again.json()) == (200, {}) and "Ledger-Position" not in again.headers
    empty = pandora.set_status([], "running")
    assert (empty.status_code, empty.json()) == (200, {}) and "Ledger-Position" not in empty.headers
    pandora.delete(task_id)
