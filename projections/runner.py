"""Runs projections: one leader per projection (PostgreSQL advisory lock), restart after errors."""

from __future__ import annotations

import logging
import threading
import zlib
from collections.abc import Mapping

import psycopg
from eventsourcing.projection import ProjectionRunner

from ledger.application import TaskLedger
from projections.registry import PROJECTIONS

log = logging.getLogger(__name__)
LOCK_SPACE = 0x7A5C


def lock_key(name: str) -> int:
    """A bigint advisory-lock key unique to one projection."""
    return (LOCK_SPACE << 32) | zlib.crc32(f"projection:{name}".encode())


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
        self.last_error: str | None = None

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                self._lead()
            except Exception as exc:  # noqa: BLE001 -- report, back off, and try again from the tracked position
                self.failures += 1
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.error("projection %s stopped: %s; restarting from its tracked position",
                          self.projection_name, self.last_error)
                self.stopping.wait(min(self.retry_delay * 2 ** min(self.failures, 5), 30))

    def _lead(self) -> None:
        with psycopg.connect(self.conninfo, autocommit=True) as lock_conn:
            while not self.stopping.is_set():
                got = lock_conn.execute("SELECT pg_try_advisory_lock(%s::bigint)",
                                        (lock_key(self.projection_name),)).fetchone()
                if got and got[0]:
                    break
                self.stopping.wait(1.0)
            else:
                return
            log.info("projection %s: leading", self.projection_name)
            projection_class, view_class = PROJECTIONS[self.projection_name]
            with ProjectionRunner(application_class=TaskLedger, projection_class=projection_class,
                                  view_class=view_class, env=self.env) as runner:
                while not self.stopping.is_set():
                    runner.run_forever(timeout=0.5)
                    if runner.is_interrupted.is_set() and not self.stopping.is_set():
                        raise RuntimeError("projection runner stopped without an error")
                    lock_conn.execute("SELECT 1")


def start_projections(env: Mapping[str, str], conninfo: str, stopping: threading.Event,
                      names: list[str] | None = None) -> list[SupervisedProjection]:
    threads = [SupervisedProjection(name, env, conninfo, stopping) for name in (names or list(PROJECTIONS))]
    for thread in threads:
        thread.start()
    return threads
