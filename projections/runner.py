"""Runs projections: one leader per projection (PostgreSQL advisory lock), restart after errors.

The leader also hands its lead over on request: a rebuild (`taskledger rebuild`) queues for the
lock with `request_lead`; the leader sees the waiting request between events, stops its runner
(the event in hand is finished and committed), releases the lock and then tries to lead again.
When it gets the lock back it starts from the tracked position, which the rebuild may have moved.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import zlib
from collections.abc import Mapping
from typing import Any

import psycopg
from eventsourcing.persistence import InfrastructureFactory, InterfaceError, OperationalError
from eventsourcing.utils import Environment

from eventstore.connect import application_name
from ledger.application import TaskLedger
from projections.batching import BatchRunner
from projections.registry import PROJECTIONS

# The database restarting or unreachable: expected now and then, a warning (a bug in a projection is an error).
DATABASE_AWAY = (psycopg.OperationalError, psycopg.InterfaceError, OperationalError, InterfaceError)
# Seconds between looks for a rebuild queueing for the lead.
HANDOVER_CHECK = 0.25

log = logging.getLogger(__name__)
LOCK_SPACE = 0x7A5C

# Sessions holding (granted) or waiting for (not granted) the key; only `request_lead` waits, runners only try.
LEAD_LOCKS = """
SELECT EXISTS (SELECT 1 FROM pg_locks
               WHERE locktype = 'advisory' AND granted = %s AND objsubid = 1
                 AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
                 AND classid = %s::bigint::oid AND objid = %s::bigint::oid)
"""


def lock_key(name: str) -> int:
    """A bigint advisory-lock key unique to one projection."""
    return (LOCK_SPACE << 32) | zlib.crc32(f"projection:{name}".encode())


def handover_requested(conn: psycopg.Connection[Any], name: str) -> bool:
    """Whether a session waits for this projection's leader lock (a rebuild asking for the lead)."""
    return _lead_lock(conn, name, granted=False)


def lead_held(conn: psycopg.Connection[Any], name: str) -> bool:
    """Whether some session holds this projection's leader lock (a runner leads, or a rebuild switches)."""
    return _lead_lock(conn, name, granted=True)


def _lead_lock(conn: psycopg.Connection[Any], name: str, granted: bool) -> bool:
    key = lock_key(name)
    row = conn.execute(LEAD_LOCKS, (granted, key >> 32, key & 0xFFFFFFFF)).fetchone()
    return bool(row and row[0])


def request_lead(conn: psycopg.Connection[Any], name: str, timeout: float) -> None:
    """Blocks until `conn` (autocommit) holds the projection's leader lock; a running leader hands over.

    Raises psycopg.errors.LockNotAvailable when no leader let go within `timeout` seconds.
    """
    conn.execute(f"SET lock_timeout = {max(1, int(timeout * 1000))}")
    try:
        conn.execute("SELECT pg_advisory_lock(%s::bigint)", (lock_key(name),))
    finally:
        conn.execute("SET lock_timeout = 0")


def release_lead(conn: psycopg.Connection[Any], name: str) -> None:
    conn.execute("SELECT pg_advisory_unlock(%s::bigint)", (lock_key(name),))


class SupervisedProjection(threading.Thread):
    """Keeps one projection running while this process holds its leader lock."""

    def __init__(self, name: str, env: Mapping[str, str], conninfo: str,
                 stopping: threading.Event, retry_delay: float = 1.0) -> None:
        super().__init__(name=f"projection-{name}", daemon=True)
        self.projection_name = name
        self.env = dict(env)
        self.conninfo = conninfo
        self.stopping = stopping
        self.retry_delay = retry_delay
        self.failures = 0
        self.handovers = 0
        self.handed_over_at = float("-inf")
        self.leading = threading.Event()
        self.last_error: str | None = None
        self.runner: BatchRunner | None = None

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                self._lead()
            except Exception as exc:  # noqa: BLE001 -- report, back off, and try again from the tracked position
                self.failures += 1
                self.last_error = f"{type(exc).__name__}: {exc}"
                unreachable = isinstance(exc, DATABASE_AWAY)
                (log.warning if unreachable else log.error)(
                    "projection %s stopped: %s; restarting from its tracked position%s", self.projection_name,
                    self.last_error, " once the database answers" if unreachable else "")
                self.stopping.wait(min(self.retry_delay * 2 ** min(self.failures, 5), 30))

    def _lead(self) -> None:
        with psycopg.connect(self.conninfo, autocommit=True,
                             application_name=application_name(f"lead-{self.projection_name}")) as lock_conn:
            if not self._acquire(lock_conn):
                return
            self.leading.set()
            log.info("projection %s: leading", self.projection_name)
            try:
                self._project(lock_conn)
            finally:
                self.leading.clear()
                with contextlib.suppress(psycopg.Error):
                    release_lead(lock_conn, self.projection_name)

    def _acquire(self, lock_conn: psycopg.Connection[Any]) -> bool:
        while not self.stopping.is_set():
            got = lock_conn.execute("SELECT pg_try_advisory_lock(%s::bigint)",
                                    (lock_key(self.projection_name),)).fetchone()
            if got and got[0]:
                return True
            # Soon after a handover the rebuild gives the lead back within seconds: ask more often then.
            self.stopping.wait(0.1 if time.monotonic() - self.handed_over_at < 60 else 1.0)
        return False

    def _project(self, lock_conn: psycopg.Connection[Any]) -> None:
        """Runs the projection until stopped, failed, or asked to hand over (then it returns to queue again)."""
        _, view_class = PROJECTIONS[self.projection_name]
        app = TaskLedger(self.env)
        factory = InfrastructureFactory.construct(Environment(self.projection_name, self.env))
        view = factory.tracking_recorder(view_class)
        try:
            with BatchRunner(app, view, self.projection_name) as runner:
                self.runner = runner
                checked = time.monotonic()
                while not self.stopping.is_set():
                    runner.run_once(timeout=0.5)
                    if time.monotonic() - checked < HANDOVER_CHECK:
                        continue
                    checked = time.monotonic()
                    if handover_requested(lock_conn, self.projection_name):
                        self.handovers += 1
                        self.handed_over_at = time.monotonic()
                        log.info("projection %s: handing the lead over on request (a rebuild)",
                                 self.projection_name)
                        return
        finally:
            factory.close()
            app.close()


def start_projections(env: Mapping[str, str], conninfo: str, stopping: threading.Event,
                      names: list[str] | None = None) -> list[SupervisedProjection]:
    threads = [SupervisedProjection(name, env, conninfo, stopping) for name in (names or list(PROJECTIONS))]
    for thread in threads:
        thread.start()
    return threads
