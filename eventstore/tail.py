"""Tailing the log: batches of notifications in order, never past the fence, woken by NOTIFY or a timer."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import psycopg
from eventsourcing.persistence import Notification, Subscription
from psycopg import sql

from eventstore.connect import application_name, own_connection
from eventstore.fence import readable

if TYPE_CHECKING:
    from eventstore.recorder import LedgerRecorder

BATCH = 2000
# Without a notification (one lost, or a foreign transaction that held the fence ended) the tail
# looks again at least this often.
IDLE_POLL = 0.5
HELD_POLL_MAX = 0.02


class LogTail(Subscription[Any]):
    """Everything after a position, in log order: `next_batch` for batch readers, iteration for eventsourcing."""

    def __init__(self, recorder: LedgerRecorder, after: int = 0, topics: Sequence[str] = (),
                 batch: int = BATCH) -> None:
        super().__init__(recorder=recorder, gt=after, topics=topics)
        self.recorder = recorder
        self.position = after
        self.batch = batch
        self._buffer: list[Notification] = []
        self._conn: psycopg.Connection[Any] = self._connect()

    def next_batch(self, timeout: float) -> list[Notification]:
        """The next notifications behind the fence; waits up to `timeout` seconds for some; [] if none came."""
        deadline = time.monotonic() + timeout
        held_delay = 0.0005
        while not self._has_been_stopped:
            fence = self.recorder.fence
            safe = self._advance(fence)
            if max(safe, fence.top) > self.position:
                rows = self.recorder.select_range(self.position, max(safe, fence.top), self.batch)
                taken = readable(rows, self.position, safe, _position)
                if taken:
                    self.position = taken[-1].id
                if len(taken) == len(rows) and len(rows) < self.batch:
                    self.position = max(self.position, safe)
                wanted = [n for n in taken if not self._topics or n.topic in self._topics]
                if wanted:
                    return wanted
                if taken:
                    continue
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return []
            if self.recorder.fence.held or self.position < self.recorder.fence.top:
                # Committed events wait for a transaction in flight: look again very soon.
                time.sleep(min(held_delay, remaining))
                held_delay = min(held_delay * 2, HELD_POLL_MAX)
            else:
                self._wait(min(remaining, IDLE_POLL))
        return []

    def _connect(self) -> psycopg.Connection[Any]:
        conn = own_connection(self.recorder.datastore, application_name("tail"))
        conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self.recorder.channel_name)))
        return conn

    def _advance(self, fence: Any) -> int:
        """Forgets the wake-ups so far and asks the fence; a connection a restart closed is opened again once."""
        try:
            self._drain()
            return int(fence.advance(self._conn))
        except (psycopg.OperationalError, psycopg.InterfaceError):
            self._conn.close()
            self._conn = self._connect()  # fails (and stops the runner, which restarts) if the database is away
            return int(fence.advance(self._conn))

    def _drain(self) -> None:
        """Forgets wake-ups that arrived so far: the fence query about to run covers their commits."""
        for _ in self._conn.notifies(timeout=0):
            pass

    def _wait(self, timeout: float) -> None:
        for _ in self._conn.notifies(timeout=timeout, stop_after=1):
            return

    def stop(self) -> None:
        super().stop()

    def __exit__(self, *args: object, **kwargs: Any) -> None:
        try:
            super().__exit__(*args, **kwargs)
        finally:
            self.close()

    def close(self) -> None:
        self._has_been_stopped = True
        if not self._conn.closed:
            self._conn.close()

    def __next__(self) -> Notification:
        while not self._buffer:
            if self._has_been_stopped:
                raise StopIteration
            self._buffer = self.next_batch(IDLE_POLL)
        return self._buffer.pop(0)


def _position(notification: Notification) -> int:
    return notification.id
