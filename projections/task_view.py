"""The task view: one row per task holding the TaskState document and its filterable columns."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from eventsourcing.persistence import Tracking
from eventsourcing.postgres import PostgresDatastore, PostgresTrackingRecorder
from eventsourcing.projection import Projection
from psycopg.sql import SQL

from ledger.domain import Task, is_task_event, next_state
from ledger.recurrence import claimable, lease_deadline
from ledger.state import TaskState
from projections.schema import ASYNC_COMMIT, TASKS_DDL
from projections.topics import topic_is

COLUMNS = ("id", "namespace", "facade", "name", "type", "state", "submitter", "worker", "created_at",
           "updated_at", "version", "dropped", "position", "external_id", "lease_deadline", "claimable", "doc")
TYPES = ("uuid", "text", "text", "text", "text", "text", "text", "text", "timestamptz", "timestamptz", "integer",
         "boolean", "bigint", "text", "timestamptz", "boolean", "json")
# Every task a batch touched, in one statement: column arrays unnested into rows.
UPSERT = f"""
INSERT INTO tasks ({", ".join(COLUMNS)})
SELECT * FROM unnest({", ".join(f"%b::text[]::{t}[]" if t in ("json", "timestamptz") else f"%b::{t}[]"
                                for t in TYPES)})
ON CONFLICT (id) DO UPDATE SET
    namespace = EXCLUDED.namespace, facade = EXCLUDED.facade, name = EXCLUDED.name,
    type = EXCLUDED.type, state = EXCLUDED.state, submitter = EXCLUDED.submitter,
    worker = EXCLUDED.worker, updated_at = EXCLUDED.updated_at, version = EXCLUDED.version,
    dropped = EXCLUDED.dropped, position = EXCLUDED.position, external_id = EXCLUDED.external_id,
    lease_deadline = EXCLUDED.lease_deadline, claimable = EXCLUDED.claimable, doc = EXCLUDED.doc
"""

PAGE = """
INSERT INTO task_output_pages (task_id, buffer, sequence, data, positions, last, position)
VALUES (%s, %s, %s, %s, %s, %s, %s)
"""


class TaskViewRecorder(PostgresTrackingRecorder):
    """Writes task rows and the tracking position in one transaction, many events at a time."""

    def __init__(self, datastore: PostgresDatastore, **kwargs: Any) -> None:
        super().__init__(datastore, **kwargs)
        self.sql_create_statements.extend(SQL(s) for s in TASKS_DDL)  # type: ignore[misc]

    def wants(self, topic: str) -> bool:
        """Every task event changes its task's row (version, time, hash chain); bookkeeping events do not."""
        return topic_is(topic, Task.Event, Task.Created)

    def apply(self, event: Any, tracking: Tracking) -> None:
        self.apply_batch([(tracking.notification_id, event)], tracking)

    def apply_batch(self, items: Sequence[tuple[int, Any]], tracking: Tracking) -> None:
        """Applies events in log order and records `tracking` (the batch's last position), all or nothing."""
        with self.datastore.transaction(commit=True) as curs:
            curs.execute(ASYNC_COMMIT)
            self.write(curs, items)
            self._insert_tracking(curs, tracking)

    def write(self, curs: Any, items: Sequence[tuple[int, Any]]) -> None:
        events = [(position, e) for position, e in items if is_task_event(e)]
        if not events:
            return
        ids = list(dict.fromkeys(e.originator_id for _, e in events))
        curs.execute("SELECT id, doc FROM tasks WHERE id = ANY(%s)", (ids,))
        states: dict[Any, TaskState] = {row["id"]: TaskState.from_dict(row["doc"]) for row in curs.fetchall()}
        positions: dict[Any, int] = {}
        last = {e.originator_id: k for k, (_, e) in enumerate(events)}
        pages = []
        for k, (position, event) in enumerate(events):
            task_id = event.originator_id
            states[task_id] = next_state(states.get(task_id), event, chain=last[task_id] == k)
            positions[task_id] = position
            if isinstance(event, Task.OutputAppended):
                pages.append((task_id, event.buffer, event.sequence, event.data, event.positions, event.last,
                              position))
        rows = [_row(states[i], positions[i]) for i in ids]
        curs.execute(UPSERT, [list(column) for column in zip(*rows)])
        if pages:
            curs.executemany(PAGE, pages)


def _row(state: TaskState, position: int) -> tuple[Any, ...]:
    """One task's values in COLUMNS order (timestamps and the document as text, cast by the statement)."""
    deadline = lease_deadline(state)
    return (state.id, state.namespace, state.facade, state.name, state.type, state.state, state.submitter,
            state.worker, state.created_at, state.updated_at, state.version, state.dropped, position,
            next(iter(state.external_ids.values()), None), None if deadline is None else deadline.isoformat(),
            claimable(state), json.dumps(state.to_dict()))


class TaskViewProjection(Projection[TaskViewRecorder]):
    """Materialises the current state of every task."""

    name = "task_view"

    def process_event(self, domain_event: Any, tracking: Tracking) -> None:
        self.view.apply(domain_event, tracking)
