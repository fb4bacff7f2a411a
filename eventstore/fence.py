"""The read fence: the highest log position no unfinished transaction can still commit an id at or below.

Writers take their transaction id (`pg_current_xact_id()`) before their notification ids. A fence
query reads, in one statement, the highest committed position P, a fresh transaction id X of its
own (assigned after P was read, so greater than the id of every transaction that could hold a
position at or below P) and the xmin of the current snapshot (the oldest transaction id still
running). P becomes safe once a later query sees xmin >= X: every transaction that could still
have committed a position at or below P has finished by then. docs/architecture.md has the
argument in full.

The fence matters only for gaps. Positions are unique, so a run of committed positions with no gap
after what a reader has read can be read at once: nothing can ever commit inside it. A gap is a
transaction still in flight, or one that rolled back; the fence tells the two apart.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from psycopg import sql

T = TypeVar("T")
# Positions a one-off read looks at past the fence for a gap-free run.
HEAD_SCAN = 10000
QUERY = ("SELECT pg_current_xact_id()::text::bigint AS xid, "
         "pg_snapshot_xmin(pg_current_snapshot())::text::bigint AS xmin, "
         "(SELECT max(notification_id) FROM {events}) AS top")


@dataclass(frozen=True)
class Candidate:
    position: int
    xid: int
    seen: float


class Fence:
    """Advances the safe read position of one event table; shared by the threads of a process."""

    def __init__(self, events_table: sql.Composable) -> None:
        self.query = sql.SQL(QUERY).format(events=events_table).as_string()
        self.positions = sql.SQL("SELECT notification_id FROM {} WHERE notification_id > %s "
                                 "AND notification_id <= %s ORDER BY notification_id LIMIT %s").format(
            events_table).as_string()
        self.safe = 0
        self.top = 0
        self._pending: deque[Candidate] = deque()
        self._lock = threading.Lock()
        self.advances = 0

    def advance(self, conn: Any) -> int:
        """One fence query on an autocommit connection: validates older candidates, registers a new one."""
        row = conn.execute(self.query).fetchone()
        xid, xmin, top = int(_value(row, "xid", 0)), int(_value(row, "xmin", 1)), _value(row, "top", 2) or 0
        with self._lock:
            self.advances += 1
            while self._pending and self._pending[0].xid <= xmin:
                self.safe = max(self.safe, self._pending.popleft().position)
            if top > max(self.safe, self._pending[-1].position if self._pending else 0):
                self._pending.append(Candidate(top, xid, time.monotonic()))
            self.top = max(self.top, top)
            return self.safe

    @property
    def held(self) -> bool:
        """Whether committed positions wait behind the fence (a later query will release them)."""
        with self._lock:
            return bool(self._pending)

    def held_for(self) -> float:
        """Seconds the oldest waiting candidate has waited (0 when nothing waits)."""
        with self._lock:
            return time.monotonic() - self._pending[0].seen if self._pending else 0.0

    def settle(self, conn: Any, timeout: float) -> int:
        """The safe position after at most `timeout` seconds of waiting for the transactions in flight now."""
        safe = self.advance(conn)
        deadline = time.monotonic() + timeout
        delay = 0.0005
        target = self.top
        while safe < target and time.monotonic() < deadline:
            time.sleep(delay)
            delay = min(delay * 2, 0.02)
            safe = self.advance(conn)
        return safe


    def readable_head(self, conn: Any, after: int = 0, timeout: float = 0.5) -> int:
        """The highest position a reader that has read `after` may pass now: behind the fence, or gap-free.

        Waits (at most `timeout` seconds) for the transactions in flight now when a gap is below the top.
        """
        safe = self.advance(conn)
        while True:
            top, start = self.top, max(after, safe)
            ids = [int(_value(r, "notification_id", 0)) for r in
                   conn.execute(self.positions, (start, top, HEAD_SCAN)).fetchall()]
            taken = readable(ids, start, safe, int)
            head = taken[-1] if taken else start
            if head >= top or timeout <= 0:
                return head
            safe, timeout = self.settle(conn, timeout), 0.0


def readable(rows: Sequence[T], after: int, safe: int, position: Callable[[T], int]) -> list[T]:
    """The rows (in position order, all after `after`) a reader may take: up to the fence, then while gap-free."""
    taken: list[T] = []
    expected = after + 1
    for row in rows:
        at = position(row)
        if at != expected and at > safe:
            break
        taken.append(row)
        expected = at + 1
    return taken


def _value(row: Any, key: str, index: int) -> Any:
    return row[key] if isinstance(row, dict) else row[index]
