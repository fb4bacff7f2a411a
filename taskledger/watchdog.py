"""The watchdog role: expires leases whose heartbeats stopped, so their tasks retry, fail or end cancelled.

The view proposes candidates; the ledger re-checks each on the task itself (a heartbeat may have come
since the view was written), so several watchdogs may run at once: a lease expires once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Protocol
from uuid import UUID, uuid4

from ledger.application import TaskLedger
from ledger.commands import Caller, ExpireLease
from ledger.errors import ConcurrentWriteError, TaskDroppedError, TaskNotFoundError

log = logging.getLogger(__name__)
BATCH = 200


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


class LeaseSource(Protocol):
    """Where the watchdog finds overdue leases (projections.queries.PostgresTaskView)."""

    def expired_leases(self, now: datetime, limit: int) -> list[UUID]: ...


class Watchdog:
    """One sweep at a time (`run_once`); time comes from the injected clock."""

    def __init__(self, ledger: TaskLedger, view: LeaseSource, *, clock: Callable[[], datetime] = utc_now,
                 name: str = "watchdog") -> None:
        self.ledger, self.view, self.clock, self.name = ledger, view, clock, name
        self.sweeps = 0
        self.instance = uuid4().hex[:8]  # tells this watchdog's writes from its replicas' in request ids

    def run_once(self) -> int:
        """Expires every overdue lease the view knows of (up to a batch); answers how many expired."""
        now = self.clock()
        self.sweeps += 1
        caller = Caller(self.name, f"{self.name}-{self.instance}-sweep-{self.sweeps}", facade="ledger")
        return sum(self._expire(task_id, now, caller) for task_id in self.view.expired_leases(now, BATCH))

    def _expire(self, task_id: UUID, now: datetime, caller: Caller) -> bool:
        try:
            written = self.ledger.expire_lease(ExpireLease(task_id, now), caller)
        except ConcurrentWriteError:
            log.info("task %s: busy with other writers; the next sweep looks again", task_id)
            return False
        except (TaskNotFoundError, TaskDroppedError):
            return False
        if written.lease_epoch is None:
            return False
        log.info("task %s: lease %s expired without a heartbeat", task_id, written.lease_epoch)
        return True
