"""Write answers: every write returns the version and the state it produced, so nobody reads the store to answer."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from ledger import commands as c
from ledger import state as st
from ledger.application import TaskLedger
from tests.ledger.support import OPERATOR, WORKER, Driven, drive, events_of, new_ledger

Write = Callable[[TaskLedger, Driven], c.Written]

# (the state a fresh task is driven into, the write asked of it)
WRITES: dict[str, tuple[str, Write]] = {
    "update": (st.QUEUED, lambda app, t: app.update_task(c.UpdateTask(t.task_id, {"name": "renamed"}), OPERATOR)),
    "update at a version": (st.RUNNING, lambda app, t: app.update_task(
        c.UpdateTask(t.task_id, {"labels": {"team": "ops"}}, expected_version=t.version), OPERATOR)),
    "start": (st.QUEUED, lambda app, t: app.start_task(c.StartTask(t.task_id, "worker-2"), WORKER)),
    "claim": (st.QUEUED, lambda app, t: app.claim_task(c.ClaimTask("worker-2", (t.task_id,)), WORKER)),
    "heartbeat": (st.RUNNING, lambda app, t: app.record_heartbeat(
        c.RecordHeartbeat(t.task_id, t.lease_epoch, 40.0, "reading", {"rows": 4}), WORKER)),
    "heartbeat while cancelling": (st.CANCELLING, lambda app, t: app.record_heartbeat(
        c.RecordHeartbeat(t.task_id, t.lease_epoch, 41.0), WORKER)),
    "progress": (st.RUNNING, lambda app, t: app.report_progress(
        c.ReportProgress(t.task_id, t.lease_epoch, 42.5, "halfway"), WORKER)),
    "step": (st.RUNNING, lambda app, t: app.update_step(
        c.UpdateStep(t.task_id, t.lease_epoch, 0, "SUCCEEDED", "done"), WORKER)),
    "output": (st.RUNNING, lambda app, t: app.append_output(
        c.AppendOutput(t.task_id, t.lease_epoch, "0", "page", positions=3), WORKER)),
    "pause": (st.RUNNING, lambda app, t: app.pause_task(c.PauseTask(t.task_id, "maintenance"), OPERATOR)),
    "resume": (st.PAUSED, lambda app, t: app.resume_task(c.ResumeTask(t.task_id), OPERATOR)),
    "cancel a running task": (st.RUNNING, lambda app, t: app.cancel_task(c.CancelTask(t.task_id), OPERATOR)),
    "cancel a queued task": (st.QUEUED, lambda app, t: app.cancel_task(c.CancelTask(t.task_id), OPERATOR)),
    "complete": (st.RUNNING, lambda app, t: app.complete_task(
        c.CompleteTask(t.task_id, t.lease_epoch, {"rows": 7}), WORKER)),
    "fail and retry": (st.RUNNING, lambda app, t: app.fail_task(
        c.FailTask(t.task_id, t.lease_epoch, "timeout"), WORKER)),
    "fail for good": (st.RUNNING, lambda app, t: app.fail_task(
        c.FailTask(t.task_id, t.lease_epoch, "disk full", retry=False), WORKER)),
    "abort": (st.RUNNING, lambda app, t: app.abort_task(c.AbortTask(t.task_id, "stuck"), OPERATOR)),
    "drop": (st.SUCCEEDED, lambda app, t: app.drop_task(c.DropTask(t.task_id), OPERATOR)),
}


@pytest.mark.parametrize("name", list(WRITES))
def test_a_write_answers_the_version_and_the_state_it_recorded(name: str) -> None:
    start, write = WRITES[name]
    app = new_ledger()
    task = drive(app, start, max_retries=1)

    written = write(app, task)

    assert written.version == task.version + 1 == events_of(app, task.task_id)[-1].originator_version
    assert written.state is not None and written.state.version == written.version
    assert written.state.to_dict() == app.task_as_of(task.task_id, version=written.version).to_dict()


def test_a_create_answers_the_version_and_the_state_it_recorded() -> None:
    app = new_ledger()

    written = app.create_task(c.CreateTask("ns", "export", input={"q": 1}, steps=("a",), labels={"team": "bi"}),
                              OPERATOR)

    assert written.version == 1
    assert written.state is not None and (written.state.name, written.state.state) == ("export", st.QUEUED)
    assert written.state.to_dict() == app.task_as_of(written.task_id, version=1).to_dict()


def test_a_heartbeat_that_records_nothing_answers_the_state_as_it_is() -> None:
    app = new_ledger()
    task = drive(app, st.PAUSED)

    written = app.record_heartbeat(c.RecordHeartbeat(task.task_id, task.lease_epoch), WORKER)

    assert (written.directive, written.version) == (st.PAUSE, task.version)
    assert written.state is not None
    assert written.state.to_dict() == app.task_as_of(task.task_id, version=task.version).to_dict()


def test_a_replayed_idempotent_create_answers_the_task_as_first_created() -> None:
    app = new_ledger()
    body = c.CreateTask("ns", "export", idempotency_key="key-1")
    first = app.create_task(body, OPERATOR)
    app.start_task(c.StartTask(first.task_id, "worker-1"), WORKER)
    app.record_heartbeat(c.RecordHeartbeat(first.task_id, 1, 50.0), WORKER)

    again = app.create_task(body, OPERATOR)

    assert (again.task_id, again.version, again.replayed) == (first.task_id, 1, True)
    assert again.state is not None and first.state is not None
    assert again.state.to_dict() == first.state.to_dict() == app.task_as_of(first.task_id, version=1).to_dict()
    assert (again.state.state, again.state.version) == (st.QUEUED, 1)


def test_an_answered_state_stays_as_written_when_later_writes_follow() -> None:
    app = new_ledger()
    task = drive(app, st.RUNNING)
    written = app.record_heartbeat(c.RecordHeartbeat(task.task_id, task.lease_epoch, 10.0, "first"), WORKER)
    assert written.state is not None
    kept = written.state.to_dict()

    app.record_heartbeat(c.RecordHeartbeat(task.task_id, task.lease_epoch, 90.0, "later", {"rows": 1}), WORKER)
    app.update_step(c.UpdateStep(task.task_id, task.lease_epoch, 0, "SUCCEEDED", "x"), WORKER)
    app.complete_task(c.CompleteTask(task.task_id, task.lease_epoch, {"rows": 1}), WORKER)

    assert written.state.to_dict() == kept == app.task_as_of(task.task_id, version=written.version).to_dict()


def test_each_item_of_a_heartbeat_batch_answers_the_version_it_recorded_and_no_state() -> None:
    """A batch receipt is version, position and directive only: nobody shows a batch's states, so none is copied."""
    app = new_ledger()
    tasks = [drive(app, st.RUNNING) for _ in range(3)]

    done = app.record_heartbeats([c.RecordHeartbeat(t.task_id, t.lease_epoch, 10.0 * n) for n, t in enumerate(tasks)],
                                 WORKER)

    for n, (task, written) in enumerate(zip(tasks, done)):
        assert isinstance(written, c.Written) and written.version == task.version + 1
        assert written.state is None and written.directive == "continue"
        assert app.task_as_of(task.task_id, version=written.version).progress == 10.0 * n


def test_a_heartbeat_that_writes_nothing_answers_the_position_of_the_version_it_answers() -> None:
    app = new_ledger()
    task = drive(app, st.RUNNING)
    paused = app.pause_task(c.PauseTask(task.task_id, "maintenance"), OPERATOR)
    app.create_task(c.CreateTask(namespace="other", name="later events"), OPERATOR)  # the log moves on

    answered = app.record_heartbeat(c.RecordHeartbeat(task.task_id, task.lease_epoch, 50.0), WORKER)
    batch = app.record_heartbeats([c.RecordHeartbeat(task.task_id, task.lease_epoch, 60.0)], WORKER)

    assert answered.directive == "pause" and answered.version == paused.version
    assert answered.position == paused.position < app.head_position()
    assert isinstance(batch[0], c.Written) and (batch[0].version, batch[0].position) == (paused.version,
                                                                                          paused.position)
