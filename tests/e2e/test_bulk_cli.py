"""`taskledger bulk` against `taskledger serve`: dry run, a real run part by part, bounds, errors (issue 11.3)."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from bench.services import Process, free_port, start_service

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory, new_database: Callable[[], str]) -> Iterator[tuple[str, str]]:
    home, database_url = tmp_path_factory.mktemp("bulk-cli"), new_database()
    port, password = free_port(), secrets.token_urlsafe(12)
    process: Process = start_service(home, port, database_url, password, {"TASKLEDGER_WORKERS": "2"}, home)
    try:
        process.wait_http_ok(f"http://127.0.0.1:{port}/readyz", timeout=120)
        yield f"http://127.0.0.1:{port}", password
    finally:
        process.stop()


def _cli(service: tuple[str, str], *args: str, url: str | None = None) -> subprocess.CompletedProcess[str]:
    base, password = service
    env = {**os.environ, "TASKLEDGER_URL": url or base, "TASKLEDGER_USER": "admin", "TASKLEDGER_PASSWORD": password}
    return subprocess.run([sys.executable, "-m", "taskledger.cli", "bulk", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)


def _create(service: tuple[str, str], namespace: str, count: int) -> tuple[list[str], int]:
    base, password = service
    ids, position = [], 0
    with requests.Session() as http:
        http.auth = ("admin", password)
        for i in range(count):
            answer = http.post(f"{base}/ledger/v1/tasks", json={"namespace": namespace, "name": f"job-{i}",
                                                                "labels": {"batch": "b1"}}, timeout=30)
            assert answer.status_code == 201, answer.text
            ids.append(answer.json()["id"])
            position = max(position, int(answer.headers["Ledger-Position"]))
    return ids, position


def _events(service: tuple[str, str], task_id: str) -> list[dict[str, Any]]:
    base, password = service
    answer = requests.get(f"{base}/ledger/v1/tasks/{task_id}/events", auth=("admin", password), timeout=30)
    events: list[dict[str, Any]] = answer.json()["events"]
    return events


def test_a_dry_run_then_a_cancel_of_every_selected_task(service: tuple[str, str]) -> None:
    namespace = f"bulk-{uuid.uuid4().hex[:8]}"
    ids, position = _create(service, namespace, 30)
    base, password = service
    requests.get(f"{base}/ledger/v1/tasks", params={"namespace": namespace}, auth=("admin", password),
                 headers={"Ledger-Min-Position": str(position)}, timeout=30)  # the view holds them all
    dry = _cli(service, "cancel", "--namespace", namespace, "--label", "batch:b1", "--dry-run", "--json")
    assert dry.returncode == 0, dry.stderr
    counted = json.loads(dry.stdout)
    assert (counted["matched"], counted["would_act"], counted["by_state"]) == (30, 30, {"QUEUED": 30})
    assert all(len(_events(service, t)) == 1 for t in ids)
    refused = _cli(service, "cancel", "--namespace", namespace, "--max", "10")
    assert refused.returncode == 1
    assert "--max 30" in refused.stderr, refused.stderr
    done = _cli(service, "cancel", "--namespace", namespace, "--state", "QUEUED", "--max", "30", "--reason", "bad deploy")
    assert done.returncode == 0, done.stderr
    assert "cancel: 30 changed, 0 left alone of 30" in done.stdout, done.stdout
    bulk_ids = set()
    for task_id in ids:
        events = _events(service, task_id)
        assert [e["type"] for e in events] == ["Created", "Cancelled"]
        bulk_ids.add(events[-1]["request_id"])
    assert len(bulk_ids) == 1
    again = _cli(service, "cancel", "--namespace", namespace)
    assert again.returncode == 0 and "nothing to cancel: 30 tasks match" in again.stderr, again.stderr


def test_errors_say_what_to_do(service: tuple[str, str]) -> None:
    unreachable = _cli(service, "pause", "--namespace", "x", url=f"http://127.0.0.1:{free_port()}")
    assert unreachable.returncode == 2
    assert "cannot reach" in unreachable.stderr and "TASKLEDGER_URL" in unreachable.stderr
    bad = _cli(service, "pause", "--created-after", "yesterday")
    assert bad.returncode == 1 and "created_after" in bad.stderr, bad.stderr
    base, _ = service
    wrong = subprocess.run([sys.executable, "-m", "taskledger.cli", "bulk", "pause", "--namespace", "x"], cwd=ROOT,
                           env={**os.environ, "TASKLEDGER_URL": base, "TASKLEDGER_USER": "admin",
                                "TASKLEDGER_PASSWORD": "wrong-password"}, capture_output=True, text=True,
                           timeout=60, stdin=subprocess.DEVNULL)
    assert wrong.returncode == 1 and "TASKLEDGER_PASSWORD" in wrong.stderr, wrong.stderr
