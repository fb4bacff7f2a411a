"""The task view: one row per task holding the TaskState document and its filterable columns."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from eventsourcing.persistence import Tracking
from eventsourcing.postgres import PostgresDatastore, PostgresTrackingRecorder
from eventsourcing.projection import Projection
from psycopg.sql import SQL
from psycopg.types.json import Jsonb

from ledger.domain import Task, is_task_event, next_state
from ledger.recurrence import claimable, lease_deadline
from ledger.state import TaskState
from projections.schema import ASYNC_COMMIT, TASKS_DDL
from projections.topics import topic_is

UPSERT = """
INSERT INTO tasks (id, namespace, facade, name, type, state, submitter, worker,
                   created_at, updated_at, version, dropped, position, external_id,
                   lease_deadline, claimable, doc)
VALUES (%(id)s, %(namespace)s, %(facade)s, %(name)s, %(type)s, %(state)s, %(submitter)s,
        %(worker)s, %(created_at)s, %(updated_at)s, %(version)s, %(dropped)s, %(position)s,
        %(external_id)s, %(lease_deadline)s, %(claimable)s, %(doc)s)
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


class PostgresTaskView(PostgresTrackingRecorder):
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
        pages = []
        for position, event in events:
            states[event.originator_id] = next_state(states.get(event.originator_id), event)
            positions[event.originator_id] = position
            if isinstance(event, Task.OutputAppended):
                pages.append((event.originator_id, event.buffer, event.sequence, event.data,
                              event.positions, event.last, position))
        curs.executemany(UPSERT, [_row(states[i], positions[i]) for i in ids])
        if pages:
            curs.executemany(PAGE, pages)


def _row(state: TaskState, position: int) -> dict[str, Any]:
    return {
        "id": state.id, "namespace": state.namespace, "facade": state.facade, "name": state.name,
        "type": state.type, "state": state.state, "submitter": state.submitter,
        "worker": state.worker, "created_at": state.created_at, "updated_at": state.updated_at,
        "version": state.version, "dropped": state.dropped, "position": position,
        "external_id": next(iter(state.external_ids.values()), None),
        "lease_deadline": lease_deadline(state), "claimable": claimable(state),
        "doc": Jsonb(state.to_dict()),
    }


class TaskViewProjection(Projection[PostgresTaskView]):
    """Materialises the current state of every task."""

    name = "task_view"

    def process_event(self, domain_event: Any, tracking: Tracking) -> None:
        self.view.apply(domain_event, tracking)
