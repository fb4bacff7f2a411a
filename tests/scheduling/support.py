"""Helpers of the scheduling tests: a clock the test moves, and ledgers that read time through it."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any
from uuid import UUID

from ledger import commands as c
from ledger.application import TaskLedger
from ledger.domain import Task
from taskledger.calendar import CronCalendar

IN_MEMORY = {"PERSISTENCE_MODULE": "eventsourcing.popo"}
OPERATOR = c.Caller("olga", "req-op")
WORKER = c.Caller("worker-1", "req-w")
SCHEDULER = c.Caller("scheduler", "tick", "ledger")
WATCHDOG = c.Caller("watchdog", "sweep", "ledger")
GRACE = timedelta(seconds=5)
EVERY_2S = "*/2 * * * * ?"
# Half a second past a minute: occurrences of EVERY_2S fall at :02, :04 … after a task made at the start.
START = datetime(2024, 3, 1, 12, 0, 0, 500_000, tzinfo=timezone.utc)
OCCURRENCE_EVENTS = (Task.RunTriggered, Task.OccurrenceSkipped, Task.OccurrencesMissed)


class FakeClock:
    """Stands still until the test moves it; safe to read from several threads."""

    def __init__(self, start: datetime = START) -> None:
        self._now = start
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> datetime:
        with self._lock:
            self._now += timedelta(seconds=seconds)
            return self._now

    def set(self, moment: datetime) -> None:
        with self._lock:
            self._now = moment


def at(text: str) -> datetime:
    """An instant written as `HH:MM:SS[.ffffff]` on START's day, in UTC."""
    return datetime.fromisoformat(f"{START.date().isoformat()}T{text}+00:00")


def scheduled_ledger(clock: FakeClock, env: dict[str, str] | None = None) -> TaskLedger:
    return TaskLedger(env=dict(env or IN_MEMORY), clock=clock, calendar=CronCalendar(clock))


def create_recurring(app: TaskLedger, namespace: str = "ns", cron: str = EVERY_2S, **fields: Any) -> UUID:
    schedule: dict[str, Any] = {"cron": cron}
    schedule.update({k: fields.pop(k) for k in ("timezone", "catch_up", "overlap") if k in fields})
    return app.create_task(c.CreateTask(namespace, "export", type="pandora", schedule=schedule, **fields),
                           OPERATOR).task_id


def tick(app: TaskLedger, task_id: UUID, now: datetime, grace: timedelta = GRACE) -> c.Written:
    return app.record_occurrences(c.RecordOccurrences(task_id, now, grace), SCHEDULER)


def occurrences(app: TaskLedger, task_id: UUID) -> list[tuple[str, int, str, str | None]]:
    """Every recorded occurrence as (event type, run number, HH:MM:SS in UTC, reason), oldest first."""
    found: list[tuple[str, int, str, str | None]] = []
    for event in app.events.get(task_id):
        if isinstance(event, Task.OccurrencesMissed):
            found += [("missed", event.first_run + i, _clock_time(t), None) for i, t in enumerate(event.times)]
        elif isinstance(event, (Task.RunTriggered, Task.OccurrenceSkipped)):
            kind = "run" if isinstance(event, Task.RunTriggered) else "skipped"
            found.append((kind, event.run, _clock_time(event.time), event.reason))
    return found


def _clock_time(iso: str) -> str:
    return datetime.fromisoformat(iso).astimezone(timezone.utc).strftime("%H:%M:%S")


def run_work(app: TaskLedger, task_id: UUID, worker: str = "worker-1",
             finish: Callable[[TaskLedger, UUID, int], Any] | None = None) -> int:
    """A worker starts the waiting run and completes it (or finishes it as told); the lease epoch it had."""
    epoch = app.start_task(c.StartTask(task_id, worker), WORKER).lease_epoch or 0
    if finish is None:
        app.complete_task(c.CompleteTask(task_id, epoch, {"rows": 1}), WORKER)
    else:
        finish(app, task_id, epoch)
    return epoch
