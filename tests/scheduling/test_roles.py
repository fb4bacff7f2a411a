"""The `schedule` and `watchdog` process roles: they work on their own and stop on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from ledger import commands as c
from ledger.application import TaskLedger
from ledger.domain import Task
from taskledger.roles import Periodic
from tests.scheduling.support import OPERATOR, WORKER

ROOT = Path(__file__).resolve().parents[2]


def test_a_periodic_role_keeps_ticking_after_a_failed_tick_and_closes_its_resources_when_stopped() -> None:
    stopping = threading.Event()
    ticks: list[int] = []
    closed: list[str] = []

    def tick() -> None:
        ticks.append(len(ticks))
        if len(ticks) == 1:
            raise ConnectionError("database restarting")
        if len(ticks) == 3:
            stopping.set()

    role = Periodic("schedule", tick, 0.001, stopping, [lambda: closed.append("view")])
    role.start()
    role.join(timeout=10)

    assert (len(ticks), role.failures, closed, role.is_alive()) == (3, 1, ["view"], False)


def _role(name: str, database_url: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "TASKLEDGER_DATABASE_URL": database_url, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "taskledger.cli", name, "--interval", "0.1"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def _stop(process: subprocess.Popen[bytes]) -> int:
    process.send_signal(signal.SIGTERM)
    return process.wait(timeout=20)


def _wait_for(found: Callable[[], bool], timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if found():
            return True
        time.sleep(0.05)
    return False


def test_the_schedule_role_records_due_runs_then_stops_on_sigterm(
        database_url: str, ledger_app: TaskLedger, projections_running: object, namespace: str) -> None:
    task = ledger_app.create_task(c.CreateTask(namespace, "export", schedule={"cron": "* * * * * ?"}),
                                  OPERATOR).task_id
    process = _role("schedule", database_url)
    try:
        triggered = _wait_for(lambda: any(isinstance(e, Task.RunTriggered) for e in ledger_app.events.get(task)))
    finally:
        code = _stop(process)
        ledger_app.abort_task(c.AbortTask(task, "test over"), OPERATOR)

    assert triggered, process.stdout.read().decode() if process.stdout else ""
    assert code == 0


def test_the_watchdog_role_expires_a_silent_lease_then_stops_on_sigterm(
        database_url: str, ledger_app: TaskLedger, projections_running: object, namespace: str) -> None:
    task = ledger_app.create_task(c.CreateTask(namespace, "cube", heartbeat_timeout=0.2, max_retries=1),
                                  OPERATOR).task_id
    ledger_app.start_task(c.StartTask(task, "vanishing-worker"), WORKER)
    process = _role("watchdog", database_url)
    try:
        expired = _wait_for(lambda: ledger_app.task_as_of(task).retries == 1)
    finally:
        code = _stop(process)

    assert expired, process.stdout.read().decode() if process.stdout else ""
    assert code == 0
    assert ledger_app.task_as_of(task).state == "QUEUED"
