"""Helpers for projection tests: drive a workload, copy events, wait, and compare read tables."""

from __future__ import annotations

import random
import threading
import time
from typing import Any
from uuid import UUID

import psycopg
from psycopg.rows import dict_row

from ledger import commands as c
from ledger.application import TaskLedger
from ledger.errors import LedgerError
from projections.runner import start_projections
from taskledger.config import eventsourcing_env

WHO = c.Caller("tester", "req", "native")


def drive(app: TaskLedger, n_tasks: int, seed: int, namespace: str = "ns") -> list[UUID]:
    """Creates tasks and walks each through a random life of legal actions."""
    rnd = random.Random(seed)
    ids = []
    for i in range(n_tasks):
        written = app.create_task(c.CreateTask(namespace=namespace, name=f"task-{seed}-{i}",
                                               steps=("extract", "load"), max_retries=rnd.randint(0, 2)), WHO)
        ids.append(written.task_id)
        _live(app, written.task_id, rnd)
    return ids


def _live(app: TaskLedger, task_id: UUID, rnd: random.Random) -> None:
    for _ in range(rnd.randint(0, 4)):
        try:
            epoch = app.start_task(c.StartTask(task_id, f"w{rnd.randint(1, 3)}"), WHO).lease_epoch or 0
        except LedgerError:
            return
        for _ in range(rnd.randint(0, 3)):
            app.record_heartbeat(c.RecordHeartbeat(task_id, epoch, rnd.uniform(0, 100), "working", {"rows": 1}), WHO)
        app.update_step(c.UpdateStep(task_id, epoch, 0, "SUCCEEDED", "done\n"), WHO)
        app.append_output(c.AppendOutput(task_id, epoch, "0", f"page of {epoch}", positions=2), WHO)
        choice = rnd.choice(["complete", "fail", "pause", "cancel"])
        if choice == "complete":
            app.complete_task(c.CompleteTask(task_id, epoch, {"rows": 3}), WHO)
            return
        if choice == "fail":
            app.fail_task(c.FailTask(task_id, epoch, "boom"), WHO)
        elif choice == "pause":
            app.pause_task(c.PauseTask(task_id, "maintenance"), WHO)
            app.resume_task(c.ResumeTask(task_id), WHO)
        else:
            app.cancel_task(c.CancelTask(task_id), WHO)
            app.cancel_task(c.CancelTask(task_id), WHO)
            return


def copy_events(src_url: str, dst_url: str) -> None:
    """Copies the event table as stored, so a fresh database can replay the very same log."""
    with psycopg.connect(src_url) as src, psycopg.connect(dst_url) as dst:
        with src.cursor().copy("COPY taskledger_events TO STDOUT (FORMAT BINARY)") as out, \
                dst.cursor().copy("COPY taskledger_events FROM STDIN (FORMAT BINARY)") as into:
            for chunk in out:
                into.write(chunk)


def positions(url: str) -> dict[str, int]:
    with psycopg.connect(url) as conn:
        head = conn.execute("SELECT coalesce(max(notification_id), 0) FROM taskledger_events").fetchone()
        result = {"head": head[0] if head else 0}
        for name in ("task_view", "run_history"):
            row = conn.execute(f"SELECT coalesce(max(notification_id), 0) FROM {name}_tracking "
                               "WHERE application_name = 'TaskLedger'").fetchone()
            result[name] = row[0] if row else 0
        return result


def wait_caught_up(url: str, timeout: float = 60.0) -> dict[str, int]:
    deadline = time.monotonic() + timeout
    while True:
        now = positions(url)
        if now["task_view"] == now["head"] and now["run_history"] == now["head"]:
            return now
        if time.monotonic() > deadline:
            raise AssertionError(f"projections did not catch up: {now}")
        time.sleep(0.05)


def project_to_head(url: str) -> None:
    """Runs the real projection runners in-process until they reach the head, then stops them."""
    stopping = threading.Event()
    threads = start_projections(eventsourcing_env(url, pool_size=2), url, stopping)
    try:
        wait_caught_up(url)
    finally:
        stopping.set()
        for thread in threads:
            thread.join(timeout=10)


def replay_into_fresh(src_url: str, fresh_url: str) -> None:
    """Builds the read tables of `fresh_url` from scratch out of src's events, with in-process runners."""
    copy_events(src_url, fresh_url)
    project_to_head(fresh_url)


def read_tables(url: str) -> dict[str, list[dict[str, Any]]]:
    with psycopg.connect(url, row_factory=dict_row) as conn:
        return {
            "tasks": conn.execute("SELECT * FROM tasks ORDER BY id").fetchall(),
            "task_runs": conn.execute("SELECT * FROM task_runs ORDER BY task_id, attempt").fetchall(),
            "task_output_pages": conn.execute(
                "SELECT * FROM task_output_pages ORDER BY task_id, buffer, sequence").fetchall(),
        }
