"""The hash chain's event hash is the same whether computed the fast way or the explicit one."""

from __future__ import annotations

from datetime import datetime, timezone
from uuid import uuid4

from ledger.domain import Task
from ledger.hashing import event_hash, reference_hash
from taskledger.calendar import CronCalendar
from tests.projections.helpers import drive


def test_every_event_of_a_varied_workload_hashes_as_the_reference_does() -> None:
    from ledger.application import TaskLedger

    app = TaskLedger({"PERSISTENCE_MODULE": "eventsourcing.popo"}, calendar=CronCalendar())
    ids = drive(app, n_tasks=25, seed=11)
    events = [e for i in ids for e in app.events.get(i)]
    assert len(events) > 100
    assert [event_hash(e) for e in events] == [reference_hash(e) for e in events]


def test_odd_values_hash_as_the_reference_does() -> None:
    event = object.__new__(Task.OccurrencesMissed)
    event.__dict__.update({"originator_id": uuid4(), "originator_version": 3, "timestamp":
                           datetime(2026, 1, 2, 3, 4, 5, 678, tzinfo=timezone.utc), "actor": "é ☃", "request_id": "r",
                           "facade": "native", "prev_hash": "", "first_run": 1,
                           "times": ("2026-01-01T00:00:00+00:00", "x"), "nested": {"b": [1.5, None, True], "a": {}}})
    assert event_hash(event) == reference_hash(event)
