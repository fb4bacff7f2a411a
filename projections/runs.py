"""The run-history view: one row per lease (attempt) of a task, with its outcome."""

from __future__ import annotations

from typing import Any

from eventsourcing.persistence import Tracking
from eventsourcing.postgres import PostgresDatastore, PostgresTrackingRecorder
from eventsourcing.projection import Projection
from psycopg.sql import SQL

from ledger.domain import Task
from projections.schema import RUNS_DDL

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
    if isinstance(event, Task.Failed):
        return ("retrying" if event.requeued else "failed"), event.error
    if isinstance(event, Task.Paused):
        return "paused", event.reason
    if isinstance(event, Task.Cancelled):
        return "cancelled", event.reason
    if isinstance(event, Task.Aborted):
        return "aborted", event.reason
    return None


class PostgresRunHistory(PostgresTrackingRecorder):
    """Writes run rows and the tracking position in one transaction."""

    def __init__(self, datastore: PostgresDatastore, **kwargs: Any) -> None:
        super().__init__(datastore, **kwargs)
        self.sql_create_statements.extend(SQL(s) for s in RUNS_DDL)  # type: ignore[misc]

    def apply(self, event: Any, tracking: Tracking) -> None:
        with self.datastore.transaction(commit=True) as curs:
            position = tracking.notification_id
            if isinstance(event, Task.Started):
                curs.execute(START, (event.originator_id, event.lease_epoch, event.worker,
                                     event.timestamp, position))
            elif (ending := _outcome(event)) is not None:
                curs.execute(FINISH, {"at": event.timestamp, "outcome": ending[0], "message": ending[1],
                                      "position": position, "task_id": event.originator_id})
            self._insert_tracking(curs, tracking)


class RunHistoryProjection(Projection[PostgresRunHistory]):
    """Materialises every run (lease) of every task."""

    name = "run_history"

    def process_event(self, domain_event: Any, tracking: Tracking) -> None:
        self.view.apply(domain_event, tracking)
