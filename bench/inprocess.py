"""Measurements that run inside this process against the scratch database, with no HTTP in the way.

  append      the event store's own append path: N threads, one single-event aggregate per append
  raw python  the same N threads doing a plain single-row INSERT (autocommit) into the raw table
  cold write  the first heartbeat of a process that has nothing cached, on a long and on a fresh task
  catch-up    one projection from position 0 into fresh tables in a scratch schema, the runner's code
  decode      the floor any projection pays: reading and decoding the same events, nothing written
  skip test   8 writers committing out of position order while a fenced reader and a naive one tail the log
"""

from __future__ import annotations

import random
import statistics
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg
from eventsourcing.persistence import StoredEvent
from psycopg import sql

from bench.loadgen import Measurement, progress
from eventstore.recorder import LedgerRecorder
from projections.tables import EVENTS_TABLE, tracking_table
from eventstore.tail import LogTail
from ledger import commands as c
from ledger.application import TaskLedger
from ledger.domain import Task
from ledger.store import Append
from projections.registry import PROJECTIONS
from projections.batching import BatchRunner
from taskledger.config import eventsourcing_env
from taskledger.tools.scratch import ScratchDatastore

WHO = c.Caller("bench", "bench-request", "native")
RAW_TABLE = "bench_raw_events"


def _threads(connections: int, seconds: float, work: Callable[[int], Callable[[], int]]) -> tuple[int, list[float]]:
    """Runs `connections` threads for `seconds`; each calls its step until time is up. (items, latencies ms)"""
    deadline = [0.0]
    counts = [0] * connections
    latencies: list[list[float]] = [[] for _ in range(connections)]
    ready = threading.Barrier(connections + 1)

    def run(k: int) -> None:
        step = work(k)
        ready.wait()
        while time.monotonic() < deadline[0]:
            t = time.perf_counter()
            counts[k] += step()
            latencies[k].append((time.perf_counter() - t) * 1000)

    threads = [threading.Thread(target=run, args=(k,), daemon=True) for k in range(connections)]
    for thread in threads:
        thread.start()
    deadline[0] = time.monotonic() + seconds + 0.05
    ready.wait()
    for thread in threads:
        thread.join()
    return sum(counts), [x for per in latencies for x in per]


def _measurement(label: str, tool: str, connections: int, seconds: float, items: int, unit: str,
                 latencies: list[float]) -> Measurement:
    ordered = sorted(latencies) or [0.0]

    def pick(p: float) -> float:
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]
    return Measurement(label=label, tool=tool, connections=connections, duration_s=seconds, rate=items / seconds,
                       unit=unit, completed=items, errors=0, p50_ms=pick(50), p90_ms=pick(90), p99_ms=pick(99),
                       mean_ms=statistics.fmean(ordered))


def append_path(url: str, connections: int, seconds: float) -> Measurement:
    """LedgerRecorder.append from N threads, each append one new task's Created event (as a create does)."""
    app = TaskLedger(eventsourcing_env(url, pool_size=connections))
    recorder = app.recorder
    assert isinstance(recorder, LedgerRecorder)
    created = _created_event(app)
    try:
        def work(_: int) -> Callable[[], int]:
            def step() -> int:
                recorder.append([Append([StoredEvent(uuid.uuid4(), 1, created.topic, created.state)])])
                return 1
            return step
        items, latencies = _threads(connections, seconds, work)
    finally:
        app.close()
    return _measurement("store append (threads, no HTTP)", "python", connections, seconds, items, "ev/s", latencies)


def _created_event(app: TaskLedger) -> StoredEvent:
    """A real task's Created event as stored: the projections apply what the append bench writes."""
    task = Task.create(app._meta(WHO), uuid.uuid4(), **app._created_fields(
        c.CreateTask(namespace="bench-append", name="bench-append"), WHO, None))
    return app.mapper.to_stored_event(task.collect_events()[0])


def python_raw(url: str, connections: int, seconds: float, state_bytes: int = 300) -> Measurement:
    """The same threads, each doing a plain INSERT+COMMIT of one row: what psycopg alone costs."""
    state = b'{"x":"' + b"7" * state_bytes + b'"}'
    statement = (f"INSERT INTO {RAW_TABLE} (originator_id, originator_version, topic, state) "
                 "VALUES (%s, 1, 'bench.RawEvent', %s)")
    conns = [psycopg.connect(url, autocommit=True) for _ in range(connections)]
    try:
        def work(k: int) -> Callable[[], int]:
            def step() -> int:
                conns[k].execute(statement, (uuid.uuid4(), state), prepare=True)
                return 1
            return step
        items, latencies = _threads(connections, seconds, work)
    finally:
        for conn in conns:
            conn.close()
    return _measurement("raw INSERT+COMMIT (python threads)", "python", connections, seconds, items, "tx/s",
                        latencies)


# ------------------------------------------------------------------ first write after a restart
@dataclass
class LongTask:
    task_id: uuid.UUID
    lease_epoch: int
    events: int


def make_task(url: str, namespace: str, events: int, batch: int = 500) -> LongTask:
    """A running task with `events` events (heartbeats written many per transaction)."""
    app = TaskLedger(eventsourcing_env(url, pool_size=1))
    try:
        task_id = app.create_task(c.CreateTask(namespace=namespace, name="bench-long"), WHO).task_id
        epoch = app.start_task(c.StartTask(task_id, "bench-worker"), WHO).lease_epoch or 0
        done = 2
        while done < events:
            n = min(batch, events - done)
            app.record_heartbeats([c.RecordHeartbeat(task_id, epoch, progress=float(i % 100)) for i in range(n)], WHO)
            done += n
        return LongTask(task_id, epoch, done)
    finally:
        app.close()


def cold_first_write(url: str, task: LongTask, trials: int = 7) -> list[float]:
    """ms of the first heartbeat of a fresh process (a new TaskLedger, nothing cached), one per trial."""
    samples = []
    for _ in range(trials):
        app = TaskLedger(eventsourcing_env(url, pool_size=1))
        try:
            app.head_position()  # the pool is open and connected before the clock starts
            t = time.perf_counter()
            app.record_heartbeat(c.RecordHeartbeat(task.task_id, task.lease_epoch, progress=1.0), WHO)
            samples.append((time.perf_counter() - t) * 1000)
        finally:
            app.close()
    return samples


# ------------------------------------------------------------------ projections from position 0
def catch_up(url: str, name: str, upto: int) -> Measurement:
    """One projection's runner applying the log from 0 to `upto` into fresh tables of a scratch schema."""
    schema = f"bench_catchup_{name}_{uuid.uuid4().hex[:6]}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    datastore = ScratchDatastore(url, schema)
    app = TaskLedger(eventsourcing_env(url, pool_size=2))
    try:
        _, view_class = PROJECTIONS[name]
        view = view_class(datastore, tracking_table_name=tracking_table(name))
        view.create_table()
        started = time.perf_counter()
        with BatchRunner(app, view, name) as runner:
            while runner.position < upto:
                runner.run_once(timeout=1.0)
        seconds = time.perf_counter() - started
        applied = runner.applied
    finally:
        app.close()
        datastore.close()
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))
    return Measurement(label=f"catch-up {name} from 0", tool="python", connections=1, duration_s=round(seconds, 2),
                       rate=applied / seconds, unit="ev/s", completed=applied, errors=0,
                       details={"batches": runner.batches})


def decode_only(url: str, upto: int) -> Measurement:
    """Reading the same events in the same batches and decoding every one: the floor of any projection."""
    app = TaskLedger(eventsourcing_env(url, pool_size=2))
    assert isinstance(app.recorder, LedgerRecorder)
    try:
        started, position, count = time.perf_counter(), 0, 0
        while position < upto:
            rows = app.recorder.select_range(position, upto, 2000)
            if not rows:
                break
            for row in rows:
                app.mapper.to_domain_event(row)
            count += len(rows)
            position = rows[-1].id
        seconds = time.perf_counter() - started
    finally:
        app.close()
    return Measurement(label="read + decode only (no projection)", tool="python", connections=1,
                       duration_s=round(seconds, 2), rate=count / seconds, unit="ev/s", completed=count, errors=0)


# ------------------------------------------------------------------ out-of-order commits
def skip_test(url: str, writers: int = 8, per_writer: int = 150, max_delay: float = 0.004) -> dict[str, Any]:
    """Writers take a position, sleep a random while, then commit; who saw what. Run it on a database of its
    own: its rows are no task's events."""
    insert = (f"INSERT INTO {EVENTS_TABLE} (originator_id, originator_version, topic, state) "
              "VALUES (%s, 1, 'bench:OutOfOrder', '{}') RETURNING notification_id")
    app = TaskLedger(eventsourcing_env(url, pool_size=2))
    recorder = app.recorder
    assert isinstance(recorder, LedgerRecorder)
    start = recorder.committed_head()
    committed: list[tuple[float, int]] = []
    lock = threading.Lock()
    done = threading.Event()
    fenced: list[int] = []
    naive: list[int] = []

    def writer(seed: int) -> None:
        rnd = random.Random(seed)
        with psycopg.connect(url) as conn:
            for _ in range(per_writer):
                row = conn.execute(insert, (uuid.uuid4(),)).fetchone()
                time.sleep(rnd.uniform(0, max_delay))
                conn.commit()
                with lock:
                    committed.append((time.monotonic(), int(row[0]) if row else 0))

    def fenced_reader() -> None:
        tail = LogTail(recorder, start, batch=50)
        try:
            while not done.is_set() or tail.position < recorder.committed_head():
                fenced.extend(n.id for n in tail.next_batch(0.05) if n.topic == "bench:OutOfOrder")
        finally:
            tail.close()

    def naive_reader() -> None:
        position = start
        with psycopg.connect(url, autocommit=True) as conn:
            while not done.is_set():
                rows = conn.execute(f"SELECT notification_id, topic FROM {EVENTS_TABLE} WHERE notification_id > %s "
                                    "ORDER BY notification_id LIMIT 50", (position,)).fetchall()
                naive.extend(r[0] for r in rows if r[1] == "bench:OutOfOrder")
                position = rows[-1][0] if rows else position
                time.sleep(0.001)

    readers = [threading.Thread(target=fenced_reader), threading.Thread(target=naive_reader)]
    for thread in readers:
        thread.start()
    threads = [threading.Thread(target=writer, args=(k,)) for k in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    done.set()
    for thread in readers:
        thread.join(timeout=60)
    app.close()
    written = {p for _, p in committed}
    in_commit_order = [p for _, p in sorted(committed)]
    overtaken = sum(1 for a, b in zip(in_commit_order, in_commit_order[1:]) if b < a)
    progress(f"  skip test: {len(written)} events, {overtaken} commits overtook a lower position; fenced reader "
             f"skipped {len(written - set(fenced))}, naive reader skipped {len(written - set(naive))}")
    return {"events": len(written), "overtaken": overtaken, "fenced_skipped": len(written - set(fenced)),
            "fenced_in_order": fenced == sorted(set(fenced)), "naive_skipped": len(written - set(naive))}


def pad_log(url: str, target: int, tasks: int = 200, batch: int = 500) -> int:
    """Adds heartbeats (many per transaction) until the log holds `target` events; returns the head."""
    app = TaskLedger(eventsourcing_env(url, pool_size=1))
    try:
        head = app.head_position()
        if head >= target:
            return head
        leased = []
        for i in range(tasks):
            task_id = app.create_task(c.CreateTask(namespace=f"bench-pad-{i % 20}", name="bench-pad"), WHO).task_id
            leased.append((task_id, app.start_task(c.StartTask(task_id, "bench-pad"), WHO).lease_epoch or 0))
        k = 0
        while head < target:
            items = [c.RecordHeartbeat(*leased[(k + j) % tasks], progress=float(j % 100)) for j in range(batch)]
            done = app.record_heartbeats(items, WHO)
            head = max(w.position for w in done if isinstance(w, c.Written))
            k += batch
        return head
    finally:
        app.close()
