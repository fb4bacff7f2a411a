"""History: a task as of a version or an instant, its timeline, the global feed, and replay."""

from __future__ import annotations

import random
from datetime import timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest

from ledger import commands as c
from ledger import state as st
from ledger.domain import event_hash, next_state
from ledger.errors import LedgerError, TaskNotFoundError
from ledger.history import describe_event
from ledger.state import TaskState
from tests.ledger.support import OPERATOR, WORKER, Clock, create, events_of, new_ledger, state_of


def _story(app: Any) -> UUID:
    t = create(app, max_retries=1)
    app.start_task(c.StartTask(t, "w1"), WORKER)                                  # v2
    app.report_progress(c.ReportProgress(t, 1, 30.0), WORKER)                     # v3
    app.pause_task(c.PauseTask(t, "maintenance"), OPERATOR)                       # v4
    app.resume_task(c.ResumeTask(t), OPERATOR)                                    # v5
    app.start_task(c.StartTask(t, "w2"), WORKER)                                  # v6
    app.complete_task(c.CompleteTask(t, 2, {"rows": 9}), WORKER)                  # v7
    app.drop_task(c.DropTask(t), OPERATOR)                                        # v8
    return t


def test_as_of_a_version_shows_the_task_exactly_as_it_was_then() -> None:
    app = new_ledger()
    t = _story(app)

    seen = [(s.version, s.state, s.progress, s.worker, s.dropped)
            for s in (app.task_as_of(t, version=v) for v in range(1, 9))]

    assert seen == [
        (1, st.QUEUED, 0.0, None, False), (2, st.RUNNING, 0.0, "w1", False),
        (3, st.RUNNING, 30.0, "w1", False), (4, st.PAUSED, 30.0, None, False),
        (5, st.QUEUED, 30.0, None, False), (6, st.RUNNING, 30.0, "w2", False),
        (7, st.SUCCEEDED, 100.0, None, False), (8, st.SUCCEEDED, 100.0, None, True)]


def test_as_of_an_instant_shows_the_task_after_every_event_up_to_that_instant() -> None:
    clock = Clock()
    app = new_ledger(clock)
    t = _story(app)
    times = [e.timestamp for e in events_of(app, t)]

    for version, at in enumerate(times, start=1):
        assert app.task_as_of(t, at=at).version == version
        assert app.task_as_of(t, at=at + timedelta(milliseconds=500)).version == version
    assert app.task_as_of(t, at=times[-1] + timedelta(days=365)).version == 8


def test_as_of_an_instant_before_the_task_existed_is_task_not_found() -> None:
    clock = Clock()
    app = new_ledger(clock)
    t = _story(app)
    created = events_of(app, t)[0].timestamp

    with pytest.raises(TaskNotFoundError):
        app.task_as_of(t, at=created - timedelta(microseconds=1))


def test_as_of_an_unknown_task_is_task_not_found() -> None:
    app = new_ledger()

    with pytest.raises(TaskNotFoundError):
        app.task_as_of(uuid4(), version=1)
    with pytest.raises(TaskNotFoundError):
        app.task_as_of(uuid4(), at=Clock()())


def test_the_timeline_lists_every_event_with_who_when_and_its_decoded_data() -> None:
    clock = Clock()
    app = new_ledger(clock)
    t = app.create_task(c.CreateTask("ns", "export", input={"q": [1]}, labels={"a": "b"}), OPERATOR).task_id
    app.update_task(c.UpdateTask(t, {"labels": {"a": "c"}}), OPERATOR)
    app.start_task(c.StartTask(t, "w1"), WORKER)
    app.record_heartbeat(c.RecordHeartbeat(t, 1, 12.5, "busy", {"rows": 10}), WORKER)
    app.complete_task(c.CompleteTask(t, 1, {"rows": 10, "files": ["a.csv"]}), WORKER)

    timeline = app.task_events(t)

    assert [(e["version"], e["type"], e["actor"], e["request_id"], e["facade"]) for e in timeline] == [
        (1, "Created", "olga", "req-op", "native"), (2, "Updated", "olga", "req-op", "native"),
        (3, "Started", "worker-1", "req-w", "native"), (4, "HeartbeatRecorded", "worker-1", "req-w", "native"),
        (5, "Completed", "worker-1", "req-w", "native")]
    assert [e["time"] for e in timeline] == [at.isoformat() for at in clock.issued]
    assert {e["task_id"] for e in timeline} == {str(t)}
    created = timeline[0]["data"]
    assert (created["input"], created["labels"], created["schedule"], created["name"]) == (
        {"q": [1]}, {"a": "b"}, None, "export")
    assert not any(key.endswith("_json") for e in timeline for key in e["data"])
    assert timeline[1]["data"] == {"changes": {"labels": {"a": "c"}}}
    assert timeline[2]["data"] == {"worker": "w1", "lease_epoch": 1}
    assert timeline[3]["data"] == {"lease_epoch": 1, "progress": 12.5, "message": "busy", "stats": {"rows": 10}}
    assert timeline[4]["data"] == {"lease_epoch": 1, "result": {"rows": 10, "files": ["a.csv"]}}
    stored = events_of(app, t)
    assert [(e["hash"], e["prev_hash"]) for e in timeline] == [(event_hash(e), e.prev_hash) for e in stored]
    assert all("position" not in e for e in timeline)


def test_the_timeline_pages_by_version() -> None:
    app = new_ledger()
    t = _story(app)

    assert [e["version"] for e in app.task_events(t, after_version=3, limit=2)] == [4, 5]
    assert [e["version"] for e in app.task_events(t, after_version=6)] == [7, 8]
    assert app.task_events(t, after_version=8) == []


def test_the_timeline_of_an_unknown_task_is_task_not_found() -> None:
    app = new_ledger()

    with pytest.raises(TaskNotFoundError):
        app.task_events(uuid4())


def test_the_global_feed_lists_events_of_all_tasks_in_write_order_with_their_positions() -> None:
    app = new_ledger()
    a = create(app)
    b = create(app)
    writes = [
        app.start_task(c.StartTask(b, "w"), WORKER),
        app.pause_task(c.PauseTask(a), OPERATOR),
        app.complete_task(c.CompleteTask(b, 1), WORKER),
    ]

    feed = app.events_after(0, limit=100)

    assert [(e["position"], e["task_id"], e["version"], e["type"]) for e in feed] == [
        (1, str(a), 1, "Created"), (2, str(b), 1, "Created"), (3, str(b), 2, "Started"),
        (4, str(a), 2, "Paused"), (5, str(b), 3, "Completed")]
    assert [w.position for w in writes] == [3, 4, 5]
    assert app.head_position() == 5
    assert feed[3] == {**describe_event(events_of(app, a)[1]), "position": 4}


def test_the_global_feed_starts_after_the_given_position_and_honours_the_limit() -> None:
    app = new_ledger()
    for _ in range(5):
        create(app)

    assert [e["position"] for e in app.events_after(2, limit=2)] == [3, 4]
    assert [e["position"] for e in app.events_after(4, limit=10)] == [5]
    assert app.events_after(5, limit=10) == []


def test_a_write_that_records_no_event_answers_the_position_of_the_version_it_answers() -> None:
    app = new_ledger()
    t = create(app)
    app.start_task(c.StartTask(t, "w"), WORKER)
    app.pause_task(c.PauseTask(t), OPERATOR)
    create(app)

    written = app.record_heartbeat(c.RecordHeartbeat(t, 1), WORKER)

    # Version 3 (the pause) is at position 3; position 4 is another task's: not what this answers.
    assert (written.directive, written.version, written.position) == (st.PAUSE, 3, 3)


def test_stream_yields_every_position_and_event_after_a_position() -> None:
    app = new_ledger()
    a = create(app)
    create(app)
    app.pause_task(c.PauseTask(a), OPERATOR)

    streamed = list(app.stream(after=1, batch=1))

    assert [(p, type(e).__qualname__) for p, e in streamed] == [(2, "Task.Created"), (3, "Task.Paused")]


# --- next_state equals replay ----------------------------------------------------------------------

ACTION_WEIGHTS = {"start": 6, "heartbeat": 5, "progress": 5, "step": 5, "output": 4, "close": 1,
                  "complete": 2, "fail": 3, "pause": 2, "resume": 3, "cancel": 1, "abort": 1,
                  "update": 2, "drop": 2}


def _act(app: Any, rng: random.Random, name: str, t: UUID, epoch: int) -> c.Written:
    maybe = rng.choice
    commands: dict[str, Any] = {
        "start": lambda: app.start_task(c.StartTask(t, maybe(["w1", "w2"])), WORKER),
        "heartbeat": lambda: app.record_heartbeat(c.RecordHeartbeat(
            t, epoch, maybe([None, rng.uniform(0, 100)]), maybe([None, "msg"]),
            maybe([None, {"n": rng.randint(0, 9)}])), WORKER),
        "progress": lambda: app.report_progress(c.ReportProgress(t, epoch, rng.uniform(0, 100)), WORKER),
        "step": lambda: app.update_step(c.UpdateStep(
            t, epoch, rng.randrange(2), maybe([None, "RUNNING", "FAILED"]), maybe([None, "out"]),
            rng.random() < 0.5), WORKER),
        "output": lambda: app.append_output(c.AppendOutput(
            t, epoch, maybe("01"), "x" * rng.randint(0, 5), rng.randint(0, 3), rng.random() < 0.2), WORKER),
        "close": lambda: app.close_output(c.CloseOutput(t, maybe("01")), WORKER),
        "complete": lambda: app.complete_task(c.CompleteTask(t, epoch, {"r": rng.random()}), WORKER),
        "fail": lambda: app.fail_task(c.FailTask(t, epoch, "err", rng.random() < 0.8), WORKER),
        "pause": lambda: app.pause_task(c.PauseTask(t), OPERATOR),
        "resume": lambda: app.resume_task(c.ResumeTask(t), OPERATOR),
        "cancel": lambda: app.cancel_task(c.CancelTask(t), OPERATOR),
        "abort": lambda: app.abort_task(c.AbortTask(t), OPERATOR),
        "update": lambda: app.update_task(c.UpdateTask(
            t, {"name": f"n{rng.randint(0, 9)}", "max_retries": rng.randint(0, 3)}), OPERATOR),
        "drop": lambda: app.drop_task(c.DropTask(t, force=rng.random() < 0.1), OPERATOR),
    }
    return commands[name]()  # type: ignore[no-any-return]


def _random_walk(app: Any, rng: random.Random, steps: int) -> tuple[list[UUID], int]:
    """Random actions on a pool of live tasks (a dropped task is replaced by a new one); refused
    actions are skipped. Returns every task touched and how many events were recorded."""
    pool = [create(app, max_retries=rng.randint(0, 3)) for _ in range(4)]
    touched = list(pool)
    epochs = dict.fromkeys(pool, 0)
    versions = dict.fromkeys(pool, 1)
    for _ in range(steps):
        t = rng.choice(pool)
        name = rng.choices(list(ACTION_WEIGHTS), weights=list(ACTION_WEIGHTS.values()))[0]
        try:
            written = _act(app, rng, name, t, epochs[t])
        except LedgerError:
            continue
        versions[t] = written.version
        epochs[t] = written.lease_epoch or epochs[t]
        if name == "drop":
            fresh = create(app, max_retries=rng.randint(0, 3))
            pool[pool.index(t)] = fresh
            touched.append(fresh)
            epochs[fresh], versions[fresh] = 0, 1
    return touched, sum(versions.values()) - len(versions)


def test_next_state_over_stored_events_equals_the_aggregate_replay_at_every_version() -> None:
    rng = random.Random(20240301)
    app = new_ledger()

    tasks, recorded = _random_walk(app, rng, steps=2000)

    assert recorded > 400
    assert sum(len(events_of(app, t)) for t in tasks) == app.head_position()
    kinds: set[str] = set()
    for t in tasks:
        state: TaskState | None = None
        for event in events_of(app, t):
            kinds.add(type(event).__qualname__)
            state = next_state(state, event)
            assert state == app.task_as_of(t, version=event.originator_version)
        assert state == state_of(app, t)
    assert len(kinds) >= 14


def test_next_state_refuses_an_event_that_does_not_follow_the_stored_version() -> None:
    app = new_ledger()
    t = _story(app)
    events = events_of(app, t)
    state = next_state(None, events[0])

    with pytest.raises(ValueError, match="does not follow stored version 1"):
        next_state(state, events[2])
    with pytest.raises(ValueError, match="does not follow stored version None"):
        next_state(None, events[1])
