"""Wake-ups for log readers, sent after commits and outside them, one per burst of writes.

A NOTIFY inside the writing transaction takes PostgreSQL's global notification lock before the
commit and holds it through the commit's WAL flush, so every writer would wait for every other
writer's fsync again. Here a thread per process sends the NOTIFY on a connection of its own with
asynchronous commit, after the writes it announces have committed; writes that commit while it is
sending are announced by the next one. A reader never depends on a wake-up for correctness (the
tail also looks on a timer); a wake-up only makes it look sooner.

The thread and its connection exist only while writes come: after IDLE_EXIT seconds without one
both go, and the next write starts them again.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import psycopg
from eventsourcing.postgres import PostgresDatastore
from psycopg import sql

from eventstore.connect import alive, application_name, connection_kwargs

log = logging.getLogger(__name__)
RECONNECT_DELAY = 1.0
# At most one wake-up per this many seconds per process: readers that are busy read every commit
# anyway, and an idle one is woken within this much of the first commit.
MIN_INTERVAL = 0.01
IDLE_EXIT = 10.0


class Notifier:
    """Sends `NOTIFY <channel>` after `wake()`, coalescing wake-ups that come while one is being sent."""

    def __init__(self, datastore: PostgresDatastore, channel: str) -> None:
        self.kwargs = connection_kwargs(datastore)  # not the datastore: this thread keeps nothing else alive
        self.statement = sql.SQL("NOTIFY {}").format(sql.Identifier(channel)).as_string()
        self._wanted = threading.Event()
        self._closing = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.sent = 0

    def wake(self) -> None:
        if not self._wanted.is_set():
            self._wanted.set()
        if self._thread is None:
            with self._lock:
                if self._thread is None and not self._closing.is_set():
                    self._thread = threading.Thread(target=self._run, name="eventstore-notifier", daemon=True)
                    self._thread.start()

    def _run(self) -> None:
        conn: psycopg.Connection[Any] | None = None
        try:
            while not self._closing.is_set():
                if not self._wanted.wait(timeout=IDLE_EXIT):
                    with self._lock:
                        if not self._wanted.is_set():
                            self._thread = None
                            return
                    continue
                self._wanted.clear()
                conn = self._send(conn)
                self._closing.wait(MIN_INTERVAL)
        finally:
            if conn is not None:
                conn.close()

    def _send(self, conn: psycopg.Connection[Any] | None) -> psycopg.Connection[Any] | None:
        try:
            if conn is not None and not alive(conn):  # closed by a database restart since the last one
                conn.close()
                conn = None
            if conn is None:
                conn = psycopg.Connection.connect(autocommit=True, **{
                    **self.kwargs, "application_name": application_name("notifier")})
                # A wake-up needs no durability; its commit must not wait for (or hold the queue lock through) fsync.
                conn.execute("SET synchronous_commit TO off")
            conn.execute(self.statement)
            self.sent += 1
            return conn
        except psycopg.Error as exc:
            log.warning("could not send the log wake-up (%s); readers look on their timer meanwhile", exc)
            if conn is not None:
                conn.close()
            self._closing.wait(RECONNECT_DELAY)
            return None

    def close(self) -> None:
        self._closing.set()
        self._wanted.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5)
