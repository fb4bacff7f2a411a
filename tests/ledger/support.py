"""Helpers for domain tests: a deterministic clock, an in-memory ledger, and state drivers."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any
from uuid import UUID

from ledger import commands as c
from ledger import state as st
from ledger.application import TaskLedger
from ledger.state import TaskState
from taskledger.calendar import CronCalendar

IN_MEMORY = {"PERSISTENCE_MODULE": "eventsourcing.popo"}
OPERATOR = c.Caller(actor="olga", request_id="req-op", facade="native")
WORKER = c.Caller(actor="worker-1", request_id="req-w", facade="native")


class Clock:
    """Returns a new instant one second after the previous one on every call."""

    def __init__(self, start: datetime = datetime(2024, 3, 1, 12, 0, tzinfo=timezone.utc)) -> None:
        self.next = start
        self.issued: list[datetime] = []

    def __call__(self) -> datetime:
        now = self.next
        self.next = now + timedelta(seconds=1)
        self.issued.append(now)
        return now

    @property
    def last(self) -> datetime:
        return self.issued[-1]


def new_ledger(clock: Clock | None = None, **options: Any) -> TaskLedger:
    """An in-memory ledger; `options` are TaskLedger's keywords (`cache_size`, `snapshot_interval`)."""
    return TaskLedger(env=dict(IN_MEMORY), clock=clock or Clock(), calendar=CronCalendar(), **options)


class _SharedStoreLedger(TaskLedger):
    """A ledger over another ledger's in-memory event and snapshot stores, with a cache of its own."""

    def __init__(self, store: TaskLedger, **options: Any) -> None:
        self._store = store
        super().__init__(env=dict(IN_MEMORY), clock=store.clock, calendar=store.calendar, **options)

    def construct_recorder(self) -> Any:
        return self._store.recorder

    def construct_snapshot_store(self) -> Any:
        assert self._store.snapshots is not None
        return self.factory.event_store(mapper=self.mapper, recorder=self._store.snapshots.recorder)


def another_process(app: TaskLedger, **options: Any) -> TaskLedger:
    """A second ledger on the same in-memory store, as another server process would be: its cache starts cold."""
    return _SharedStoreLedger(app, **options)


def events_of(app: TaskLedger, task_id: UUID) -> list[Any]:
    return list(app.events.get(task_id))


def state_of(app: TaskLedger, task_id: UUID) -> TaskState:
    return app.repository.get(task_id).state  # type: ignore[no-any-return]


def create(app: TaskLedger, caller: c.Caller = OPERATOR, **fields: Any) -> UUID:
    fields.setdefault("namespace", "ns")
    fields.setdefault("name", "nightly-export")
    fields.setdefault("steps", ("extract", "load"))
    return app.create_task(c.CreateTask(**fields), caller).task_id


# How a fresh task reaches each state through the public API (after create).
PATHS: dict[str, tuple[str, ...]] = {
    st.QUEUED: (),
    st.RUNNING: ("start",),
    st.PAUSED: ("start", "pause"),
    st.CANCELLING: ("start", "cancel"),
    st.SUCCEEDED: ("start", "complete"),
    st.FAILED: ("start", "fail-no-retry"),
    st.CANCELLED: ("start", "cancel", "cancel"),
    st.ABORTED: ("start", "abort"),
}


@dataclass
class Driven:
    """A task driven into a state: its id, the current lease epoch and its version."""

    task_id: UUID
    lease_epoch: int
    version: int


def drive(app: TaskLedger, target: str, **fields: Any) -> Driven:
    task_id = create(app, **fields)
    for step in PATHS[target]:
        epoch = state_of(app, task_id).lease_epoch
        {
            "start": lambda: app.start_task(c.StartTask(task_id, "worker-1"), WORKER),
            "pause": lambda: app.pause_task(c.PauseTask(task_id, "maintenance"), OPERATOR),
            "cancel": lambda: app.cancel_task(c.CancelTask(task_id, "not needed"), OPERATOR),
            "complete": lambda: app.complete_task(c.CompleteTask(task_id, epoch, {"rows": 1}), WORKER),
            "fail-no-retry": lambda: app.fail_task(c.FailTask(task_id, epoch, "disk full", retry=False), WORKER),
            "abort": lambda: app.abort_task(c.AbortTask(task_id, "operator"), OPERATOR),
        }[step]()
    state = state_of(app, task_id)
    assert state.state == target
    return Driven(task_id, state.lease_epoch, state.version)


Action = Callable[[TaskLedger, UUID, int], c.Written]

# Every action a caller can ask for; the int argument is the lease epoch a worker presents.
ACTIONS: dict[str, Action] = {
    "start": lambda app, t, e: app.start_task(c.StartTask(t, "worker-2"), WORKER),
    "heartbeat": lambda app, t, e: app.record_heartbeat(c.RecordHeartbeat(t, e, progress=40.0), WORKER),
    "progress": lambda app, t, e: app.report_progress(c.ReportProgress(t, e, 42.5, "halfway"), WORKER),
    "step": lambda app, t, e: app.update_step(c.UpdateStep(t, e, 0, "RUNNING", "reading"), WORKER),
    "output": lambda app, t, e: app.append_output(c.AppendOutput(t, e, "0", "page", positions=3), WORKER),
    "complete": lambda app, t, e: app.complete_task(c.CompleteTask(t, e, {"rows": 7}), WORKER),
    "fail-retries-left": lambda app, t, e: app.fail_task(c.FailTask(t, e, "timeout"), WORKER),
    "fail-no-retries-left": lambda app, t, e: app.fail_task(c.FailTask(t, e, "timeout"), WORKER),
    "pause": lambda app, t, e: app.pause_task(c.PauseTask(t, "maintenance"), OPERATOR),
    "resume": lambda app, t, e: app.resume_task(c.ResumeTask(t), OPERATOR),
    "cancel": lambda app, t, e: app.cancel_task(c.CancelTask(t, "not needed"), OPERATOR),
    "abort": lambda app, t, e: app.abort_task(c.AbortTask(t, "stuck"), OPERATOR),
    "drop": lambda app, t, e: app.drop_task(c.DropTask(t), OPERATOR),
    "drop-force": lambda app, t, e: app.drop_task(c.DropTask(t, force=True), OPERATOR),
    "update": lambda app, t, e: app.update_task(c.UpdateTask(t, {"name": "renamed"}), OPERATOR),
}

# max_retries of the fresh task each action is tried on (the fail rows differ only in this).
MAX_RETRIES = {"fail-retries-left": 1, "fail-no-retries-left": 0}

# The name IllegalTransitionError gives each refused action.
ACTION_NAMES = {
    "start": "start", "progress": "report progress", "step": "update a step",
    "output": "append output", "complete": "complete", "fail-retries-left": "fail",
    "fail-no-retries-left": "fail", "pause": "pause", "resume": "resume", "cancel": "cancel",
    "abort": "abort", "drop": "drop without force", "update": "update",
}

WORKER_ACTIONS = ("heartbeat", "progress", "step", "output", "complete",
                  "fail-retries-left", "fail-no-retries-left")
