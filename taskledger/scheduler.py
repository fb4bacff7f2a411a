"""The scheduler role: asks the ledger to record every due occurrence of every active schedule.

The view only says where to look; the ledger re-reads each task and records its occurrences on the task's
own stream, so several schedulers may run at once and each occurrence is still recorded exactly once
(the losers of a race conflict on the stream version, reload, and find nothing left to record).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Protocol
from uuid import UUID, uuid4

from ledger.application import TaskLedger
from ledger.commands import Caller, RecordOccurrences
from ledger.errors import (
    ConcurrentWriteError,
    InvalidValueError,
    LedgerError,
    TaskDroppedError,
    TaskNotFoundError,
)
from ledger.schedule import Calendar

log = logging.getLogger(__name__)
DEFAULT_GRACE = timedelta(seconds=5)
PAGE = 500
# How far ahead the next occurrence is looked for; a schedule with none in this window is looked at again then.
HORIZON = timedelta(days=1)


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


class ScheduleSource(Protocol):
    """Where the scheduler finds active schedules (projections.queries.PostgresTaskView)."""

    def active_schedules(self, after: UUID | None, limit: int) -> list[dict[str, Any]]: ...


@dataclass(frozen=True)
class NextDue:
    """A task's next occurrence as last computed, for this cursor and schedule; `look_again` when none was near."""

    key: tuple[str, str]
    occurrence: datetime | None
    look_again: datetime | None


class Scheduler:
    """One tick at a time (`run_once`); time comes from the injected clock."""

    def __init__(self, ledger: TaskLedger, view: ScheduleSource, calendar: Calendar, *,
                 clock: Callable[[], datetime] = utc_now, grace: timedelta = DEFAULT_GRACE,
                 name: str = "scheduler") -> None:
        self.ledger, self.view, self.calendar, self.clock = ledger, view, calendar, clock
        self.grace, self.name = grace, name
        self.ticks = 0
        self.instance = uuid4().hex[:8]  # tells this scheduler's writes from its replicas' in request ids
        self._next: dict[UUID, NextDue] = {}

    def run_once(self) -> int:
        """Records what is due now; answers how many tasks had something due."""
        now = self.clock()
        self.ticks += 1
        caller = Caller(self.name, f"{self.name}-{self.instance}-tick-{self.ticks}", facade="ledger")
        due, seen = 0, set()
        for row in self._rows():
            seen.add(row["id"])
            next_due = self._next_due(row, now)
            if next_due is not None and next_due <= now:
                due += 1
                self._record(row["id"], now, caller)
        self._next = {k: v for k, v in self._next.items() if k in seen}
        return due

    def _rows(self) -> Iterator[dict[str, Any]]:
        after: UUID | None = None
        while True:
            rows = self.view.active_schedules(after, PAGE)
            yield from rows
            if len(rows) < PAGE:
                return
            after = rows[-1]["id"]

    def _next_due(self, row: dict[str, Any], now: datetime) -> datetime | None:
        """The first occurrence after the view's cursor, remembered until the cursor or the schedule changes."""
        key = (row["cursor"], json.dumps(row["schedule"], sort_keys=True))
        known = self._next.get(row["id"])
        if known is not None and known.key == key and (known.look_again is None or now < known.look_again):
            return known.occurrence
        cursor = datetime.fromisoformat(row["cursor"])
        try:
            found = self.calendar.occurrences(row["schedule"], cursor, max(cursor, now) + HORIZON, 1)
        except (InvalidValueError, KeyError, TypeError) as error:
            log.warning("task %s: its schedule cannot be read (%s); skipped until it changes", row["id"], error)
            found = []
            self._next[row["id"]] = NextDue(key, None, None)
        else:
            self._next[row["id"]] = NextDue(key, found[0] if found else None, None if found else now + HORIZON)
        return found[0] if found else None

    def _record(self, task_id: UUID, now: datetime, caller: Caller) -> None:
        try:
            self.ledger.record_occurrences(RecordOccurrences(task_id, now, self.grace), caller)
        except ConcurrentWriteError:
            log.info("task %s: other schedulers kept writing; the next tick looks again", task_id)
        except (TaskNotFoundError, TaskDroppedError):
            pass  # the view lags behind a drop
        except LedgerError as error:
            log.warning("task %s: occurrences not recorded: %s", task_id, error)
