"""Recurring runs and leases as plain rules over a TaskState.

The aggregate asks these functions what to record (`plan`, `expiry_outcome`), and its events use them
to assign state (`trigger`, `take_run`, `finish_run`…), so replay and the task view evolve identically.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from ledger import schedule as sch
from ledger import state as st
from ledger.state import TaskState

RUN = "run"
SKIPPED = "skipped"
MISSED = "missed"
OVERLAP = "overlap"
CATCH_UP = "catch-up"
QUEUE_FULL = "queue-full"
# Runs an `overlap: queue` schedule may hold waiting; later occurrences are skipped as `queue-full`.
MAX_QUEUED_RUNS = 100
# States in which a schedule records occurrences: PAUSED is a stopped schedule, CANCELLING is ending.
ACTIVE = (st.QUEUED, st.RUNNING)
RETRYING = "retrying"
FAILED = "failed"
CANCELLED = "cancelled"


@dataclass(frozen=True)
class Outcome:
    """How one due occurrence ends: run (a pending run is triggered), skipped or missed."""

    time: datetime
    kind: str
    reason: str | None = None


def iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat()


def parse(text: str) -> datetime:
    return datetime.fromisoformat(text)


def schedule_active(state: TaskState) -> bool:
    return state.schedule is not None and not state.dropped and state.state in ACTIVE


def cursor(state: TaskState) -> datetime:
    """Occurrences at or before this instant are settled: recorded, or passed while the schedule was stopped."""
    return parse(state.schedule_cursor or state.created_at)


def busy(state: TaskState) -> bool:
    """A run is waiting for a worker or in progress: the next occurrence overlaps it."""
    return state.current_run is not None or bool(state.pending_runs)


def claimable(state: TaskState) -> bool:
    """A worker may claim it: queued, and for a recurring task, a triggered run is waiting."""
    return (state.state == st.QUEUED and not state.dropped
            and (state.schedule is None or bool(state.pending_runs)))


def lease_deadline(state: TaskState) -> datetime | None:
    """When the current lease expires unless a heartbeat comes first; None when no lease is held."""
    if state.state not in st.LEASED or state.last_heartbeat is None:
        return None
    return parse(state.last_heartbeat) + timedelta(seconds=state.heartbeat_timeout)


def plan(due: list[datetime], now: datetime, grace: timedelta, state: TaskState, complete: bool) -> list[Outcome]:
    """How each due occurrence (oldest first) ends; `complete` says `due` holds every one up to now.

    Only the latest due occurrence can be on time: one that a later occurrence passed over before any
    scheduler saw it was missed. The latest is on time when found within `grace`; otherwise it is
    missed too, or run once to catch up (`catch_up: run_once`). A run that would overlap a waiting or
    running one is skipped, or queued (`overlap: queue`).
    """
    if not due or not complete:
        return [Outcome(t, MISSED) for t in due]
    policy = state.schedule or sch.DEFAULTS
    *passed_over, latest = due
    outcomes = [Outcome(t, MISSED) for t in passed_over]
    on_time = now - latest <= grace
    if not on_time and policy["catch_up"] != sch.RUN_ONCE:
        return [*outcomes, Outcome(latest, MISSED)]
    return [*outcomes, _run_or_skip(latest, None if on_time else CATCH_UP, state, policy)]


def _run_or_skip(moment: datetime, reason: str | None, state: TaskState, policy: dict[str, str]) -> Outcome:
    if not busy(state):
        return Outcome(moment, RUN, reason)
    if policy["overlap"] == sch.QUEUE:
        queued = len(state.pending_runs) < MAX_QUEUED_RUNS
        return Outcome(moment, RUN, OVERLAP) if queued else Outcome(moment, SKIPPED, QUEUE_FULL)
    return Outcome(moment, SKIPPED, OVERLAP)


def expiry_outcome(state: TaskState) -> str:
    """What an expired lease does: CANCELLING ends cancelled; else a retry while retries are left, else failure."""
    if state.state == st.CANCELLING:
        return CANCELLED
    return RETRYING if state.retries < state.max_retries else FAILED


# ------------------------------------------------------------ state changes (events only)
def arm(state: TaskState, at: str) -> None:
    """(Re)starts the schedule from `at`: earlier occurrences are never recorded."""
    state.schedule_cursor = at if state.schedule is not None else None


def count_occurrence(state: TaskState, run: int, time: str) -> None:
    state.occurrence_count = run
    state.schedule_cursor = time


def trigger(state: TaskState, run: int, time: str) -> None:
    count_occurrence(state, run, time)
    state.pending_runs = [*state.pending_runs, {"run": run, "time": time}]


def take_run(state: TaskState) -> None:
    """A lease starts: it works on the oldest waiting run, from scratch."""
    if state.pending_runs:
        state.current_run, state.pending_runs = state.pending_runs[0], state.pending_runs[1:]
        state.progress = 0.0
        state.message = None


def requeue_run(state: TaskState) -> None:
    """The lease ended without finishing its run: the run waits again, first in line."""
    if state.current_run is not None:
        state.pending_runs = [state.current_run, *state.pending_runs]
        state.current_run = None


def finish_run(state: TaskState) -> None:
    """The run is over (succeeded or failed for good): the task waits for its next run."""
    run: dict[str, Any] = state.current_run or {}
    state.state = st.QUEUED
    state.run_count += 1
    state.last_run_time = run.get("time")
    state.current_run = None
    state.retries = 0


def end_runs(state: TaskState) -> None:
    """The task ended for good: no run waits and none is in progress."""
    state.pending_runs = []
    state.current_run = None
