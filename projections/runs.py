"""The run-history view: one row per lease (attempt) of a task, and one per occurrence of a schedule."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from eventsourcing.persistence import Tracking
from eventsourcing.postgres import PostgresDatastore, PostgresTrackingRecorder
from eventsourcing.projection import Projection
from psycopg.sql import SQL

from ledger import recurrence as rec
from ledger.domain import Task
from projections.schema import ASYNC_COMMIT, OCCURRENCES_DDL, RUNS_DDL
from projections.topics import topic_is

# Every event that starts, ends or schedules a run (what `run_writes` looks at).
RUN_EVENTS = (Task.Started, Task.Completed, Task.LeaseExpired, Task.Failed, Task.Paused, Task.Cancelled,
              Task.Aborted, Task.Dropped, Task.RunTriggered, Task.OccurrenceSkipped, Task.OccurrencesMissed)

START = """
INSERT INTO task_runs (task_id, attempt, worker, started_at, outcome, position)
VALUES (%s, %s, %s, %s, 'running', %s)
"""

FINISH = """
UPDATE task_runs SET ended_at = %(at)s, outcome = %(outcome)s, message = %(message)s,
       duration_ms = (EXTRACT(EPOCH FROM (%(at)s::timestamptz - started_at)) * 1000)::bigint,
       position = %(position)s
WHERE task_id = %(task_id)s AND ended_at IS NULL
"""


def _outcome(event: Any) -> tuple[str, str | None] | None:
    """How an event ends the open run, if it does."""
    if isinstance(event, Task.Completed):
        return "succeeded", None
    if isinstance(event, Task.LeaseExpired):
        return event.outcome, _expired(event)
    if isinstance(event, Task.Failed):
        return ("retrying" if event.requeued else "failed"), event.error
    if isinstance(event, Task.Paused):
        return "paused", event.reason
    if isinstance(event, Task.Cancelled):
        return "cancelled", event.reason
    if isinstance(event, Task.Aborted):
        return "aborted", event.reason
    return None


class RunHistoryRecorder(PostgresTrackingRecorder):
    """Writes run rows and the tracking position in one transaction, many events at a time."""

    def __init__(self, datastore: PostgresDatastore, **kwargs: Any) -> None:
        super().__init__(datastore, **kwargs)
        self.sql_create_statements.extend(SQL(s) for s in [*RUNS_DDL, *OCCURRENCES_DDL])  # type: ignore[misc]

    def wants(self, topic: str) -> bool:
        """Only the events that start, end or schedule runs; heartbeats and progress are not decoded."""
        return topic_is(topic, *RUN_EVENTS)

    def apply(self, event: Any, tracking: Tracking) -> None:
        self.apply_batch([(tracking.notification_id, event)], tracking)

    def apply_batch(self, items: Sequence[tuple[int, Any]], tracking: Tracking) -> None:
        """Applies events in log order and records `tracking` (the batch's last position), all or nothing."""
        with self.datastore.transaction(commit=True) as curs:
            curs.execute(ASYNC_COMMIT)
            self.write(curs, items)
            self._insert_tracking(curs, tracking)

    def write(self, curs: Any, items: Sequence[tuple[int, Any]]) -> None:
        statements = [w for position, event in items for w in run_writes(event, position)]
        if not statements:
            return
        with curs.connection.pipeline():
            for statement, params in statements:
                curs.execute(statement, params)


def run_writes(event: Any, position: int) -> list[tuple[str, Any]]:
    """The statements one event makes on the run and occurrence rows, in order."""
    found: list[tuple[str, Any]] = []
    if isinstance(event, Task.Started):
        found.append((START, (event.originator_id, event.lease_epoch, event.worker, event.timestamp, position)))
    elif (ending := _outcome(event)) is not None:
        found.append((FINISH, {"at": event.timestamp, "outcome": ending[0], "message": ending[1],
                               "position": position, "task_id": event.originator_id}))
    for statement, rows in occurrence_writes(event, position):
        found.extend((statement, row) for row in rows)
    return found


class RunHistoryProjection(Projection[RunHistoryRecorder]):
    """Materialises every run (lease) of every task."""

    name = "run_history"

    def process_event(self, domain_event: Any, tracking: Tracking) -> None:
        self.view.apply(domain_event, tracking)


# ------------------------------------------------------------------ occurrences of schedules
ADD_OCCURRENCE = """
INSERT INTO task_occurrences (task_id, run, time, status, reason, position)
VALUES (%(task_id)s, %(run)s, %(time)s, %(status)s, %(reason)s, %(position)s)
"""

# The oldest waiting run is the one a lease takes (ledger.recurrence.take_run).
START_RUN = """
UPDATE task_occurrences SET status = 'running', started_at = COALESCE(started_at, %(at)s), position = %(position)s
WHERE task_id = %(task_id)s
  AND run = (SELECT min(run) FROM task_occurrences WHERE task_id = %(task_id)s AND status = 'pending')
"""

END_RUN = """
UPDATE task_occurrences SET status = %(status)s, reason = COALESCE(%(reason)s, reason), message = %(message)s,
       ended_at = %(at)s, took_ms = (EXTRACT(EPOCH FROM (%(at)s::timestamptz - started_at)) * 1000)::bigint,
       position = %(position)s
WHERE task_id = %(task_id)s AND status = 'running'
"""

REQUEUE_RUN = """
UPDATE task_occurrences SET status = 'pending', message = COALESCE(%(message)s, message), position = %(position)s
WHERE task_id = %(task_id)s AND status = 'running'
"""

DROP_WAITING = """
UPDATE task_occurrences SET status = 'skipped', reason = %(reason)s, position = %(position)s
WHERE task_id = %(task_id)s AND status = 'pending'
"""

Write = tuple[str, list[dict[str, Any]]]


def occurrence_writes(event: Any, position: int) -> list[Write]:
    """The statements one event makes on the occurrence rows of its task (none for most events)."""
    base = {"task_id": event.originator_id, "at": event.timestamp, "position": position}
    if isinstance(event, (Task.RunTriggered, Task.OccurrenceSkipped)):
        status = "pending" if isinstance(event, Task.RunTriggered) else "skipped"
        return [(ADD_OCCURRENCE, [{**base, "run": event.run, "time": event.time, "status": status,
                                   "reason": event.reason}])]
    if isinstance(event, Task.OccurrencesMissed):
        return [(ADD_OCCURRENCE, [{**base, "run": event.first_run + i, "time": time, "status": "missed",
                                   "reason": None} for i, time in enumerate(event.times)])]
    if isinstance(event, Task.Started):
        return [(START_RUN, [base])]
    return _run_endings(event, base)


def _run_endings(event: Any, base: dict[str, Any]) -> list[Write]:
    def end(status: str, reason: str | None, message: str | None) -> Write:
        return END_RUN, [{**base, "status": status, "reason": reason, "message": message}]

    def requeue(message: str | None) -> Write:
        return REQUEUE_RUN, [{**base, "message": message}]

    def stop(reason: str, message: str | None) -> list[Write]:
        return [end("failed", reason, message), (DROP_WAITING, [{**base, "reason": reason}])]

    if isinstance(event, Task.Completed):
        return [end("succeeded", None, None)]
    if isinstance(event, Task.Failed):
        return [requeue(event.error) if event.requeued else end("failed", None, event.error)]
    if isinstance(event, Task.LeaseExpired):
        if event.outcome == rec.CANCELLED:
            return stop("cancelled", _expired(event))
        return [requeue(_expired(event)) if event.outcome == rec.RETRYING
                else end("failed", "lease-expired", _expired(event))]
    if isinstance(event, Task.Paused):
        return [requeue(None)]
    if isinstance(event, (Task.Cancelled, Task.Aborted)):
        return stop("cancelled" if isinstance(event, Task.Cancelled) else "aborted", event.reason)
    if isinstance(event, Task.Dropped):
        return stop("dropped", None)
    return []


def _expired(event: Any) -> str:
    """The message of a run the watchdog ended (projections.schema.LEASE_EXPIRED matches it, indexed)."""
    return f"lease {event.lease_epoch} expired: no heartbeat by {event.deadline}"
