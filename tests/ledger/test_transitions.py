"""Every cell of the transition table (DESIGN §3.2): each state × each action, allowed or refused."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from ledger import commands as c
from ledger import state as st
from ledger.domain import Task
from ledger.errors import IllegalTransitionError, LeaseMismatchError, TaskDroppedError
from ledger.state import TaskState
from tests.ledger.support import (
    ACTION_NAMES,
    ACTIONS,
    MAX_RETRIES,
    OPERATOR,
    WORKER,
    WORKER_ACTIONS,
    Driven,
    drive,
    events_of,
    new_ledger,
    state_of,
)


@dataclass(frozen=True)
class Moves:
    """The action records one event of this class and leaves the task in this state."""

    to: str
    event: type[Any]
    directive: str | None = None


@dataclass(frozen=True)
class Answers:
    """A heartbeat after the lease ended: a directive for the worker and no event."""

    directive: str


@dataclass(frozen=True)
class Refused:
    """IllegalTransitionError naming the task, its state and the action; no event."""


NO = Refused()
Q, R, P, CG = st.QUEUED, st.RUNNING, st.PAUSED, st.CANCELLING
OK, F, CD, AB = st.SUCCEEDED, st.FAILED, st.CANCELLED, st.ABORTED

TABLE: dict[str, dict[str, Moves | Answers | Refused]] = {
    Q: {
        "start": Moves(R, Task.Started), "heartbeat": Answers(st.STOP),
        "progress": NO, "step": NO, "output": NO, "complete": NO,
        "fail-retries-left": NO, "fail-no-retries-left": NO,
        "pause": Moves(P, Task.Paused), "resume": NO, "cancel": Moves(CD, Task.Cancelled),
        "abort": Moves(AB, Task.Aborted), "drop": NO, "drop-force": Moves(Q, Task.Dropped),
        "update": Moves(Q, Task.Updated),
    },
    R: {
        "start": NO, "heartbeat": Moves(R, Task.HeartbeatRecorded, st.CONTINUE),
        "progress": Moves(R, Task.ProgressReported), "step": Moves(R, Task.StepUpdated),
        "output": Moves(R, Task.OutputAppended), "complete": Moves(OK, Task.Completed),
        "fail-retries-left": Moves(Q, Task.Failed), "fail-no-retries-left": Moves(F, Task.Failed),
        "pause": Moves(P, Task.Paused), "resume": NO, "cancel": Moves(CG, Task.CancelRequested),
        "abort": Moves(AB, Task.Aborted), "drop": NO, "drop-force": Moves(R, Task.Dropped),
        "update": Moves(R, Task.Updated),
    },
    P: {
        "start": NO, "heartbeat": Answers(st.PAUSE),
        "progress": NO, "step": NO, "output": NO, "complete": NO,
        "fail-retries-left": NO, "fail-no-retries-left": NO,
        "pause": NO, "resume": Moves(Q, Task.Resumed), "cancel": Moves(CD, Task.Cancelled),
        "abort": Moves(AB, Task.Aborted), "drop": NO, "drop-force": Moves(P, Task.Dropped),
        "update": Moves(P, Task.Updated),
    },
    CG: {
        "start": NO, "heartbeat": Moves(CG, Task.HeartbeatRecorded, st.CANCEL),
        "progress": NO, "step": NO, "output": NO, "complete": NO,
        # The worker confirms the cancel by failing under its lease.
        "fail-retries-left": Moves(CD, Task.Cancelled), "fail-no-retries-left": Moves(CD, Task.Cancelled),
        "pause": NO, "resume": NO, "cancel": Moves(CD, Task.Cancelled),
        "abort": Moves(AB, Task.Aborted), "drop": NO, "drop-force": Moves(CG, Task.Dropped),
        "update": Moves(CG, Task.Updated),
    },
    OK: {
        "start": NO, "heartbeat": Answers(st.STOP),
        "progress": NO, "step": NO, "output": NO, "complete": NO,
        "fail-retries-left": NO, "fail-no-retries-left": NO,
        "pause": NO, "resume": NO, "cancel": NO, "abort": NO,
        "drop": Moves(OK, Task.Dropped), "drop-force": Moves(OK, Task.Dropped), "update": NO,
    },
    F: {
        "start": NO, "heartbeat": Answers(st.STOP),
        "progress": NO, "step": NO, "output": NO, "complete": NO,
        "fail-retries-left": NO, "fail-no-retries-left": NO,
        "pause": NO, "resume": Moves(Q, Task.Resumed), "cancel": NO, "abort": NO,
        "drop": Moves(F, Task.Dropped), "drop-force": Moves(F, Task.Dropped),
        "update": Moves(F, Task.Updated),
    },
    CD: {
        "start": NO, "heartbeat": Answers(st.CANCEL),
        "progress": NO, "step": NO, "output": NO, "complete": NO,
        "fail-retries-left": NO, "fail-no-retries-left": NO,
        "pause": NO, "resume": NO, "cancel": NO, "abort": NO,
        "drop": Moves(CD, Task.Dropped), "drop-force": Moves(CD, Task.Dropped), "update": NO,
    },
    AB: {
        "start": NO, "heartbeat": Answers(st.STOP),
        "progress": NO, "step": NO, "output": NO, "complete": NO,
        "fail-retries-left": NO, "fail-no-retries-left": NO,
        "pause": NO, "resume": NO, "cancel": NO, "abort": NO,
        "drop": Moves(AB, Task.Dropped), "drop-force": Moves(AB, Task.Dropped), "update": NO,
    },
}

CELLS = [(state, action) for state in st.STATES for action in ACTIONS]


def _no_checks(before: TaskState, after: TaskState, written: c.Written) -> None:
    """Actions whose whole effect is the state and event class the table names."""


def _started(before: TaskState, after: TaskState, written: c.Written) -> None:
    assert after.lease_epoch == before.lease_epoch + 1 == written.lease_epoch
    assert after.worker == "worker-2"


def _heartbeat(before: TaskState, after: TaskState, written: c.Written) -> None:
    assert after.progress == 40.0
    assert after.last_heartbeat == after.updated_at


def _progress(before: TaskState, after: TaskState, written: c.Written) -> None:
    assert (after.progress, after.message) == (42.5, "halfway")


def _step(before: TaskState, after: TaskState, written: c.Written) -> None:
    assert after.steps[0] == {"name": "extract", "status": "RUNNING", "output": "reading"}


def _output(before: TaskState, after: TaskState, written: c.Written) -> None:
    assert written.sequence == 0
    assert after.buffers["0"] == {"pages": 1, "bytes": 4, "positions": 3, "finished": False, "closed": False}


def _completed(before: TaskState, after: TaskState, written: c.Written) -> None:
    assert (after.result, after.progress, after.worker) == ({"rows": 7}, 100.0, None)
    assert after.ended_at == after.updated_at


def _requeued(before: TaskState, after: TaskState, written: c.Written) -> None:
    assert (after.retries, after.error, after.worker, after.ended_at) == (before.retries + 1, "timeout", None, None)


def _failed(before: TaskState, after: TaskState, written: c.Written) -> None:
    assert (after.retries, after.error, after.worker) == (before.retries, "timeout", None)
    assert after.ended_at == after.updated_at


def _worker_released(before: TaskState, after: TaskState, written: c.Written) -> None:
    assert after.worker is None


def _ended(before: TaskState, after: TaskState, written: c.Written) -> None:
    assert after.worker is None
    assert after.ended_at == after.updated_at


def _resumed(before: TaskState, after: TaskState, written: c.Written) -> None:
    assert (after.retries, after.worker, after.ended_at) == (before.retries, None, None)


def _dropped(before: TaskState, after: TaskState, written: c.Written) -> None:
    assert after.dropped and not before.dropped


def _updated(before: TaskState, after: TaskState, written: c.Written) -> None:
    assert after.name == "renamed"


EFFECTS: dict[type[Any], Callable[[TaskState, TaskState, c.Written], None]] = {
    Task.Started: _started, Task.HeartbeatRecorded: _heartbeat, Task.ProgressReported: _progress,
    Task.StepUpdated: _step, Task.OutputAppended: _output, Task.Completed: _completed,
    Task.Paused: _worker_released, Task.Resumed: _resumed, Task.CancelRequested: _no_checks,
    Task.Cancelled: _ended, Task.Aborted: _ended, Task.Dropped: _dropped, Task.Updated: _updated,
}


def _effect_of(action: str, event: type[Any]) -> Callable[[TaskState, TaskState, c.Written], None]:
    if event is Task.Failed:
        return _requeued if action == "fail-retries-left" else _failed
    return EFFECTS[event]


def _fresh(state: str, action: str) -> tuple[Any, Driven]:
    app = new_ledger()
    return app, drive(app, state, max_retries=MAX_RETRIES.get(action, 0))


def test_the_table_has_a_cell_for_every_state_and_every_action() -> None:
    assert set(TABLE) == set(st.STATES)
    for row in TABLE.values():
        assert set(row) == set(ACTIONS)


@pytest.mark.parametrize(("state", "action"), CELLS, ids=[f"{s}-{a}" for s, a in CELLS])
def test_each_action_in_each_state_moves_the_task_or_is_refused_without_an_event(state: str, action: str) -> None:
    app, task = _fresh(state, action)
    before = state_of(app, task.task_id)
    events_before = events_of(app, task.task_id)
    head_before = app.head_position()
    expected = TABLE[state][action]

    if isinstance(expected, Refused):
        with pytest.raises(IllegalTransitionError) as refused:
            ACTIONS[action](app, task.task_id, task.lease_epoch)
        err = refused.value
        assert (err.task_id, err.state, err.action) == (task.task_id, state, ACTION_NAMES[action])
        assert str(err).startswith(f"task {task.task_id} is {state}: cannot {ACTION_NAMES[action]}")
        assert events_of(app, task.task_id) == events_before
        assert app.head_position() == head_before
        return

    written = ACTIONS[action](app, task.task_id, task.lease_epoch)
    after = state_of(app, task.task_id)
    events = events_of(app, task.task_id)
    if isinstance(expected, Answers):
        assert written.directive == expected.directive
        assert (written.version, written.position) == (task.version, head_before)
        assert events == events_before
        assert after == before
        return

    assert isinstance(events[-1], expected.event)
    assert len(events) == len(events_before) + 1
    assert (written.version, written.position) == (task.version + 1, head_before + 1)
    assert written.directive == expected.directive
    assert after.state == expected.to
    _effect_of(action, expected.event)(before, after, written)


def test_fail_without_retry_ends_the_task_failed_even_with_retries_left() -> None:
    app = new_ledger()
    task = drive(app, st.RUNNING, max_retries=3)

    app.fail_task(c.FailTask(task.task_id, task.lease_epoch, "bad input", retry=False), WORKER)

    after = state_of(app, task.task_id)
    assert (after.state, after.retries, after.error) == (st.FAILED, 0, "bad input")
    assert events_of(app, task.task_id)[-1].requeued is False


def test_fail_requeues_until_max_retries_then_fails() -> None:
    app = new_ledger()
    task = drive(app, st.RUNNING, max_retries=2)
    outcomes = []
    for _ in range(3):
        epoch = state_of(app, task.task_id).lease_epoch
        app.fail_task(c.FailTask(task.task_id, epoch, "flaky"), WORKER)
        outcomes.append((state_of(app, task.task_id).state, state_of(app, task.task_id).retries))
        if outcomes[-1][0] == st.QUEUED:
            app.start_task(c.StartTask(task.task_id, "worker-1"), WORKER)

    assert outcomes == [(st.QUEUED, 1), (st.QUEUED, 2), (st.FAILED, 2)]
    assert [e.requeued for e in events_of(app, task.task_id) if isinstance(e, Task.Failed)] == [True, True, False]


def test_resuming_a_failed_task_keeps_its_retry_counter() -> None:
    app = new_ledger()
    task = drive(app, st.RUNNING, max_retries=1)
    app.fail_task(c.FailTask(task.task_id, 1, "flaky"), WORKER)
    app.start_task(c.StartTask(task.task_id, "worker-1"), WORKER)
    app.fail_task(c.FailTask(task.task_id, 2, "flaky again"), WORKER)
    assert state_of(app, task.task_id).state == st.FAILED

    app.resume_task(c.ResumeTask(task.task_id), OPERATOR)

    after = state_of(app, task.task_id)
    assert (after.state, after.retries, after.ended_at) == (st.QUEUED, 1, None)
    assert app.start_task(c.StartTask(task.task_id, "worker-1"), WORKER).lease_epoch == 3
    app.fail_task(c.FailTask(task.task_id, 3, "still flaky"), WORKER)
    assert state_of(app, task.task_id).state == st.FAILED


@pytest.mark.parametrize("action", ["pause", "cancel"])
def test_a_task_paused_or_cancelled_before_it_ever_started_answers_its_heartbeat_directive(action: str) -> None:
    app = new_ledger()
    task = drive(app, st.QUEUED)
    ACTIONS[action](app, task.task_id, 0)

    written = app.record_heartbeat(c.RecordHeartbeat(task.task_id, 0), WORKER)

    assert written.directive == {"pause": st.PAUSE, "cancel": st.CANCEL}[action]
    assert written.version == task.version + 1


def test_cancelling_a_paused_task_cancels_it_at_once() -> None:
    app = new_ledger()
    task = drive(app, st.PAUSED)

    app.cancel_task(c.CancelTask(task.task_id, "obsolete"), OPERATOR)

    assert state_of(app, task.task_id).state == st.CANCELLED
    assert events_of(app, task.task_id)[-1].reason == "obsolete"


@pytest.mark.parametrize("state", st.STATES)
def test_a_heartbeat_with_a_stale_lease_epoch_is_refused_in_every_state(state: str) -> None:
    app = new_ledger()
    task = drive(app, state)

    for stale in (task.lease_epoch - 1, task.lease_epoch + 1):
        with pytest.raises(LeaseMismatchError) as refused:
            app.record_heartbeat(c.RecordHeartbeat(task.task_id, stale, progress=10.0), WORKER)
        assert (refused.value.task_id, refused.value.given, refused.value.current) == (
            task.task_id, stale, task.lease_epoch)

    assert state_of(app, task.task_id).version == task.version


@pytest.mark.parametrize("action", WORKER_ACTIONS)
def test_a_worker_writing_with_a_stale_lease_on_a_running_task_is_refused(action: str) -> None:
    app = new_ledger()
    task = drive(app, st.RUNNING, max_retries=MAX_RETRIES.get(action, 0))

    with pytest.raises(LeaseMismatchError) as refused:
        ACTIONS[action](app, task.task_id, task.lease_epoch + 1)

    assert str(refused.value) == (f"task {task.task_id}: lease_epoch {task.lease_epoch + 1} is not the "
                                  f"current lease {task.lease_epoch} (held by worker-1)")
    assert state_of(app, task.task_id).version == task.version


def test_a_worker_whose_lease_ended_cannot_write_after_the_task_is_restarted() -> None:
    app = new_ledger()
    task = drive(app, st.RUNNING, max_retries=1)
    app.fail_task(c.FailTask(task.task_id, 1, "lease expired"), OPERATOR)
    second = app.start_task(c.StartTask(task.task_id, "worker-2"), WORKER).lease_epoch

    with pytest.raises(LeaseMismatchError):
        app.complete_task(c.CompleteTask(task.task_id, 1, {"late": True}), WORKER)

    assert second == 2
    after = state_of(app, task.task_id)
    assert (after.state, after.worker, after.result) == (st.RUNNING, "worker-2", None)


DROPPABLE_BY_FORCE = list(st.STATES)
AFTER_DROP = [(s, a) for s in DROPPABLE_BY_FORCE for a in ACTIONS if a != "heartbeat"] + [
    (s, "close-output") for s in DROPPABLE_BY_FORCE]


@pytest.mark.parametrize(("state", "action"), AFTER_DROP, ids=[f"{s}-{a}" for s, a in AFTER_DROP])
def test_every_action_on_a_dropped_task_raises_task_dropped(state: str, action: str) -> None:
    app = new_ledger()
    task = drive(app, state, max_retries=MAX_RETRIES.get(action, 0))
    app.drop_task(c.DropTask(task.task_id, force=True), OPERATOR)
    version = state_of(app, task.task_id).version

    with pytest.raises(TaskDroppedError) as refused:
        if action == "close-output":
            app.close_output(c.CloseOutput(task.task_id, "0"), WORKER)
        else:
            ACTIONS[action](app, task.task_id, task.lease_epoch)

    assert refused.value.task_id == task.task_id
    assert state_of(app, task.task_id).version == version


@pytest.mark.parametrize("state", DROPPABLE_BY_FORCE)
def test_a_heartbeat_on_a_dropped_task_answers_stop_without_an_event(state: str) -> None:
    app = new_ledger()
    task = drive(app, state)
    app.drop_task(c.DropTask(task.task_id, force=True), OPERATOR)
    version = state_of(app, task.task_id).version

    written = app.record_heartbeat(c.RecordHeartbeat(task.task_id, task.lease_epoch, progress=50.0), WORKER)

    assert written.directive == st.STOP
    assert state_of(app, task.task_id).version == version
