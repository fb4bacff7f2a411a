"""Heartbeat batches on PostgreSQL: one transaction for the batch, each item answering on its own."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any
from uuid import UUID, uuid4

import psycopg
import pytest

from ledger import commands as c
from ledger import state as st
from ledger.application import TaskLedger
from ledger.errors import ConcurrentWriteError, LeaseMismatchError, TaskNotFoundError
from ledger.store import Append, Appended, Stream, StreamStore, project
from taskledger.calendar import CronCalendar
from taskledger.config import eventsourcing_env
from tests.ledger.support import OPERATOR, WORKER


@pytest.fixture(scope="module")
def database(new_database: Callable[[], str]) -> str:
    return new_database()


@pytest.fixture
def process(database: str) -> Iterator[Callable[..., TaskLedger]]:
    """Makes ledgers on the test database, each as another server process would have it (its own cache)."""
    made: list[TaskLedger] = []

    def make(**options: Any) -> TaskLedger:
        made.append(TaskLedger(eventsourcing_env(database, pool_size=2), calendar=CronCalendar(), **options))
        return made[-1]

    yield make
    for app in made:
        app.close()


class StoreLog:
    """The ledger's stream store, noting which aggregates each append carried and what each read found."""

    def __init__(self, store: StreamStore) -> None:
        self.store = store
        self.batches: list[list[UUID]] = []
        self.snapshots_read: list[int] = []
        self.events_read = 0

    def append(self, batch: Sequence[Append]) -> Appended:
        self.batches.append([a.events[0].originator_id for a in batch])  # type: ignore[misc]
        return self.store.append(batch)

    def read_streams(self, known: Mapping[UUID, int], snapshots: bool = True) -> dict[UUID, Stream]:
        found = self.store.read_streams(known, snapshots)
        for stream in found.values():
            if stream.snapshot is not None:
                self.snapshots_read.append(stream.snapshot.originator_version)
            self.events_read += len(stream.events)
        return found

    def positions_of(self, versions: Mapping[UUID, int]) -> dict[UUID, int]:
        return self.store.positions_of(versions)


def logged(app: TaskLedger) -> StoreLog:
    log = StoreLog(app.streams)
    app.streams = log
    return log


def running(app: TaskLedger, n: int) -> list[UUID]:
    """`n` tasks (one retry allowed) created and started by `app` (lease 1, version 2 each)."""
    ids = [app.create_task(c.CreateTask("batch", f"t{i}", max_retries=1), OPERATOR).task_id for i in range(n)]
    for task_id in ids:
        app.start_task(c.StartTask(task_id, "worker-1"), WORKER)
    return ids


def transactions(database: str, positions: list[int]) -> int:
    """How many transactions wrote the events at these log positions."""
    with psycopg.connect(database) as conn:
        row = conn.execute("SELECT count(DISTINCT xmin::text) FROM taskledger_events "
                           "WHERE notification_id = ANY(%s)", (positions,)).fetchone()
    assert row is not None
    return int(row[0])


def stored_versions(database: str, task_id: UUID) -> list[int]:
    with psycopg.connect(database) as conn:
        rows = conn.execute("SELECT originator_version FROM taskledger_events WHERE originator_id = %s "
                            "ORDER BY originator_version", (task_id,)).fetchall()
    return [r[0] for r in rows]


def snapshot_versions(database: str, task_id: UUID) -> list[int]:
    with psycopg.connect(database) as conn:
        rows = conn.execute("SELECT originator_version FROM taskledger_snapshots WHERE originator_id = %s "
                            "ORDER BY originator_version", (task_id,)).fetchall()
    return [r[0] for r in rows]


def written(outcomes: Sequence[c.Written | Exception]) -> list[c.Written]:
    assert all(isinstance(o, c.Written) for o in outcomes), outcomes
    return [o for o in outcomes if isinstance(o, c.Written)]


def test_a_hundred_heartbeats_on_a_hundred_tasks_are_written_in_one_transaction(
        process: Callable[..., TaskLedger], database: str) -> None:
    app = process()
    ids = running(app, 100)

    done = written(app.record_heartbeats([c.RecordHeartbeat(t, 1, progress=float(n)) for n, t in enumerate(ids)],
                                         WORKER))

    assert [(w.task_id, w.version, w.directive) for w in done] == [(t, 3, st.CONTINUE) for t in ids]
    assert len({w.position for w in done}) == 100
    assert transactions(database, [w.position for w in done]) == 1
    assert all(stored_versions(database, t) == [1, 2, 3] for t in ids)
    assert [app.current_task(t).progress for t in ids[:3]] == [0.0, 1.0, 2.0]


def test_refused_items_answer_alone_and_the_other_items_still_commit(
        process: Callable[..., TaskLedger], database: str) -> None:
    app = process()
    first, stale, last = running(app, 3)
    missing = uuid4()

    done = app.record_heartbeats([c.RecordHeartbeat(first, 1), c.RecordHeartbeat(missing, 1),
                                  c.RecordHeartbeat(stale, 7), c.RecordHeartbeat(last, 1)], WORKER)

    assert [type(d) for d in done] == [c.Written, TaskNotFoundError, LeaseMismatchError, c.Written]
    assert isinstance(done[1], TaskNotFoundError) and done[1].task_id == missing
    assert isinstance(done[2], LeaseMismatchError) and (done[2].given, done[2].current) == (7, 1)
    good = written([done[0], done[3]])
    assert [w.version for w in good] == [3, 3]
    assert transactions(database, [w.position for w in good]) == 1
    assert (stored_versions(database, first), stored_versions(database, stale), stored_versions(database, last)) == (
        [1, 2, 3], [1, 2], [1, 2, 3])
    assert stored_versions(database, missing) == []


def test_items_another_process_wrote_to_meanwhile_are_run_again_and_the_others_commit_first(
        process: Callable[..., TaskLedger], database: str) -> None:
    app, other = process(), process()
    ids = running(app, 6)
    beaten, paused, restarted = ids[2], ids[4], ids[5]
    other.record_heartbeat(c.RecordHeartbeat(beaten, 1, message="from the other process"), WORKER)
    other.pause_task(c.PauseTask(paused), OPERATOR)
    other.fail_task(c.FailTask(restarted, 1, "oom"), WORKER)
    assert other.start_task(c.StartTask(restarted, "worker-2"), WORKER).lease_epoch == 2
    log = logged(app)

    done = written(app.record_heartbeats([c.RecordHeartbeat(t, 2 if t == restarted else 1, progress=50.0)
                                          for t in ids], WORKER))

    assert [(w.version, w.directive) for w in done] == [
        (3, st.CONTINUE), (3, st.CONTINUE), (4, st.CONTINUE), (3, st.CONTINUE), (3, st.PAUSE), (5, st.CONTINUE)]
    assert [set(batch) for batch in log.batches] == [set(ids) - {restarted}, {beaten, restarted}]
    untouched = [done[i].position for i in (0, 1, 3)]
    assert transactions(database, untouched) == 1
    assert transactions(database, [*untouched, done[2].position]) == 2
    assert stored_versions(database, beaten) == [1, 2, 3, 4]
    assert stored_versions(database, paused) == [1, 2, 3]
    assert stored_versions(database, restarted) == [1, 2, 3, 4, 5]
    state = process().current_task(beaten)
    assert (state.version, state.progress, state.message) == (4, 50.0, "from the other process")


def test_two_items_for_the_same_task_get_consecutive_versions(
        process: Callable[..., TaskLedger], database: str) -> None:
    app = process()
    twice, once = running(app, 2)

    done = written(app.record_heartbeats([c.RecordHeartbeat(twice, 1, progress=10.0), c.RecordHeartbeat(once, 1),
                                          c.RecordHeartbeat(twice, 1, progress=20.0)], WORKER))

    assert [(w.task_id, w.version) for w in done] == [(twice, 3), (once, 3), (twice, 4)]
    assert done[0].position < done[2].position
    assert transactions(database, [w.position for w in done]) == 1
    assert stored_versions(database, twice) == [1, 2, 3, 4]
    assert [process().task_as_of(twice, version=v).progress for v in (3, 4)] == [10.0, 20.0]


def test_a_batch_that_takes_a_task_past_the_interval_stores_its_snapshot_in_the_same_transaction(
        process: Callable[..., TaskLedger], database: str) -> None:
    app = process(snapshot_interval=5)
    deep, shallow = running(app, 2)

    done = written(app.record_heartbeats(
        [c.RecordHeartbeat(deep, 1, progress=float(p)) for p in (1, 2, 3)] + [c.RecordHeartbeat(shallow, 1)], WORKER))

    assert [w.version for w in done] == [3, 4, 5, 3]
    assert (snapshot_versions(database, deep), snapshot_versions(database, shallow)) == ([5], [])
    with psycopg.connect(database) as conn:
        snapshot_xmin = conn.execute("SELECT xmin::text FROM taskledger_snapshots WHERE originator_id = %s",
                                     (deep,)).fetchone()
        event_xmin = conn.execute("SELECT xmin::text FROM taskledger_events WHERE notification_id = %s",
                                  (done[2].position,)).fetchone()
    assert snapshot_xmin == event_xmin
    cold = process(snapshot_interval=5)
    log = logged(cold)
    loaded = cold.fetch([deep, shallow])
    assert (log.snapshots_read, log.events_read) == ([5], 3)
    for task_id in (deep, shallow):
        assert loaded[task_id].state.to_dict() == project(None, app.events.get(task_id)).state.to_dict()
    app.record_heartbeat(c.RecordHeartbeat(deep, 1, progress=4.0), WORKER)
    again = process(snapshot_interval=5)
    log = logged(again)
    state = again.current_task(deep)
    assert (log.snapshots_read, log.events_read) == ([5], 1)
    assert (state.version, state.progress) == (6, 4.0)
    assert state.to_dict() == project(None, app.events.get(deep)).state.to_dict()


def test_the_snapshot_of_a_stale_item_is_not_stored(process: Callable[..., TaskLedger], database: str) -> None:
    app, other = process(snapshot_interval=4), process(snapshot_interval=4)
    task_id, neighbour = running(app, 2)
    other.record_heartbeat(c.RecordHeartbeat(task_id, 1, message="from the other process"), WORKER)

    done = written(app.record_heartbeats([c.RecordHeartbeat(task_id, 1, message="a-1"),
                                          c.RecordHeartbeat(task_id, 1, message="a-2"),
                                          c.RecordHeartbeat(neighbour, 1)], WORKER))

    assert [w.version for w in done] == [4, 5, 3]
    assert snapshot_versions(database, task_id) == [5]
    cold = process(snapshot_interval=4)
    for version in (3, 4, 5):
        replayed = project(None, app.events.get(task_id, lte=version)).state.to_dict()
        assert cold.task_as_of(task_id, version=version).to_dict() == replayed
    assert cold.current_task(task_id).message == "a-2"
    events: list[Any] = list(app.events.get(task_id))
    assert [e.message for e in events[2:]] == ["from the other process", "a-1", "a-2"]


def test_concurrent_batches_from_several_processes_record_each_answered_heartbeat_exactly_once(
        process: Callable[..., TaskLedger], database: str) -> None:
    apps = [process() for _ in range(4)]
    ids = running(apps[0], 3)
    answers: list[tuple[str, c.Written | Exception]] = []
    lock = threading.Lock()

    def beat(n: int, app: TaskLedger) -> None:
        for round_ in range(15):
            messages = [f"p{n}-r{round_}-{t}" for t in range(len(ids))]
            done = app.record_heartbeats([c.RecordHeartbeat(t, 1, message=m) for t, m in zip(ids, messages)], WORKER)
            with lock:
                answers.extend(zip(messages, done))

    threads = [threading.Thread(target=beat, args=(n, app)) for n, app in enumerate(apps)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert len(answers) == 4 * 15 * 3
    assert all(isinstance(d, (c.Written, ConcurrentWriteError)) for _, d in answers), answers
    answered = {m: d.version for m, d in answers if isinstance(d, c.Written)}
    assert answered
    for task_id in ids:
        events: list[Any] = list(apps[0].events.get(task_id))
        assert [e.originator_version for e in events] == list(range(1, len(events) + 1))
        stored = {e.message: e.originator_version for e in events[2:]}
        mine = {m: v for m, v in answered.items() if m.endswith(f"-{ids.index(task_id)}")}
        assert stored == mine


def test_receipts_of_heartbeats_that_write_nothing_name_the_position_of_their_version_under_concurrent_writes(
        process: Callable[..., TaskLedger], database: str) -> None:
    operator, worker = process(), process()
    task_id = running(operator, 1)[0]
    operator.pause_task(c.PauseTask(task_id, "hold"), OPERATOR)
    stop = threading.Event()

    def relabel() -> None:
        n = 0
        while not stop.is_set():
            operator.update_task(c.UpdateTask(task_id, {"labels": {"n": str(n)}}), OPERATOR)
            n += 1

    writer = threading.Thread(target=relabel)
    writer.start()
    receipts = []
    try:
        for _ in range(60):
            receipts.append(worker.record_heartbeat(c.RecordHeartbeat(task_id, 1, 5.0), WORKER))
            done = worker.record_heartbeats([c.RecordHeartbeat(task_id, 1, 6.0)], WORKER)[0]
            assert isinstance(done, c.Written)
            receipts.append(done)
    finally:
        stop.set()
        writer.join()

    with psycopg.connect(database) as conn:
        stored = dict(conn.execute("SELECT originator_version, notification_id FROM taskledger_events "
                                   "WHERE originator_id = %s", (task_id,)).fetchall())
    assert len(stored) > 20, "the concurrent writer did not write: the test proves nothing"
    assert all(r.directive == "pause" for r in receipts)
    assert [(r.version, r.position) for r in receipts] == [(r.version, stored[r.version]) for r in receipts]
