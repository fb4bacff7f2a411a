"""Cached writes: a process whose cached task is out of date still answers from the task as the store has it."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable
from uuid import UUID

import pytest

from ledger import commands as c
from ledger import state as st
from ledger.application import TaskLedger
from ledger.domain import Task
from ledger.errors import IllegalTransitionError, LeaseMismatchError, LedgerError, VersionMismatchError
from ledger.state import TaskState
from ledger.store import project
from tests.ledger.support import OPERATOR, WORKER, another_process, create, events_of, new_ledger


def two_processes() -> tuple[TaskLedger, TaskLedger]:
    first = new_ledger()
    return first, another_process(first)


def running_in(app: TaskLedger) -> UUID:
    """A task (one retry allowed) created and started by `app`, so `app` caches it as running under lease 1."""
    task_id = create(app, max_retries=1)
    app.start_task(c.StartTask(task_id, "worker-1"), WORKER)
    return task_id


def versions(app: TaskLedger, task_id: UUID) -> list[int]:
    return [e.originator_version for e in events_of(app, task_id)]


Move = Callable[[TaskLedger, UUID], object]

MOVES: dict[str, Move] = {
    "pause": lambda app, t: app.pause_task(c.PauseTask(t, "maintenance"), OPERATOR),
    "cancel": lambda app, t: app.cancel_task(c.CancelTask(t, "not needed"), OPERATOR),
    "abort": lambda app, t: app.abort_task(c.AbortTask(t, "stuck"), OPERATOR),
    "drop": lambda app, t: app.drop_task(c.DropTask(t, force=True), OPERATOR),
}


@pytest.mark.parametrize(("move", "directive", "recorded"), [
    ("pause", st.PAUSE, False), ("abort", st.STOP, False), ("drop", st.STOP, False), ("cancel", st.CANCEL, True)])
def test_a_heartbeat_through_a_stale_cache_answers_the_directive_of_the_current_state(
        move: str, directive: str, recorded: bool) -> None:
    a, b = two_processes()
    task_id = running_in(a)
    MOVES[move](b, task_id)

    written = a.record_heartbeat(c.RecordHeartbeat(task_id, 1, progress=10.0), WORKER)

    assert written.directive == directive
    assert written.version == (4 if recorded else 3)
    assert versions(a, task_id) == list(range(1, written.version + 1))
    beats = [e for e in events_of(a, task_id) if isinstance(e, Task.HeartbeatRecorded)]
    assert len(beats) == (1 if recorded else 0)


def test_a_stale_cache_never_refuses_the_current_lease() -> None:
    a, b = two_processes()
    task_id = running_in(a)
    b.pause_task(c.PauseTask(task_id), OPERATOR)
    b.resume_task(c.ResumeTask(task_id), OPERATOR)
    assert b.start_task(c.StartTask(task_id, "worker-2"), WORKER).lease_epoch == 2

    written = a.record_heartbeat(c.RecordHeartbeat(task_id, 2, progress=33.0), WORKER)

    assert (written.directive, written.version) == (st.CONTINUE, 6)
    assert written.state is not None
    assert (written.state.lease_epoch, written.state.worker, written.state.progress) == (2, "worker-2", 33.0)
    assert b.current_task(task_id).to_dict() == written.state.to_dict()


def test_a_stale_cache_never_answers_an_expired_lease_with_a_directive() -> None:
    a, b = two_processes()
    task_id = running_in(a)
    a.pause_task(c.PauseTask(task_id), OPERATOR)
    b.resume_task(c.ResumeTask(task_id), OPERATOR)
    b.start_task(c.StartTask(task_id, "worker-2"), WORKER)

    with pytest.raises(LeaseMismatchError) as refused:
        a.record_heartbeat(c.RecordHeartbeat(task_id, 1), WORKER)

    assert (refused.value.given, refused.value.current) == (1, 2)
    assert versions(a, task_id) == [1, 2, 3, 4, 5]


def _resume(app: TaskLedger, t: UUID) -> c.Written:
    return app.resume_task(c.ResumeTask(t), OPERATOR)


def _start(app: TaskLedger, t: UUID) -> c.Written:
    return app.start_task(c.StartTask(t, "worker-3"), WORKER)


def _complete_lease_2(app: TaskLedger, t: UUID) -> c.Written:
    return app.complete_task(c.CompleteTask(t, 2, {"rows": 5}), WORKER)


def _update_at_3(app: TaskLedger, t: UUID) -> c.Written:
    return app.update_task(c.UpdateTask(t, {"name": "renamed"}, expected_version=3), OPERATOR)


# (what b does meanwhile, what a then asks, which state the task ends in)
LEGAL_NOW: dict[str, tuple[Callable[[TaskLedger, UUID], object], Callable[[TaskLedger, UUID], c.Written], str]] = {
    "resume a task another process paused": (
        lambda b, t: b.pause_task(c.PauseTask(t), OPERATOR), _resume, st.QUEUED),
    "start a task another process requeued": (
        lambda b, t: b.fail_task(c.FailTask(t, 1, "oom", retry=True), WORKER), _start, st.RUNNING),
    "complete under the lease another process handed out": (
        lambda b, t: (b.fail_task(c.FailTask(t, 1, "oom", retry=True), WORKER), _start(b, t)), _complete_lease_2,
        st.SUCCEEDED),
    "update at the version another process wrote": (
        lambda b, t: b.report_progress(c.ReportProgress(t, 1, 12.0), WORKER), _update_at_3, st.RUNNING),
}


@pytest.mark.parametrize("case", list(LEGAL_NOW))
def test_a_command_the_stale_cache_would_refuse_succeeds_when_the_store_allows_it(case: str) -> None:
    meanwhile, ask, end_state = LEGAL_NOW[case]
    a, b = two_processes()
    task_id = running_in(a)
    meanwhile(b, task_id)
    before = b.current_task(task_id).version

    written = ask(a, task_id)

    assert written.version == before + 1
    assert written.state is not None and written.state.state == end_state
    assert b.current_task(task_id).to_dict() == written.state.to_dict()
    assert versions(a, task_id) == list(range(1, before + 2))


def test_a_refusal_through_a_stale_cache_names_the_current_state_not_the_cached_one() -> None:
    a, b = two_processes()
    task_id = running_in(a)
    b.complete_task(c.CompleteTask(task_id, 1, None), WORKER)

    with pytest.raises(IllegalTransitionError) as refused:
        a.resume_task(c.ResumeTask(task_id), OPERATOR)

    assert (refused.value.state, refused.value.action) == (st.SUCCEEDED, "resume")
    assert versions(a, task_id) == [1, 2, 3]


def test_a_write_through_a_stale_cache_is_refused_by_the_current_state() -> None:
    a, b = two_processes()
    task_id = create(a)
    b.start_task(c.StartTask(task_id, "worker-2"), WORKER)
    b.complete_task(c.CompleteTask(task_id, 1, None), WORKER)

    with pytest.raises(IllegalTransitionError) as refused:
        a.pause_task(c.PauseTask(task_id), OPERATOR)

    assert refused.value.state == st.SUCCEEDED
    assert versions(a, task_id) == [1, 2, 3]


def test_a_claim_through_a_stale_cache_skips_the_task_another_process_started() -> None:
    a, b = two_processes()
    first, second = create(a), create(a)
    b.start_task(c.StartTask(first, "worker-b"), WORKER)

    claimed = a.claim_task(c.ClaimTask("worker-a", (first, second)), WORKER)

    assert (claimed.task_id, claimed.lease_epoch) == (second, 1)
    assert (a.current_task(first).worker, a.current_task(second).worker) == ("worker-b", "worker-a")
    assert versions(a, first) == [1, 2] and versions(a, second) == [1, 2]


def test_alternating_writers_leave_gap_free_versions_and_record_every_heartbeat_once() -> None:
    a, b = two_processes()
    task_id = running_in(a)
    answered = []

    for i in range(30):
        for name, app in (("a", a), ("b", b)):
            answered.append(app.record_heartbeat(c.RecordHeartbeat(task_id, 1, message=f"{name}-{i}"), WORKER))

    assert sorted(w.version for w in answered) == list(range(3, 63))
    assert versions(a, task_id) == list(range(1, 63))
    messages = Counter(e.message for e in events_of(a, task_id) if isinstance(e, Task.HeartbeatRecorded))
    assert set(messages.values()) == {1} and len(messages) == 60
    assert a.current_task(task_id).to_dict() == b.current_task(task_id).to_dict()


def _refusal_matches(error: LedgerError, now: TaskState) -> bool:
    """Whether a refusal names the task as the store has it (not as some cache had it)."""
    if isinstance(error, LeaseMismatchError):
        return error.current == now.lease_epoch
    if isinstance(error, IllegalTransitionError):
        return error.state == now.state
    return isinstance(error, VersionMismatchError) and error.actual == now.version


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_three_processes_with_small_caches_answer_every_command_as_the_store_has_the_task(seed: int) -> None:
    rnd = random.Random(seed)
    store = new_ledger(snapshot_interval=3, cache_size=3)
    apps = [store, another_process(store, snapshot_interval=5, cache_size=2), another_process(store, cache_size=0)]
    ids = [create(store, max_retries=1000) for _ in range(3)]
    commands: list[Callable[[TaskLedger, UUID, int], object]] = [
        lambda app, t, e: app.start_task(c.StartTask(t, "w"), WORKER),
        lambda app, t, e: app.record_heartbeat(c.RecordHeartbeat(t, e, rnd.uniform(0, 100)), WORKER),
        lambda app, t, e: app.record_heartbeat(c.RecordHeartbeat(t, e, rnd.uniform(0, 100)), WORKER),
        lambda app, t, e: app.report_progress(c.ReportProgress(t, e, 5.0), WORKER),
        lambda app, t, e: app.fail_task(c.FailTask(t, e, "oom"), WORKER),
        lambda app, t, e: app.pause_task(c.PauseTask(t), OPERATOR),
        lambda app, t, e: app.resume_task(c.ResumeTask(t), OPERATOR),
        lambda app, t, e: app.update_task(c.UpdateTask(t, {"name": "n"}, expected_version=e + 2), OPERATOR),
    ]

    for _ in range(400):
        app, task_id = rnd.choice(apps), rnd.choice(ids)
        cached = rnd.choice(apps).cache.get(task_id)
        epoch = cached.state.lease_epoch if cached is not None and rnd.random() < 0.8 else rnd.randint(0, 9)
        try:
            answer = rnd.choice(commands)(app, task_id, epoch)
        except LedgerError as error:
            assert _refusal_matches(error, store.current_task(task_id)), error
            continue
        assert isinstance(answer, c.Written) and answer.state is not None
        assert answer.version == store.current_task(task_id).version
        assert answer.state.to_dict() == project(None, store.events.get(task_id, lte=answer.version)).state.to_dict()

    for task_id in ids:
        replay = project(None, store.events.get(task_id)).state.to_dict()
        assert [app.current_task(task_id).to_dict() for app in apps] == [replay] * 3
        assert versions(store, task_id) == list(range(1, replay["version"] + 1))
