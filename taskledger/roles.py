"""The scheduler and watchdog roles as supervised threads: inside `serve`, or alone in their own process."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from datetime import timedelta

from ledger.application import TaskLedger
from projections.queries import PostgresTaskView
from taskledger import budget
from taskledger.calendar import CronCalendar
from taskledger.config import eventsourcing_env, service_conninfo
from taskledger.scheduler import DEFAULT_GRACE, Scheduler
from taskledger.watchdog import Watchdog

log = logging.getLogger(__name__)
ROLES = ("schedule", "watchdog")
DEFAULT_INTERVAL = {"schedule": 0.5, "watchdog": 1.0}


class Periodic(threading.Thread):
    """Calls `tick` every `interval` seconds until `stopping` is set; closes its resources when it ends."""

    def __init__(self, name: str, tick: Callable[[], object], interval: float, stopping: threading.Event,
                 closers: Iterable[Callable[[], object]] = ()) -> None:
        super().__init__(name=name, daemon=True)
        self.tick, self.interval, self.stopping = tick, interval, stopping
        self.closers = list(closers)
        self.failures = 0

    def run(self) -> None:
        try:
            while not self.stopping.is_set():
                try:
                    self.tick()
                except Exception as exc:  # noqa: BLE001 -- e.g. the database restarting: report, try next tick
                    self.failures += 1
                    log.error("%s: tick failed: %s: %s", self.name, type(exc).__name__, exc)
                self.stopping.wait(self.interval)
        finally:
            for close in self.closers:
                close()


def start_roles(url: str, stopping: threading.Event, roles: Iterable[str] = ROLES,
                interval: float | None = None, grace: timedelta = DEFAULT_GRACE) -> list[Periodic]:
    """Starts each role as a thread with its own ledger and view connections."""
    threads = []
    for role in roles:
        calendar = CronCalendar()
        ledger = TaskLedger(eventsourcing_env(url, pool_size=budget.ROLE_POOL, overflow=budget.ROLE_OVERFLOW),
                            calendar=calendar)
        view = PostgresTaskView(service_conninfo(url), max_size=budget.ROLE_VIEW)
        view.open()
        tick = (Scheduler(ledger, view, calendar, grace=grace).run_once if role == "schedule"
                else Watchdog(ledger, view).run_once)
        thread = Periodic(role, tick, interval or DEFAULT_INTERVAL[role], stopping, (view.close, ledger.close))
        thread.start()
        threads.append(thread)
    return threads
