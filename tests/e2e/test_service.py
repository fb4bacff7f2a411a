"""The real service process on an embedded PostgreSQL: the README tour, a restart, and the data is still there."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import requests

pytestmark = pytest.mark.e2e


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Service:
    """`taskledger serve` as a child process with its own data directory."""

    def __init__(self, home: Path, port: int) -> None:
        self.home = home
        self.port = port
        self.base = f"http://127.0.0.1:{port}/ledger/v1"
        self.process: subprocess.Popen[str] | None = None
        self.output: list[str] = []

    def start(self) -> str:
        env = {k: v for k, v in os.environ.items() if not k.startswith("TASKLEDGER_")}
        env.update(TASKLEDGER_HOME=str(self.home), TASKLEDGER_PORT=str(self.port), TASKLEDGER_WORKERS="2")
        self.process = subprocess.Popen([sys.executable, "-m", "taskledger.cli", "serve"], env=env,
                                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        deadline = time.monotonic() + 120
        assert self.process.stdout is not None
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if not line and self.process.poll() is not None:
                break
            self.output.append(line)
            if "taskledger is serving at" in line:
                return line
        raise AssertionError("service did not start:\n" + "".join(self.output[-40:]))

    def stop(self) -> int:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(timeout=60)
        finally:
            if self.process.poll() is None:
                self.process.kill()
        return code


def test_readme_tour_survives_a_restart(tmp_path: Path) -> None:
    service = Service(tmp_path / "home", _free_port())
    banner = service.start()
    try:
        password_file = tmp_path / "home" / "admin-password"
        assert str(password_file) in banner
        assert oct(password_file.stat().st_mode & 0o777) == "0o600"
        auth = ("admin", password_file.read_text().strip())
        task_id = _tour(service.base, auth)
    finally:
        assert service.stop() == 0
    service.start()
    try:
        answer = requests.get(f"{service.base}/tasks/{task_id}", auth=auth, timeout=10)
        assert answer.status_code == 200
        assert answer.json()["state"] == "SUCCEEDED"
        events = requests.get(f"{service.base}/tasks/{task_id}/events", auth=auth, timeout=10).json()
        assert [e["type"] for e in _items(events)][:2] == ["Created", "Started"]
    finally:
        assert service.stop() == 0


def _items(body: Any) -> list[dict[str, Any]]:
    return body["events"] if isinstance(body, dict) else body


def _tour(base: str, auth: tuple[str, str]) -> str:
    s = requests.Session()
    s.auth = auth
    created = s.post(f"{base}/tasks", json={"namespace": "demo", "name": "nightly-export", "type": "export",
                                             "steps": ["extract", "load"], "max_retries": 2},
                     headers={"Idempotency-Key": "tour-1"}, timeout=10)
    assert created.status_code == 201, created.text
    task_id = created.json()["id"]
    position = created.headers["Ledger-Position"]
    claim = s.post(f"{base}/claims", json={"worker": "worker-1", "namespace": "demo"},
                   headers={"Ledger-Min-Position": position}, timeout=10)
    assert claim.status_code == 200, claim.text
    assert claim.json()["task_id"] == task_id
    epoch = claim.json()["lease_epoch"]
    beat = s.post(f"{base}/tasks/{task_id}/heartbeat", json={"lease_epoch": epoch, "progress": 40}, timeout=10)
    assert beat.json()["directive"] == "continue"
    assert s.post(f"{base}/tasks/{task_id}/pause", json={"reason": "maintenance"}, timeout=10).status_code == 200
    beat = s.post(f"{base}/tasks/{task_id}/heartbeat", json={"lease_epoch": epoch}, timeout=10)
    assert beat.json()["directive"] == "pause"
    resumed = s.post(f"{base}/tasks/{task_id}/resume", json={}, timeout=10)
    claim = s.post(f"{base}/claims", json={"worker": "worker-2", "namespace": "demo"},
                   headers={"Ledger-Min-Position": resumed.headers["Ledger-Position"]}, timeout=10)
    epoch = claim.json()["lease_epoch"]
    done = s.post(f"{base}/tasks/{task_id}/complete", json={"lease_epoch": epoch, "result": {"rows": 1200}},
                  timeout=10)
    assert done.status_code == 200, done.text
    listed = s.get(f"{base}/tasks", params={"namespace": "demo", "state": "SUCCEEDED"},
                   headers={"Ledger-Min-Position": done.headers["Ledger-Position"]}, timeout=10).json()
    assert [t["id"] for t in listed["items"]] == [task_id]
    timeline = s.get(f"{base}/tasks/{task_id}/events", timeout=10).json()
    assert [e["type"] for e in _items(timeline)][-1] == "Completed"
    as_of = s.get(f"{base}/tasks/{task_id}", params={"as_of": "3"}, timeout=10).json()
    assert as_of["state"] == "RUNNING" and as_of["progress"] == 40
    metrics = requests.get(f"{base}/metrics", timeout=10).text  # summed over gunicorn workers
    assert 'taskledger_http_requests_total{method="POST",route="/ledger/v1/claims",status="200"} 2.0' in metrics
    return str(task_id)
