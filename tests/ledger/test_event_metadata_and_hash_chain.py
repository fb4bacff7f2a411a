"""Every event says who, through which API, in which request and when; events form a hash chain."""

from __future__ import annotations

import copy
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest

from ledger import commands as c
from ledger.domain import Meta, Task, event_hash
from tests.ledger.support import Clock, events_of, new_ledger, state_of

ALICE = c.Caller("alice", "req-1", "native")
KYLIN = c.Caller("kylin-admin", "req-2", "kylin")
WORKER = c.Caller("worker-7", "req-3", "openlookeng")
HUGE = c.Caller("hg-operator", "req-4", "hugegraph")


def _every_event_type(app: Any, clock: Clock) -> tuple[UUID, list[tuple[c.Caller, datetime]]]:
    """Drives tasks through every event class; returns the main task and who did what when."""
    asked: list[tuple[c.Caller, datetime]] = []

    def do(caller: c.Caller, write: Any) -> c.Written:
        written = write(caller)
        asked.append((caller, clock.last))
        return written

    t = do(ALICE, lambda who: app.create_task(
        c.CreateTask("ns", "cube-build", steps=("a", "b"), max_retries=1, input={"q": 1}), who)).task_id
    do(KYLIN, lambda who: app.update_task(c.UpdateTask(t, {"labels": {"team": "bi"}}), who))
    do(WORKER, lambda who: app.start_task(c.StartTask(t, "w7"), who))
    do(WORKER, lambda who: app.record_heartbeat(c.RecordHeartbeat(t, 1, 5.0, "warming", {"rows": 3}), who))
    do(WORKER, lambda who: app.report_progress(c.ReportProgress(t, 1, 10.0), who))
    do(WORKER, lambda who: app.update_step(c.UpdateStep(t, 1, 0, "RUNNING", "log line"), who))
    do(WORKER, lambda who: app.append_output(c.AppendOutput(t, 1, "0", "page-0", 2, last=True), who))
    do(WORKER, lambda who: app.close_output(c.CloseOutput(t, "0"), who))
    do(HUGE, lambda who: app.pause_task(c.PauseTask(t, "maintenance"), who))
    do(HUGE, lambda who: app.resume_task(c.ResumeTask(t), who))
    do(WORKER, lambda who: app.start_task(c.StartTask(t, "w7"), who))
    do(WORKER, lambda who: app.fail_task(c.FailTask(t, 2, "oom"), who))
    do(WORKER, lambda who: app.start_task(c.StartTask(t, "w7"), who))
    do(HUGE, lambda who: app.cancel_task(c.CancelTask(t, "not needed"), who))
    do(WORKER, lambda who: app.cancel_task(c.CancelTask(t, "confirmed"), who))
    do(KYLIN, lambda who: app.drop_task(c.DropTask(t), who))
    return t, asked


def test_every_event_records_the_actor_request_facade_and_the_clocks_time() -> None:
    clock = Clock()
    app = new_ledger(clock)
    task_id, asked = _every_event_type(app, clock)

    events = events_of(app, task_id)

    assert [type(e).__qualname__ for e in events] == [
        "Task.Created", "Task.Updated", "Task.Started", "Task.HeartbeatRecorded",
        "Task.ProgressReported", "Task.StepUpdated", "Task.OutputAppended", "Task.OutputClosed",
        "Task.Paused", "Task.Resumed", "Task.Started", "Task.Failed", "Task.Started",
        "Task.CancelRequested", "Task.Cancelled", "Task.Dropped"]
    assert [(e.actor, e.request_id, e.facade, e.timestamp) for e in events] == [
        (who.actor, who.request_id, who.facade, at) for who, at in asked]


def test_completed_and_aborted_events_record_their_caller_too() -> None:
    clock = Clock()
    app = new_ledger(clock)
    done = app.create_task(c.CreateTask("ns", "a"), ALICE).task_id
    gone = app.create_task(c.CreateTask("ns", "b"), ALICE).task_id
    app.start_task(c.StartTask(done, "w"), WORKER)
    app.complete_task(c.CompleteTask(done, 1, "ok"), WORKER)
    completed_at = clock.last
    app.abort_task(c.AbortTask(gone, "stuck"), HUGE)
    aborted_at = clock.last

    completed, aborted = events_of(app, done)[-1], events_of(app, gone)[-1]

    assert (type(completed), completed.actor, completed.request_id, completed.facade, completed.timestamp) == (
        Task.Completed, "worker-7", "req-3", "openlookeng", completed_at)
    assert (type(aborted), aborted.actor, aborted.request_id, aborted.facade, aborted.timestamp) == (
        Task.Aborted, "hg-operator", "req-4", "hugegraph", aborted_at)


def test_the_task_records_when_it_was_created_updated_started_and_ended_from_its_events() -> None:
    clock = Clock()
    app = new_ledger(clock)
    t = app.create_task(c.CreateTask("ns", "a"), ALICE).task_id
    created = clock.last
    app.start_task(c.StartTask(t, "w"), WORKER)
    started = clock.last
    app.complete_task(c.CompleteTask(t, 1), WORKER)
    ended = clock.last

    state = state_of(app, t)

    assert (state.created_at, state.started_at, state.ended_at, state.updated_at) == (
        created.isoformat(), started.isoformat(), ended.isoformat(), ended.isoformat())


def test_each_stored_event_carries_the_hash_of_its_predecessor() -> None:
    clock = Clock()
    app = new_ledger(clock)
    task_id, _ = _every_event_type(app, clock)

    events = events_of(app, task_id)

    assert events[0].prev_hash == ""
    for previous, event in zip(events, events[1:]):
        assert event.prev_hash == event_hash(previous)
    assert state_of(app, task_id).chain_hash == event_hash(events[-1])


def test_hashes_differ_between_two_tasks_created_with_identical_fields() -> None:
    app = new_ledger()
    first = app.create_task(c.CreateTask("ns", "same"), ALICE).task_id
    second = app.create_task(c.CreateTask("ns", "same"), ALICE).task_id

    assert event_hash(events_of(app, first)[0]) != event_hash(events_of(app, second)[0])


def _changed(value: Any) -> Any:
    if isinstance(value, bool):
        return not value
    if isinstance(value, (int, float)):
        return value + 1
    if isinstance(value, str):
        return value + "~"
    if value is None:
        return "set"
    if isinstance(value, datetime):
        return value + timedelta(microseconds=1)
    if isinstance(value, UUID):
        return uuid4()
    if isinstance(value, list):
        return [*value, "extra"]
    raise AssertionError(f"no way to change {value!r}")


def _stored_events() -> list[Any]:
    clock = Clock()
    app = new_ledger(clock)
    task_id, _ = _every_event_type(app, clock)
    return events_of(app, task_id)


STORED = _stored_events()
EVENT_FIELDS = list(dict.fromkeys((type(e).__qualname__, name) for e in STORED for name in vars(e)))


@pytest.mark.parametrize(("event_type", "field"), EVENT_FIELDS, ids=[f"{t}.{f}" for t, f in EVENT_FIELDS])
def test_changing_any_field_of_a_stored_event_changes_its_hash(event_type: str, field: str) -> None:
    event = next(e for e in STORED if type(e).__qualname__ == event_type)

    tampered = copy.copy(event)
    object.__setattr__(tampered, field, _changed(getattr(event, field)))

    assert event_hash(tampered) != event_hash(event)


def test_the_hash_covers_the_event_class() -> None:
    meta = Meta("alice", "req", "native", datetime.fromisoformat("2024-03-01T12:00:00+00:00"))
    task = Task.create(meta, uuid4(), namespace="ns", external_id=None, name="n", type="t",
                       input_json="null", submitter="alice", labels_json="{}", steps=[], max_retries=0,
                       heartbeat_timeout=60.0, schedule_json="null", idempotency=None)
    task.pause(meta, reason=None)
    task.cancel(meta, reason=None)
    paused, cancelled = (e for e in task.collect_events()[1:] if isinstance(e, Task.Event))

    assert {k: v for k, v in vars(paused).items() if k not in ("originator_version", "prev_hash")} == {
        k: v for k, v in vars(cancelled).items() if k not in ("originator_version", "prev_hash")}
    same_fields = copy.copy(cancelled)
    object.__setattr__(same_fields, "originator_version", paused.originator_version)
    object.__setattr__(same_fields, "prev_hash", paused.prev_hash)
    assert event_hash(same_fields) != event_hash(paused)
