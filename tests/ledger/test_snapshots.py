"""Snapshots: a cold load reads the latest snapshot and the events after it, and gets what a full replay gets."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from uuid import UUID

import pytest

from ledger import commands as c
from ledger.application import TaskLedger
from ledger.domain import SNAPSHOT_SCHEMA, Task, event_hash
from ledger.state import dump_json, load_json
from ledger.store import DEFAULT_SNAPSHOT_INTERVAL, GenericStreams, Stream, project
from tests.ledger.support import OPERATOR, WORKER, another_process, events_of, new_ledger


class CountingStreams(GenericStreams):
    """The in-memory stream store, counting what loads read: snapshots used and events replayed."""

    def __init__(self, app: TaskLedger) -> None:
        super().__init__(app)
        self.snapshot_versions: list[int] = []
        self.replayed = 0

    def read_streams(self, known: Mapping[UUID, int], snapshots: bool = True) -> dict[UUID, Stream]:
        found = super().read_streams(known, snapshots)
        for stream in found.values():
            if stream.snapshot is not None:
                self.snapshot_versions.append(stream.snapshot.originator_version)
            self.replayed += len(stream.events)
        return found


def cold_reader(app: TaskLedger, **options: Any) -> tuple[TaskLedger, CountingStreams]:
    reader = another_process(app, **options)
    counted = CountingStreams(reader)
    reader.streams = counted
    return reader, counted


def long_task(app: TaskLedger, heartbeats: int) -> tuple[UUID, int]:
    """A started task with `heartbeats` heartbeats (each its own progress) and some steps and output; its id and lease."""
    task_id = app.create_task(c.CreateTask("ns", "long", steps=("extract", "load"), labels={"team": "bi"},
                                           idempotency_key="long-1"), OPERATOR).task_id
    epoch = app.start_task(c.StartTask(task_id, "worker-1"), WORKER).lease_epoch
    assert epoch is not None
    for i in range(heartbeats):
        app.record_heartbeat(c.RecordHeartbeat(task_id, epoch, progress=round(i * 100 / (heartbeats + 1), 3),
                                               message=f"beat {i}", stats={"rows": i, "pages": [i, i + 1]}), WORKER)
    return task_id, epoch


def replayed(app: TaskLedger, task_id: UUID, version: int | None = None) -> Any:
    """The task rebuilt from every event (up to `version`), without any snapshot."""
    return project(None, app.events.get(task_id, lte=version))


def test_a_cold_load_from_a_snapshot_equals_a_full_replay_field_for_field() -> None:
    writer = new_ledger()
    task_id, _ = long_task(writer, 240)
    reader, counted = cold_reader(writer)

    loaded = reader.fetch([task_id])[task_id]

    full = replayed(writer, task_id)
    assert counted.snapshot_versions == [200] and counted.replayed == 42
    assert loaded.state.to_dict() == full.state.to_dict() == writer.current_task(task_id).to_dict()
    assert (loaded.version, loaded.idempotency, loaded.state.chain_hash, loaded.state.lease_epoch) == (
        full.version, full.idempotency, full.state.chain_hash, full.state.lease_epoch)
    assert (loaded.created_on, loaded.modified_on) == (full.created_on, full.modified_on)
    assert loaded.version == 242 and loaded.idempotency is not None and loaded.state.lease_epoch == 1


def test_a_task_loaded_from_a_snapshot_alone_equals_a_full_replay() -> None:
    writer = new_ledger()
    task_id, _ = long_task(writer, 198)
    reader, counted = cold_reader(writer)

    state = reader.current_task(task_id)

    assert counted.snapshot_versions == [200] and counted.replayed == 0
    assert state.to_dict() == replayed(writer, task_id).state.to_dict()


@pytest.mark.parametrize("interval", [DEFAULT_SNAPSHOT_INTERVAL, 10, 7])
def test_snapshots_are_stored_at_every_multiple_of_the_interval(interval: int) -> None:
    app = new_ledger(snapshot_interval=interval)

    task_id, _ = long_task(app, 240)

    assert app.snapshots is not None
    versions = [s.originator_version for s in app.snapshots.get(task_id)]
    assert versions == list(range(interval, 243, interval))


@pytest.mark.parametrize("heartbeats", [0, 47, 48, 49, 97, 98, 150, 240])
def test_a_cold_load_replays_only_the_events_after_the_latest_multiple_of_the_interval(heartbeats: int) -> None:
    writer = new_ledger()
    task_id, _ = long_task(writer, heartbeats)
    version = heartbeats + 2
    reader, counted = cold_reader(writer)

    state = reader.current_task(task_id)

    assert state.version == version
    assert counted.replayed == version % DEFAULT_SNAPSHOT_INTERVAL
    assert counted.replayed < DEFAULT_SNAPSHOT_INTERVAL


def test_a_write_from_a_cold_load_replays_at_most_the_interval_of_events() -> None:
    writer = new_ledger(snapshot_interval=20)
    task_id, epoch = long_task(writer, 117)
    reader, counted = cold_reader(writer, snapshot_interval=20)

    written = reader.record_heartbeat(c.RecordHeartbeat(task_id, epoch, progress=99.0), WORKER)

    assert written.version == 120
    assert counted.snapshot_versions == [100] and counted.replayed == 19
    assert written.state is not None and written.state.to_dict() == replayed(writer, task_id).state.to_dict()


@pytest.mark.parametrize("version", [1, 2, 49, 50, 51, 99, 100, 101, 149, 150, 151, 199])
def test_history_as_of_a_version_before_at_and_after_a_snapshot_is_the_replay_up_to_it(version: int) -> None:
    writer = new_ledger()
    task_id, _ = long_task(writer, 197)
    reader = another_process(writer)

    for app in (writer, reader):
        state = app.task_as_of(task_id, version=version)
        assert state.version == version
        assert state.to_dict() == replayed(writer, task_id, version).state.to_dict()


def test_history_differs_from_version_to_version_across_a_snapshot() -> None:
    app = new_ledger()
    task_id, _ = long_task(app, 60)

    seen = [app.task_as_of(task_id, version=v) for v in (49, 50, 51)]

    assert [s.version for s in seen] == [49, 50, 51]
    assert len({s.progress for s in seen}) == 3
    assert [s.message for s in seen] == ["beat 46", "beat 47", "beat 48"]


def forged_snapshot(app: TaskLedger, task_id: UUID, schema: str) -> Task.Snapshot:
    """A snapshot of the task now, marked with `schema`, and with a name and progress no event ever gave it."""
    snapshot = Task.Snapshot.take(app.fetch([task_id])[task_id])
    task = load_json(snapshot.state["task"])
    task.update(name="forged", progress=-1.0)
    snapshot.state.update(schema=schema, task=dump_json(task))
    return snapshot


def test_a_snapshot_with_another_schema_is_ignored_and_loads_replay_the_events() -> None:
    writer = new_ledger()
    task_id, epoch = long_task(writer, 60)
    assert writer.snapshots is not None
    writer.snapshots.put([forged_snapshot(writer, task_id, "0:" + SNAPSHOT_SCHEMA)])
    writer.record_heartbeat(c.RecordHeartbeat(task_id, epoch, progress=77.0), WORKER)
    assert [s.originator_version for s in writer.snapshots.get(task_id)] == [50, 62]
    reader, counted = cold_reader(writer)

    state = reader.current_task(task_id)

    assert (state.name, state.progress, state.version) == ("long", 77.0, 63)
    assert state.to_dict() == replayed(writer, task_id).state.to_dict()
    assert counted.snapshot_versions == [62]


@pytest.mark.parametrize("version", [55, 62, 63])
def test_history_past_a_snapshot_with_another_schema_is_the_replay(version: int) -> None:
    writer = new_ledger()
    task_id, epoch = long_task(writer, 60)
    assert writer.snapshots is not None
    writer.snapshots.put([forged_snapshot(writer, task_id, "0:" + SNAPSHOT_SCHEMA)])
    writer.record_heartbeat(c.RecordHeartbeat(task_id, epoch, progress=77.0), WORKER)

    for app in (writer, another_process(writer)):
        state = app.task_as_of(task_id, version=version)
        assert state.name == "long" and state.progress >= 0
        assert state.to_dict() == replayed(writer, task_id, version).state.to_dict()


def test_a_write_after_ignoring_a_snapshot_stores_a_trusted_one_in_its_place() -> None:
    writer = new_ledger()
    task_id, epoch = long_task(writer, 60)
    assert writer.snapshots is not None
    writer.snapshots.put([forged_snapshot(writer, task_id, "old")])
    reader = another_process(writer)

    reader.record_heartbeat(c.RecordHeartbeat(task_id, epoch, progress=77.0), WORKER)

    latest: Any = list(writer.snapshots.get(task_id, desc=True, limit=1))[0]
    assert (latest.originator_version, latest.state["schema"]) == (63, SNAPSHOT_SCHEMA)
    third, counted = cold_reader(writer)
    assert third.current_task(task_id).to_dict() == replayed(writer, task_id).state.to_dict()
    assert (counted.snapshot_versions, counted.replayed) == ([63], 0)


def test_a_long_stream_without_snapshots_gets_one_with_its_next_write() -> None:
    writer = new_ledger(snapshot_interval=1000)
    task_id, epoch = long_task(writer, 120)
    assert writer.snapshots is not None and list(writer.snapshots.get(task_id)) == []
    reader = another_process(writer)

    reader.record_heartbeat(c.RecordHeartbeat(task_id, epoch), WORKER)

    assert [s.originator_version for s in writer.snapshots.get(task_id)] == [123]
    third, counted = cold_reader(writer)
    assert third.current_task(task_id).to_dict() == replayed(writer, task_id).state.to_dict()
    assert counted.replayed == 0


def test_the_hash_chain_carries_across_a_write_from_a_snapshot() -> None:
    writer = new_ledger()
    task_id, epoch = long_task(writer, 48)
    reader, counted = cold_reader(writer)

    reader.record_heartbeat(c.RecordHeartbeat(task_id, epoch, progress=99.0), WORKER)

    assert (counted.snapshot_versions, counted.replayed) == ([50], 0)
    events = events_of(writer, task_id)
    assert [e.originator_version for e in events] == list(range(1, 52))
    assert events[50].prev_hash == event_hash(events[49]) != ""
    assert all(later.prev_hash == event_hash(earlier) for earlier, later in zip(events, events[1:]))
