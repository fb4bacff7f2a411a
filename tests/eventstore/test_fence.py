"""Readers never skip an event, whatever order concurrent writers commit in."""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest

from eventstore.recorder import LedgerRecorder
from eventstore.tail import LogTail
from ledger.application import TaskLedger
from ledger.store import Append
from taskledger.config import eventsourcing_env

INSERT = ("INSERT INTO taskledger_events (originator_id, originator_version, topic, state) "
          "VALUES (%s, 1, 'tests:Written', '{}') RETURNING notification_id")


@pytest.fixture
def store(new_database: Callable[[], str]) -> Iterator[tuple[str, LedgerRecorder]]:
    url = new_database()
    app = TaskLedger(eventsourcing_env(url))
    assert isinstance(app.recorder, LedgerRecorder)
    yield url, app.recorder
    app.close()


def _open_writer(url: str) -> tuple[psycopg.Connection[Any], int]:
    """A transaction that has taken a position and not committed yet."""
    conn = psycopg.connect(url)
    row = conn.execute(INSERT, (uuid.uuid4(),)).fetchone()
    assert row is not None
    return conn, int(row[0])


def _append_one(recorder: LedgerRecorder, topic: str = "tests:Written") -> int:
    from eventsourcing.persistence import StoredEvent

    event = StoredEvent(uuid.uuid4(), 1, topic, b"{}")
    return recorder.append([Append([event])]).positions[event.originator_id][0]  # type: ignore[index]


def test_a_reader_does_not_pass_a_position_an_open_transaction_holds(store: tuple[str, LedgerRecorder]) -> None:
    url, recorder = store
    slow, held = _open_writer(url)
    later = _append_one(recorder)
    assert later > held
    try:
        assert recorder.committed_head() == later  # committed and visible to a plain SELECT …
        assert [n.id for n in recorder.select_notifications(0, 100)] == []  # … but not past the fence
        assert recorder.max_notification_id() is None
    finally:
        slow.commit()
        slow.close()
    assert [n.id for n in recorder.select_notifications(0, 100)] == [held, later]
    assert recorder.max_notification_id() == later


def test_a_tail_waits_behind_the_open_transaction_and_then_delivers_in_order(store: tuple[str, LedgerRecorder]) -> None:
    url, recorder = store
    first = _append_one(recorder)
    slow, held = _open_writer(url)
    later = _append_one(recorder)
    tail = LogTail(recorder, 0)
    try:
        assert [n.id for n in tail.next_batch(0.3)] == [first]
        assert tail.next_batch(0.3) == []
        slow.commit()
        assert [n.id for n in tail.next_batch(2.0)] == [held, later]
    finally:
        slow.close()
        tail.close()


def test_a_rolled_back_position_is_a_gap_the_reader_passes(store: tuple[str, LedgerRecorder]) -> None:
    url, recorder = store
    slow, held = _open_writer(url)
    later = _append_one(recorder)
    slow.rollback()
    slow.close()
    assert [n.id for n in recorder.select_notifications(0, 100)] == [later]
    assert held < later


def test_eight_writers_committing_out_of_order_lose_nothing_for_a_tailing_reader(
        store: tuple[str, LedgerRecorder]) -> None:
    url, recorder = store
    committed: list[tuple[float, int]] = []
    lock = threading.Lock()
    stop = threading.Event()

    def writer(seed: int) -> None:
        rnd = random.Random(seed)
        with psycopg.connect(url) as conn:
            for _ in range(60):
                row = conn.execute(INSERT, (uuid.uuid4(),)).fetchone()
                time.sleep(rnd.uniform(0, 0.004))  # between taking the position and committing it
                conn.commit()
                with lock:
                    committed.append((time.monotonic(), int(row[0])))  # type: ignore[index]

    seen: list[int] = []

    def reader() -> None:
        tail = LogTail(recorder, 0, batch=7)
        try:
            while not stop.is_set() or len(seen) < 480:
                seen.extend(n.id for n in tail.next_batch(0.05))
                if stop.is_set() and time.monotonic() > deadline:
                    return
        finally:
            tail.close()

    deadline = float("inf")
    tailing = threading.Thread(target=reader)
    tailing.start()
    writers = [threading.Thread(target=writer, args=(k,)) for k in range(8)]
    for w in writers:
        w.start()
    for w in writers:
        w.join()
    deadline = time.monotonic() + 10
    stop.set()
    tailing.join()

    in_commit_order = [position for _, position in sorted(committed)]
    overtaken = sum(1 for a, b in zip(in_commit_order, in_commit_order[1:]) if b < a)
    assert overtaken > 20, "the writers did not commit out of position order: the test proves nothing"
    assert seen == sorted(set(seen)), "positions must reach the reader strictly increasing"
    assert set(seen) == {p for _, p in committed}, "every committed event reaches the reader, none skipped"
