"""Output buffers (openLooKeng result pages) and step updates recorded by the lease holder."""

from __future__ import annotations

import pytest

from ledger import commands as c
from ledger import state as st
from ledger.application import TaskLedger
from ledger.domain import Task
from ledger.errors import IllegalTransitionError
from tests.ledger.support import WORKER, Driven, drive, events_of, new_ledger, state_of


def _append(app: TaskLedger, task: Driven, buffer: str, data: str, positions: int = 1,
            last: bool = False) -> c.Written:
    return app.append_output(c.AppendOutput(task.task_id, task.lease_epoch, buffer, data, positions, last), WORKER)


def test_pages_of_each_buffer_are_numbered_from_zero_independently() -> None:
    app = new_ledger()
    task = drive(app, st.RUNNING)

    sequences = [_append(app, task, b, d).sequence
                 for b, d in [("0", "a"), ("0", "bb"), ("1", "c"), ("0", "ddd"), ("1", "e")]]

    assert sequences == [0, 1, 0, 2, 1]
    appended = [(e.buffer, e.sequence, e.data) for e in events_of(app, task.task_id)
                if isinstance(e, Task.OutputAppended)]
    assert appended == [("0", 0, "a"), ("0", 1, "bb"), ("1", 0, "c"), ("0", 2, "ddd"), ("1", 1, "e")]


def test_a_buffer_counts_its_pages_bytes_and_positions() -> None:
    app = new_ledger()
    task = drive(app, st.RUNNING)
    _append(app, task, "0", "abc", positions=10)
    _append(app, task, "0", "de", positions=5, last=True)

    assert state_of(app, task.task_id).buffers == {
        "0": {"pages": 2, "bytes": 5, "positions": 15, "finished": True, "closed": False}}


def test_appending_after_the_last_page_is_refused_without_an_event() -> None:
    app = new_ledger()
    task = drive(app, st.RUNNING)
    _append(app, task, "0", "only", last=True)
    events = events_of(app, task.task_id)

    with pytest.raises(IllegalTransitionError) as refused:
        _append(app, task, "0", "more")

    assert "buffer '0'" in str(refused.value)
    assert events_of(app, task.task_id) == events
    assert _append(app, task, "1", "other buffer").sequence == 0


def test_appending_to_a_closed_buffer_is_refused() -> None:
    app = new_ledger()
    task = drive(app, st.RUNNING)
    _append(app, task, "0", "p0")
    app.close_output(c.CloseOutput(task.task_id, "0"), WORKER)
    version = state_of(app, task.task_id).version

    with pytest.raises(IllegalTransitionError):
        _append(app, task, "0", "p1")

    assert state_of(app, task.task_id).version == version
    assert state_of(app, task.task_id).buffers["0"]["closed"] is True


def test_closing_a_buffer_that_never_had_pages_marks_it_finished_and_closed() -> None:
    app = new_ledger()
    task = drive(app, st.RUNNING)

    app.close_output(c.CloseOutput(task.task_id, "7"), WORKER)

    assert state_of(app, task.task_id).buffers["7"] == {
        "pages": 0, "bytes": 0, "positions": 0, "finished": True, "closed": True}


def test_step_output_is_appended_or_replaced_and_status_kept_when_not_given() -> None:
    app = new_ledger()
    task = drive(app, st.RUNNING, steps=("extract", "load"))

    def step(status: str | None, output: str | None, append: bool) -> None:
        app.update_step(c.UpdateStep(task.task_id, task.lease_epoch, 1, status, output, append), WORKER)

    step("RUNNING", "line 1\n", True)
    step(None, "line 2\n", True)
    assert state_of(app, task.task_id).steps[1] == {"name": "load", "status": "RUNNING", "output": "line 1\nline 2\n"}

    step("SUCCEEDED", "summary", False)
    step(None, None, True)
    assert state_of(app, task.task_id).steps == [
        {"name": "extract", "status": "PENDING", "output": ""},
        {"name": "load", "status": "SUCCEEDED", "output": "summary"}]
