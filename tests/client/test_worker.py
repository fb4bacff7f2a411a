"""`examples/worker.py` (the Worker and Lease of `taskledger.client`) against the real service, as processes:
several copies drain a namespace with no task done twice; a pause and a cancel reach the running work
function; a worker stopped past its heartbeat timeout loses its lease and its late writes are refused once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from taskledger.client import Ledger, Task
from tests.client.conftest import Service

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "worker.py"


def _worker(service: Service, namespace: str, name: str, log: Path, *extra: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, **service.env("worker"), "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, str(EXAMPLE), "--namespace", namespace, "--name", name, *extra],
                            cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=log.open("wb"),
                            stderr=subprocess.STDOUT)


def _until(what: str, check: Callable[[], Any], timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"not within {timeout} s: {what}")


def _events(ledger: Ledger, task_id: str) -> list[dict[str, Any]]:
    return list(ledger.iter_events(task_id))


def _running(ledger: Ledger, task_id: str, progress: float = 1.0) -> Callable[[], Task | None]:
    def check() -> Task | None:
        task = ledger.get(task_id)
        return task if task["state"] == "RUNNING" and task["progress"] >= progress else None
    return check


def test_four_workers_drain_fifty_tasks_and_none_is_worked_twice(service: Service, tmp_path: Path) -> None:
    ns = f"drain-{uuid.uuid4().hex[:8]}"
    with service.ledger() as admin:
        ids = [admin.create(ns, f"job-{i}", input={"parts": 2, "seconds_per_part": 0.02}, steps=["a", "b"])["id"]
               for i in range(50)]
        workers = [_worker(service, ns, f"w{i}", tmp_path / f"w{i}.log", "--drain") for i in range(4)]
        try:
            codes = [w.wait(timeout=180) for w in workers]
        finally:
            for w in workers:
                w.kill() if w.poll() is None else None
        logs = {i: (tmp_path / f"w{i}.log").read_text() for i in range(4)}
        assert codes == [0, 0, 0, 0], logs
        by_worker: dict[str, int] = {}
        for task_id in ids:
            task = admin.get(task_id)
            assert task["state"] == "SUCCEEDED", (task, logs)
            started = [e for e in _events(admin, task_id) if e["type"] == "Started"]
            assert len(started) == 1, started  # claimed once, by one worker, and never again
            assert task["result"]["worker"] == started[0]["data"]["worker"]
            assert [s["status"] for s in task["steps"]] == ["SUCCEEDED", "SUCCEEDED"]
            assert task["buffers"]["stdout"]["finished"] is True
            by_worker[task["result"]["worker"]] = by_worker.get(task["result"]["worker"], 0) + 1
        assert sum(by_worker.values()) == 50
        assert sum(int(log.rsplit("worked on ", 1)[1].split()[0]) for log in logs.values()) == 50


@pytest.mark.parametrize("action, ends", [("pause", "PAUSED"), ("cancel", "CANCELLED")])
def test_a_pause_or_cancel_from_the_cli_stops_the_running_work_function(service: Service, tmp_path: Path,
                                                                      action: str, ends: str) -> None:
    ns = f"{action}-{uuid.uuid4().hex[:8]}"
    with service.ledger() as admin:
        # 200 parts of 0.1 s: 20 s of work; a heartbeat timeout of 60 s, so only the worker can end it soon.
        task = admin.create(ns, "long", input={"parts": 200, "seconds_per_part": 0.1}, heartbeat_timeout=60)
        worker = _worker(service, ns, "w-long", tmp_path / "w.log", "--drain")
        try:
            _until("the work is under way", _running(admin, task["id"]))
            asked = time.monotonic()
            cli = subprocess.run([sys.executable, "-m", "taskledger", "tasks", action, task["id"], "--reason",
                                  "operator says so"], cwd=ROOT, env={**os.environ, **service.env("operator")},
                                 capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
            assert cli.returncode == 0, cli.stderr
            assert worker.wait(timeout=15) == 0  # --drain: the work function stopped and nothing is left
            took = time.monotonic() - asked
        finally:
            worker.kill() if worker.poll() is None else None
        log = (tmp_path / "w.log").read_text()
        seen = _until(f"the task is {ends}", lambda: t if (t := admin.get(task["id"]))["state"] == ends else None,
                      timeout=10)
        assert seen["progress"] < 100 and seen["result"] is None, seen
        assert took < 10, (took, log)
        assert f"task {task['id']}: {action}" in log, log
        events = _events(admin, task["id"])
        asked_at = next(i for i, e in enumerate(events) if e["actor"] == "operator")
        # Nothing of the work was recorded after the operator's action (a heartbeat that learns the cancel is
        # recorded: CANCELLING is still leased; a paused task records none).
        late = [e["type"] for e in events[asked_at + 1:] if e["type"] not in ("HeartbeatRecorded", "Cancelled")]
        assert late == [], late
        if action == "cancel":
            # The worker confirmed the cancel: CANCELLED now, not at the lease's expiry a minute later.
            assert (events[asked_at]["type"], events[-1]["type"], events[-1]["actor"]) == \
                ("CancelRequested", "Cancelled", "worker"), events
        else:
            assert [e["type"] for e in events[asked_at:]] == ["Paused"], events


def test_a_worker_stopped_past_its_timeout_loses_the_lease_and_late_writes_are_refused_once(
        service: Service, tmp_path: Path) -> None:
    ns = f"fenced-{uuid.uuid4().hex[:8]}"
    with service.ledger() as admin:
        task = admin.create(ns, "frozen", input={"parts": 60, "seconds_per_part": 0.1}, heartbeat_timeout=1.5,
                            max_retries=0)
        log_path = tmp_path / "w.log"
        worker = _worker(service, ns, "w-frozen", log_path, "--drain", "--verbose")
        try:
            _until("the work is under way", _running(admin, task["id"], progress=2))
            os.kill(worker.pid, signal.SIGSTOP)
            try:
                _until("the lease expired", lambda: admin.get(task["id"])["state"] == "FAILED", timeout=20)
            finally:
                os.kill(worker.pid, signal.SIGCONT)
            resumed = log_path.read_text().count("\n")
            assert worker.wait(timeout=15) == 0
        finally:
            worker.kill() if worker.poll() is None else None
        log = log_path.read_text()
        events = _events(admin, task["id"])
        expired = next(i for i, e in enumerate(events) if e["type"] == "LeaseExpired")
        assert events[expired + 1:] == [], events[expired:]  # no late write was accepted
        after = log.splitlines()[resumed:]
        refused = [line for line in after if task["id"] in line and "-> 409" in line]
        assert 1 <= len(refused) <= 3, after  # the stale lease is learned at once, never retried in a loop
        assert sum("lost" in line for line in after) == 1, after
        assert "worked on 1 tasks" in log
