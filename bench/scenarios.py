"""Measurements around the running service that are not a plain wrk run.

  lag probe    while a load runs: a write every 50 ms, timed until both projections show it
  first write  the service restarted: the first heartbeat on tasks with many events, and on fresh ones
"""

from __future__ import annotations

import http.client
import json
import statistics
import threading
import time
from typing import Any
from urllib.parse import urlsplit

import psycopg

from bench.client import basic_auth
from bench.inprocess import WHO, LongTask
from ledger import commands as c
from ledger.application import TaskLedger
from taskledger.config import eventsourcing_env

POSITIONS = ("SELECT min(notification_id) FROM (SELECT notification_id FROM task_view_tracking "
             "WHERE application_name = 'TaskLedger' UNION ALL SELECT notification_id FROM run_history_tracking "
             "WHERE application_name = 'TaskLedger') t")


class LagProbe:
    """Writes one task every `interval` seconds and times until every projection has applied it."""

    def __init__(self, url: str, interval: float = 0.05, timeout: float = 10.0) -> None:
        self.url, self.interval, self.timeout = url, interval, timeout
        self.samples: list[float] = []
        self.lost = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="lag-probe", daemon=True)

    def __enter__(self) -> LagProbe:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=self.timeout + 5)

    def _run(self) -> None:
        app = TaskLedger(eventsourcing_env(self.url, pool_size=1))
        try:
            with psycopg.connect(self.url, autocommit=True) as conn:
                while not self._stop.wait(self.interval):
                    written = app.create_task(c.CreateTask(namespace="bench-lag", name="probe"), WHO)
                    started = time.perf_counter()
                    while True:
                        row = conn.execute(POSITIONS).fetchone()
                        if row and row[0] is not None and row[0] >= written.position:
                            self.samples.append((time.perf_counter() - started) * 1000)
                            break
                        if time.perf_counter() - started > self.timeout:
                            self.lost += 1
                            break
                        time.sleep(0.001)
        finally:
            app.close()

    def summary(self) -> dict[str, Any]:
        ordered = sorted(self.samples)
        if not ordered:
            return {"samples": 0, "not_visible_within_s": self.lost}

        def pick(p: float) -> float:
            return round(ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))], 1)
        return {"samples": len(ordered), "p50_ms": pick(50), "p99_ms": pick(99), "max_ms": round(ordered[-1], 1),
                "not_visible_within_s": self.lost}


def first_heartbeat_ms(api_base: str, user: str, password: str, task: LongTask, spare: LongTask) -> float:
    """The task's first heartbeat in a worker: on a new connection, after one read of another task on it.

    The read warms what every first request of a worker pays whatever the task (the password check, the
    pools), so the timed request differs from a warm one only by loading the task it writes.
    """
    parts = urlsplit(api_base)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port or 80, timeout=30)
    headers = {"Authorization": basic_auth(user, password), "Content-Type": "application/json"}
    try:
        conn.request("GET", f"{parts.path}/ledger/v1/tasks/{spare.task_id}/events", headers=headers)
        conn.getresponse().read()
        body = json.dumps({"lease_epoch": task.lease_epoch, "progress": 1})
        started = time.perf_counter()
        conn.request("POST", f"{parts.path}/ledger/v1/tasks/{task.task_id}/heartbeat", body=body, headers=headers)
        answer = conn.getresponse()
        answer.read()
        elapsed = (time.perf_counter() - started) * 1000
    finally:
        conn.close()
    if answer.status != 200:
        raise RuntimeError(f"the first heartbeat after the restart answered {answer.status}")
    return elapsed


def median(values: list[float]) -> float:
    return statistics.median(values) if values else 0.0
