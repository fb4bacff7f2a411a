"""The scheduler on PostgreSQL: several at once record each occurrence once; gaps, pauses and history."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any
from uuid import UUID

import pytest

from ledger import commands as c
from ledger.application import TaskLedger
from projections.queries import PostgresTaskView
from taskledger.calendar import CronCalendar
from taskledger.scheduler import Scheduler
from tests.scheduling.support import (
    OCCURRENCE_EVENTS,
    OPERATOR,
    WORKER,
    FakeClock,
    at,
    create_recurring,
    occurrences,
    scheduled_ledger,
    tick,
)

Ledgers = Callable[[], TaskLedger]


def _scheduler(ledgers: Ledgers, queries: PostgresTaskView, clock: FakeClock, name: str = "scheduler",
               grace: float = 5.0) -> Scheduler:
    return Scheduler(ledgers(), queries, CronCalendar(clock), clock=clock, grace=timedelta(seconds=grace), name=name)


def _settle(app: TaskLedger, queries: PostgresTaskView) -> None:
    assert queries.wait_for(app.head_position(), 10)


def _work_the_run(app: TaskLedger, task: UUID, clock: FakeClock, seconds: float = 0.25) -> None:
    epoch = app.start_task(c.StartTask(task, "worker-1"), WORKER).lease_epoch or 0
    clock.advance(seconds)
    app.complete_task(c.CompleteTask(task, epoch, {"rows": 1}), WORKER)


def test_three_schedulers_racing_record_every_occurrence_exactly_once(
        ledgers: Ledgers, queries: PostgresTaskView, projections_running: object, clock: FakeClock,
        namespace: str, ended: list[UUID]) -> None:
    app = ledgers()
    task = create_recurring(app, namespace)
    ended.append(task)
    _settle(app, queries)
    schedulers = [_scheduler(ledgers, queries, clock, f"scheduler-{n}") for n in range(3)]
    start = threading.Barrier(3)

    def race(scheduler: Scheduler) -> None:
        start.wait()
        for _ in range(3):
            scheduler.run_once()

    occurrences_made = 12
    for n in range(occurrences_made):
        clock.set(at(f"12:00:{2 * (n + 1):02d}.300"))
        threads = [threading.Thread(target=race, args=(s,)) for s in schedulers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        _work_the_run(app, task, clock)

    recorded = [e for e in app.events.get(task) if isinstance(e, OCCURRENCE_EVENTS)]
    assert occurrences(app, task) == [("run", n, f"12:00:{2 * n:02d}", None) for n in range(1, occurrences_made + 1)]
    assert len(recorded) == occurrences_made
    assert {e.actor for e in recorded} <= {"scheduler-0", "scheduler-1", "scheduler-2"}
    _settle(app, queries)
    rows, total = queries.schedule_runs(task, sort="run", descending=False, limit=100)
    assert total == occurrences_made
    assert [(r["run"], r["status"], r["took_ms"]) for r in rows] == [
        (n, "succeeded", 250) for n in range(1, occurrences_made + 1)]


@pytest.mark.parametrize(("catch_up", "last"), [("missed", ("missed", None)), ("run_once", ("run", "catch-up"))])
def test_a_gap_without_any_scheduler_is_recorded_per_the_catch_up_policy(
        ledgers: Ledgers, queries: PostgresTaskView, projections_running: object, clock: FakeClock,
        namespace: str, ended: list[UUID], catch_up: str, last: tuple[str, str | None]) -> None:
    app = ledgers()
    task = create_recurring(app, namespace, cron="*/10 * * * * ?", catch_up=catch_up)
    ended.append(task)
    _settle(app, queries)
    scheduler = _scheduler(ledgers, queries, clock)
    clock.set(at("12:00:10.200"))
    scheduler.run_once()
    _work_the_run(app, task, clock)
    _settle(app, queries)

    clock.set(at("12:01:07"))  # the schedulers were stopped from 12:00:11 to 12:01:07
    restarted = _scheduler(ledgers, queries, clock)
    restarted.run_once()
    restarted.run_once()

    assert occurrences(app, task) == [("run", 1, "12:00:10", None), ("missed", 2, "12:00:20", None),
                                      ("missed", 3, "12:00:30", None), ("missed", 4, "12:00:40", None),
                                      ("missed", 5, "12:00:50", None), (last[0], 6, "12:01:00", last[1])]
    _settle(app, queries)
    rows, total = queries.schedule_runs(task)
    assert total == 6
    assert [(r["run"], r["status"]) for r in rows] == [
        (6, "pending" if last[0] == "run" else "missed"), (5, "missed"), (4, "missed"), (3, "missed"),
        (2, "missed"), (1, "succeeded")]


def test_a_stopped_schedule_records_nothing_and_restarts_from_its_resume(
        ledgers: Ledgers, queries: PostgresTaskView, projections_running: object, clock: FakeClock,
        namespace: str, ended: list[UUID]) -> None:
    app = ledgers()
    task = create_recurring(app, namespace)
    ended.append(task)
    clock.set(at("12:00:01"))
    app.pause_task(c.PauseTask(task, "stopped in Pandora"), OPERATOR)
    _settle(app, queries)
    scheduler = _scheduler(ledgers, queries, clock)

    for second in range(2, 40, 2):
        clock.set(at(f"12:00:{second:02d}.300"))
        scheduler.run_once()
    clock.set(at("12:00:41"))
    app.resume_task(c.ResumeTask(task), OPERATOR)
    _settle(app, queries)
    clock.set(at("12:00:42.300"))
    scheduler.run_once()

    assert occurrences(app, task) == [("run", 1, "12:00:42", None)]


@pytest.mark.parametrize(("overlap", "second"), [("skip", ("skipped", "overlap")), ("queue", ("run", "overlap"))])
def test_an_occurrence_during_a_run_is_skipped_or_queued_per_the_overlap_policy(
        ledgers: Ledgers, queries: PostgresTaskView, projections_running: object, clock: FakeClock,
        namespace: str, ended: list[UUID], overlap: str, second: tuple[str, str]) -> None:
    app = ledgers()
    task = create_recurring(app, namespace, overlap=overlap)
    ended.append(task)
    _settle(app, queries)
    scheduler = _scheduler(ledgers, queries, clock)
    clock.set(at("12:00:02.300"))
    scheduler.run_once()
    app.start_task(c.StartTask(task, "worker-1"), WORKER)
    _settle(app, queries)

    clock.set(at("12:00:04.300"))
    scheduler.run_once()

    assert occurrences(app, task) == [("run", 1, "12:00:02", None), ("run" if overlap == "queue" else "skipped",
                                                                      2, "12:00:04", second[1])]
    _settle(app, queries)
    rows, _ = queries.schedule_runs(task, sort="run", descending=False)
    assert [(r["status"], r["reason"]) for r in rows] == [
        ("running", None), ("pending" if overlap == "queue" else "skipped", "overlap")]


def test_the_history_sorts_and_pages_by_time_run_status_and_duration(
        ledgers: Ledgers, queries: PostgresTaskView, projections_running: object, clock: FakeClock,
        namespace: str, ended: list[UUID]) -> None:
    app = ledgers()
    task = create_recurring(app, namespace, max_retries=0)
    ended.append(task)
    _settle(app, queries)
    scheduler = _scheduler(ledgers, queries, clock)
    for n, took in enumerate((0.5, 2.0, 1.0)):
        clock.set(at(f"12:00:{2 * (n + 1):02d}.100"))
        scheduler.run_once()
        _work_the_run(app, task, clock, took)
    clock.set(at("12:00:08.100"))
    scheduler.run_once()
    epoch = app.start_task(c.StartTask(task, "worker-1"), WORKER).lease_epoch or 0
    app.fail_task(c.FailTask(task, epoch, "export target unreachable"), WORKER)
    _settle(app, queries)

    by_took, total = queries.schedule_runs(task, sort="took_ms", descending=True, limit=2)
    by_status, _ = queries.schedule_runs(task, sort="status", descending=False)
    second_page, _ = queries.schedule_runs(task, sort="time", descending=True, limit=2, offset=2)

    assert total == 4
    assert [(r["run"], r["took_ms"]) for r in by_took] == [(2, 2000), (3, 1000)]
    assert [r["status"] for r in by_status] == ["failed", "succeeded", "succeeded", "succeeded"]
    assert by_status[0]["message"] == "export target unreachable" and by_status[0]["took_ms"] == 0
    assert [r["run"] for r in second_page] == [2, 1]
    assert second_page[0]["time"] == at("12:00:04") and second_page[0]["ended_at"] == at("12:00:06.100")
    with pytest.raises(ValueError):
        queries.schedule_runs(task, sort="worker")


def test_the_view_proposes_a_recurring_task_to_claimers_only_while_a_triggered_run_waits(
        ledgers: Ledgers, queries: PostgresTaskView, projections_running: object, clock: FakeClock,
        namespace: str, ended: list[UUID]) -> None:
    app = ledgers()
    task = create_recurring(app, namespace)
    ended.append(task)
    clock.advance(0.1)
    one_shot = app.create_task(c.CreateTask(namespace, "one-shot"), OPERATOR).task_id
    _settle(app, queries)
    between_runs = queries.claim_candidates(namespace, None, 10)

    tick(app, task, at("12:00:02.100"))
    _settle(app, queries)
    run_waiting = queries.claim_candidates(namespace, None, 10)
    app.start_task(c.StartTask(task, "worker-1"), WORKER)
    _settle(app, queries)

    assert (between_runs, run_waiting) == ([one_shot], [task, one_shot])
    assert queries.claim_candidates(namespace, None, 10) == [one_shot]


class ListedSchedules:
    """A hand-written view of active schedules, rows given by the test."""

    def __init__(self, rows: list[dict[str, Any]]) -> None:
        self.rows = sorted(rows, key=lambda r: r["id"])

    def active_schedules(self, after: UUID | None, limit: int) -> list[dict[str, Any]]:
        return [r for r in self.rows if after is None or r["id"] > after][:limit]


def test_a_schedule_that_cannot_be_read_is_skipped_and_the_other_tasks_are_still_served() -> None:
    clock = FakeClock()
    app = scheduled_ledger(clock)
    task = create_recurring(app)
    state = app.task_as_of(task)
    unreadable = {"cron": "61 * * * * ?", "timezone": "UTC", "catch_up": "missed", "overlap": "skip"}
    rows = [{"id": UUID(int=1), "version": 1, "schedule": unreadable, "cursor": state.created_at},
            {"id": task, "version": 1, "schedule": state.schedule, "cursor": state.schedule_cursor}]
    clock.set(at("12:00:02.100"))

    due = Scheduler(app, ListedSchedules(rows), CronCalendar(clock), clock=clock).run_once()

    assert due == 1
    assert occurrences(app, task) == [("run", 1, "12:00:02", None)]
