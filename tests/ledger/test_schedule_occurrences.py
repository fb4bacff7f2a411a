"""Occurrences of a schedule: each ends as run, skipped or missed, once, and runs are what workers claim."""

from __future__ import annotations

from datetime import timedelta
from uuid import UUID

import pytest

from ledger import application
from ledger import commands as c
from ledger import state as st
from ledger.application import TaskLedger
from ledger.domain import Task
from ledger.errors import NoRunDueError, NoTaskAvailableError
from tests.scheduling.support import (
    OCCURRENCE_EVENTS,
    OPERATOR,
    WORKER,
    FakeClock,
    at,
    create_recurring,
    occurrences,
    run_work,
    scheduled_ledger,
    tick,
)


def test_an_occurrence_due_now_becomes_a_run_waiting_for_a_worker() -> None:
    app = scheduled_ledger(FakeClock())
    task = create_recurring(app)

    written = tick(app, task, at("12:00:02.300"))

    assert occurrences(app, task) == [("run", 1, "12:00:02", None)]
    state = app.task_as_of(task)
    assert (state.state, state.pending_runs, state.schedule_cursor, written.version) == (
        st.QUEUED, [{"run": 1, "time": "2024-03-01T12:00:02+00:00"}], "2024-03-01T12:00:02+00:00", 2)


def test_asking_again_for_the_same_instant_or_an_earlier_one_records_nothing() -> None:
    app = scheduled_ledger(FakeClock())
    task = create_recurring(app)
    tick(app, task, at("12:00:02.300"))

    again = tick(app, task, at("12:00:02.300"))
    earlier = tick(app, task, at("12:00:01"))

    assert (again.version, earlier.version) == (2, 2)
    assert len(occurrences(app, task)) == 1


def test_nothing_is_recorded_before_the_first_occurrence() -> None:
    app = scheduled_ledger(FakeClock())
    task = create_recurring(app)

    tick(app, task, at("12:00:01.900"))

    assert occurrences(app, task) == []


def test_an_occurrence_while_a_run_waits_or_runs_is_skipped_for_overlap() -> None:
    app = scheduled_ledger(FakeClock())
    task = create_recurring(app)
    tick(app, task, at("12:00:02.100"))
    tick(app, task, at("12:00:04.100"))
    app.start_task(c.StartTask(task, "w"), WORKER)

    tick(app, task, at("12:00:06.100"))

    assert occurrences(app, task) == [("run", 1, "12:00:02", None), ("skipped", 2, "12:00:04", "overlap"),
                                      ("skipped", 3, "12:00:06", "overlap")]
    assert app.task_as_of(task).current_run == {"run": 1, "time": "2024-03-01T12:00:02+00:00"}


def test_with_overlap_queue_later_occurrences_wait_behind_the_run_and_are_worked_in_order() -> None:
    app = scheduled_ledger(FakeClock())
    task = create_recurring(app, overlap="queue")
    for now in ("12:00:02.100", "12:00:04.100", "12:00:06.100"):
        tick(app, task, at(now))

    worked = []
    for _ in range(3):
        app.start_task(c.StartTask(task, "w"), WORKER)
        worked.append(app.task_as_of(task).current_run["run"])  # type: ignore[index]
        app.complete_task(c.CompleteTask(task, app.task_as_of(task).lease_epoch), WORKER)

    assert occurrences(app, task) == [("run", 1, "12:00:02", None), ("run", 2, "12:00:04", "overlap"),
                                      ("run", 3, "12:00:06", "overlap")]
    assert worked == [1, 2, 3]
    assert app.task_as_of(task).run_count == 3


def test_a_queue_that_is_full_skips_the_next_occurrence(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("ledger.recurrence.MAX_QUEUED_RUNS", 2)
    app = scheduled_ledger(FakeClock())
    task = create_recurring(app, overlap="queue")

    for now in ("12:00:02.100", "12:00:04.100", "12:00:06.100"):
        tick(app, task, at(now))

    assert [o[0] for o in occurrences(app, task)] == ["run", "run", "skipped"]
    assert occurrences(app, task)[2][3] == "queue-full"


def test_occurrences_passed_over_by_a_later_one_are_recorded_missed_in_one_event() -> None:
    app = scheduled_ledger(FakeClock())
    task = create_recurring(app)

    tick(app, task, at("12:00:20.500"), grace=timedelta(seconds=5))

    assert occurrences(app, task) == [*(("missed", n, f"12:00:{2 * n:02d}", None) for n in range(1, 10)),
                                      ("run", 10, "12:00:20", None)]
    kinds = [type(e) for e in app.events.get(task) if isinstance(e, OCCURRENCE_EVENTS)]
    assert kinds == [Task.OccurrencesMissed, Task.RunTriggered]


def test_the_latest_occurrence_found_later_than_the_grace_is_missed_too_with_catch_up_missed() -> None:
    app = scheduled_ledger(FakeClock())
    task = create_recurring(app, catch_up="missed")

    tick(app, task, at("12:00:11.500"), grace=timedelta(seconds=1))

    assert [o[0] for o in occurrences(app, task)] == ["missed"] * 5
    assert app.task_as_of(task).pending_runs == []


def test_with_catch_up_run_once_the_latest_missed_occurrence_runs_and_the_rest_are_missed() -> None:
    app = scheduled_ledger(FakeClock())
    task = create_recurring(app, catch_up="run_once")

    tick(app, task, at("12:00:11.500"), grace=timedelta(seconds=1))

    assert occurrences(app, task) == [("missed", 1, "12:00:02", None), ("missed", 2, "12:00:04", None),
                                      ("missed", 3, "12:00:06", None), ("missed", 4, "12:00:08", None),
                                      ("run", 5, "12:00:10", "catch-up")]


def test_with_run_once_a_gap_ending_with_an_occurrence_on_time_runs_that_one_and_misses_the_gap() -> None:
    app = scheduled_ledger(FakeClock())
    task = create_recurring(app, catch_up="run_once")

    tick(app, task, at("12:00:10.500"), grace=timedelta(seconds=1))

    assert occurrences(app, task) == [("missed", 1, "12:00:02", None), ("missed", 2, "12:00:04", None),
                                      ("missed", 3, "12:00:06", None), ("missed", 4, "12:00:08", None),
                                      ("run", 5, "12:00:10", None)]


def test_a_long_gap_is_recorded_over_several_writes_and_run_once_waits_for_the_last(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(application, "OCCURRENCES_PER_WRITE", 4)
    app = scheduled_ledger(FakeClock())
    task = create_recurring(app, catch_up="run_once")
    now = at("12:00:21")

    versions = [tick(app, task, now, grace=timedelta(seconds=0)).version for _ in range(4)]

    assert [o[0] for o in occurrences(app, task)] == ["missed"] * 9 + ["run"]
    assert [o[1] for o in occurrences(app, task)] == list(range(1, 11))
    assert versions == [2, 3, 5, 5]  # 4 missed, 4 missed, then 1 missed and the catch-up run, then nothing


def test_a_paused_schedule_records_nothing_and_resume_rearms_it_from_the_resume() -> None:
    clock = FakeClock()
    app = scheduled_ledger(clock)
    task = create_recurring(app)
    tick(app, task, at("12:00:02.100"))
    run_work(app, task)
    clock.set(at("12:00:03"))
    app.pause_task(c.PauseTask(task, "maintenance"), OPERATOR)

    for second in range(4, 30, 2):
        tick(app, task, at(f"12:00:{second:02d}.100"))
    clock.set(at("12:00:30.500"))
    app.resume_task(c.ResumeTask(task), OPERATOR)
    tick(app, task, at("12:00:32.100"))

    assert occurrences(app, task) == [("run", 1, "12:00:02", None), ("run", 2, "12:00:32", None)]
    assert app.task_as_of(task).state == st.QUEUED


def test_a_recurring_task_can_be_started_only_while_a_triggered_run_waits() -> None:
    app = scheduled_ledger(FakeClock())
    task = create_recurring(app)

    with pytest.raises(NoRunDueError) as refused:
        app.start_task(c.StartTask(task, "w"), WORKER)
    with pytest.raises(NoTaskAvailableError):
        app.claim_task(c.ClaimTask("w", (task,)), WORKER)
    tick(app, task, at("12:00:02.100"))
    claimed = app.claim_task(c.ClaimTask("w", (task,)), WORKER)

    assert "no run of its schedule is waiting" in str(refused.value)
    assert (claimed.task_id, claimed.lease_epoch) == (task, 1)


def test_completing_a_run_requeues_the_task_and_counts_the_run_with_its_time() -> None:
    app = scheduled_ledger(FakeClock())
    task = create_recurring(app)
    tick(app, task, at("12:00:02.100"))
    epoch = app.start_task(c.StartTask(task, "w"), WORKER).lease_epoch or 0
    app.record_heartbeat(c.RecordHeartbeat(task, epoch, progress=50.0), WORKER)

    app.complete_task(c.CompleteTask(task, epoch, {"files": 3}), WORKER)

    state = app.task_as_of(task)
    assert (state.state, state.run_count, state.last_run_time, state.result) == (
        st.QUEUED, 1, "2024-03-01T12:00:02+00:00", {"files": 3})
    assert (state.current_run, state.pending_runs, state.worker, state.ended_at) == (None, [], None, None)


def test_a_failed_run_is_retried_while_retries_are_left_then_fails_and_the_task_waits_for_the_next() -> None:
    app = scheduled_ledger(FakeClock())
    task = create_recurring(app, max_retries=1)
    tick(app, task, at("12:00:02.100"))

    def fail(app_: TaskLedger, task_id: UUID, epoch: int) -> None:
        app_.fail_task(c.FailTask(task_id, epoch, "disk full"), WORKER)

    run_work(app, task, finish=fail)
    retried = app.task_as_of(task)
    run_work(app, task, finish=fail)
    failed = app.task_as_of(task)

    assert (retried.state, retried.retries, retried.pending_runs[0]["run"]) == (st.QUEUED, 1, 1)
    assert (failed.state, failed.retries, failed.run_count, failed.error) == (st.QUEUED, 0, 1, "disk full")
    assert (failed.pending_runs, failed.last_run_time) == ([], "2024-03-01T12:00:02+00:00")
    tick(app, task, at("12:00:04.100"))
    assert app.task_as_of(task).pending_runs[0]["run"] == 2


def test_pausing_a_running_recurring_task_puts_its_run_back_in_line_for_after_the_resume() -> None:
    app = scheduled_ledger(FakeClock())
    task = create_recurring(app)
    tick(app, task, at("12:00:02.100"))
    app.start_task(c.StartTask(task, "w"), WORKER)

    app.pause_task(c.PauseTask(task), OPERATOR)
    paused = app.task_as_of(task)
    app.resume_task(c.ResumeTask(task), OPERATOR)
    run_work(app, task)

    assert (paused.state, paused.current_run, paused.pending_runs[0]["run"], paused.retries) == (
        st.PAUSED, None, 1, 0)
    assert app.task_as_of(task).run_count == 1


def test_cancelling_a_recurring_task_ends_it_with_no_run_waiting() -> None:
    app = scheduled_ledger(FakeClock())
    task = create_recurring(app)
    tick(app, task, at("12:00:02.100"))

    app.cancel_task(c.CancelTask(task, "not needed"), OPERATOR)
    tick(app, task, at("12:00:04.100"))

    state = app.task_as_of(task)
    assert (state.state, state.pending_runs, state.occurrence_count) == (st.CANCELLED, [], 1)


def test_a_cancelled_run_of_a_recurring_task_ends_the_task_when_the_worker_confirms() -> None:
    app = scheduled_ledger(FakeClock())
    task = create_recurring(app)
    tick(app, task, at("12:00:02.100"))
    app.start_task(c.StartTask(task, "w"), WORKER)
    app.cancel_task(c.CancelTask(task), OPERATOR)

    tick(app, task, at("12:00:04.100"))
    app.cancel_task(c.CancelTask(task), WORKER)

    state = app.task_as_of(task)
    assert (state.state, state.current_run, state.occurrence_count) == (st.CANCELLED, None, 1)
