"""BatchRunner: the log applied to one projection's view in batches, reading the next batch while it writes.

Each batch's rows and tracking position commit in one transaction (exactly once, as before). The
next batch is read and decoded by a helper thread while the current one is written: the database
works on the write while Python decodes, instead of one waiting for the other.
"""

from __future__ import annotations

import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from eventsourcing.persistence import Tracking

from eventstore.recorder import LedgerRecorder
from eventstore.tail import LogTail
from ledger.application import TaskLedger
from projections.tables import APPLICATION

# After a small batch, events gather this long before the rest is read: fewer, larger transactions for
# the same events (a read-your-writes wait grows by at most this much).
GATHER = 0.01

Decoded = tuple[int, int, list[tuple[int, Any]]]  # (last event's position, events read, the wanted ones decoded)


class BatchRunner:
    """Applies the log to one projection's view in batches: each batch's rows and position in one transaction."""

    def __init__(self, app: TaskLedger, view: Any, name: str) -> None:
        self.app, self.view, self.name = app, view, name
        self.position = view.max_tracking_id(APPLICATION) or 0
        if not isinstance(app.recorder, LedgerRecorder):
            raise TypeError("projection runners read through eventstore.recorder.LedgerRecorder")
        self.tail = LogTail(app.recorder, self.position)
        self.applied = 0
        self.batches = 0
        self._reader = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"read-{name}")
        self._next: Future[Decoded | None] | None = None

    def run_once(self, timeout: float) -> int:
        """Applies the next batch behind the fence (waiting up to `timeout` for one); how many events it read."""
        pending = self._next or self._reader.submit(self._read, timeout)
        self._next = None
        decoded = pending.result()
        if decoded is None:
            return 0
        self._next = self._reader.submit(self._read, timeout)
        last, count, wanted = decoded
        self.view.apply_batch(wanted, Tracking(APPLICATION, last))
        self.position = last
        self.applied += count
        self.batches += 1
        return count

    def _read(self, timeout: float) -> Decoded | None:
        batch = self.tail.next_batch(timeout)
        if not batch:
            return None
        if len(batch) < self.tail.batch:
            time.sleep(GATHER)
            batch += self.tail.next_batch(0)
        decode = self.app.mapper.to_domain_event
        return batch[-1].id, len(batch), [(n.id, decode(n)) for n in batch if self.view.wants(n.topic)]

    def __enter__(self) -> BatchRunner:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._next is not None:
            self.tail.stop()
            self._next.cancel()
        self._reader.shutdown(wait=True)
        self.tail.close()
