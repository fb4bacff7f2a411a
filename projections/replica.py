"""Reads from a streaming replica: a TaskView that sends each request's reads to the replica or the primary.

A streaming replica replays the primary's WAL in commit order, so its read tables are always a prefix of the
primary's: its own projection-position rows arrive in the same transactions as the rows they describe. A
position wait done on the replica therefore guarantees what a read on the replica then sees, and anything
the replica shows the primary already has, so a request may move from the replica to the primary (never
back) at any point. docs/replicas.md has what goes where and why.
"""

from __future__ import annotations

import enum
import logging
import threading
import time
from collections.abc import Callable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, TypeVar, cast
from uuid import UUID

import psycopg
from psycopg import sql
from psycopg_pool import PoolTimeout

from projections.queries import (
    Ids, PostgresTaskView, ReadSideUnavailableError, Rows, TaskFilter, TaskPage, TaskView)
from projections.registry import PROJECTIONS
from projections.tables import APPLICATION, tracking_table

log = logging.getLogger(__name__)
T = TypeVar("T")
# Seconds reads stay on the primary after the replica failed to answer, before one read tries it again.
RETRY_AFTER = 5.0
# Seconds a replica read waits for a pooled connection before it fails over (the primary's reads wait 2 s).
CONNECT_WAIT = 0.5
REPLAY = """
SELECT pg_is_in_recovery() AS in_recovery,
       CASE WHEN NOT pg_is_in_recovery() OR pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0.0
            ELSE extract(epoch FROM now() - pg_last_xact_replay_timestamp())::float END AS replay_lag_seconds
"""
POSITION = "SELECT notification_id FROM {} WHERE application_name = %s"


class Route(enum.Enum):
    """Where one request reads."""

    PRIMARY = "primary"  # a write of the native API: reads and waits on the primary
    REPLICA = "replica"  # a GET or HEAD: reads and waits on the replica, moving to the primary if it must
    REPLICATED_WRITE = "replicated-write"  # a facade's write: reads on the primary, waits for the replica too


class Served(enum.Enum):
    """Where a GET's reads were answered from, in the end (the metric's label)."""

    REPLICA = "replica"
    FAILOVER = "primary_failover"  # the replica did not answer
    LAGGING = "primary_lagging"  # the replica had not reached Ledger-Min-Position within the wait


@dataclass
class _Request:
    route: Route
    on_replica: bool
    served: Served | None = None


_CURRENT: ContextVar[_Request | None] = ContextVar("taskledger_read_route", default=None)


# What makes the replica unusable for a read, so that it goes to the primary: it does not answer, or its schema
# is behind the primary's (a migration not yet replayed there: a table or column the query names is missing).
REPLICA_UNUSABLE = (ReadSideUnavailableError, psycopg.errors.UndefinedTable, psycopg.errors.UndefinedColumn)


def begin(route: Route) -> None:
    """Starts a request on this route (a context variable: per thread, per greenlet)."""
    _CURRENT.set(_Request(route, route is Route.REPLICA))


def finish() -> Served | None:
    """Ends the request; where its reads were answered from, if it was routed to the replica and read."""
    request = _CURRENT.get()
    _CURRENT.set(None)
    return request.served if request is not None else None


class ReplicaRoutedView:
    """The task view over a primary and a streaming replica; outside a routed request, all of it is the primary.

    Data reads follow the request's route; `head()`, `status()` and `ping()` are always the primary's (the
    log's head and the projections' own progress); `wait_for` waits where the request will read.
    """

    def __init__(self, primary: TaskView, replica: PostgresTaskView, *, retry_after: float = RETRY_AFTER,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.primary, self.replica, self.retry_after, self.clock = primary, replica, retry_after, clock
        self._down_until = 0.0
        self._down_reason: str | None = None
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ routing
    def _usable(self) -> bool:
        return self.clock() >= self._down_until

    def _failed(self, request: _Request | None, error: Exception) -> None:
        with self._lock:
            was_up = self._down_reason is None
            self._down_until, self._down_reason = self.clock() + self.retry_after, " ".join(str(error).split())[:300]
        if was_up:
            log.warning("the read replica did not answer (%s): reads go to the primary, the replica is tried "
                        "again in %g s", type(error).__name__, self.retry_after)
        if request is not None and request.on_replica:
            request.on_replica, request.served = False, Served.FAILOVER

    def _recovered(self) -> None:
        with self._lock:
            was_down, self._down_until, self._down_reason = self._down_reason is not None, 0.0, None
        if was_down:
            log.warning("the read replica answers again: GETs read from it")

    def _read(self, read: Callable[[TaskView], T]) -> T:
        request = _CURRENT.get()
        if request is None or not request.on_replica:
            return read(self.primary)
        if not self._usable():
            request.on_replica, request.served = False, Served.FAILOVER
            return read(self.primary)
        try:
            result = read(self.replica)
        except REPLICA_UNUSABLE as error:
            self._failed(request, error)
            return read(self.primary)
        if self._down_reason is not None:
            self._recovered()
        request.served = request.served or Served.REPLICA
        return result

    def wait_for(self, position: int, timeout: float) -> bool:
        """Waits where the request reads: a GET on the replica's own position rows (falling back to the
        primary's once the replica missed the whole wait), a facade write on the replica and then the
        primary, anything else on the primary."""
        request = _CURRENT.get()
        if request is None or request.route is Route.PRIMARY:
            return self.primary.wait_for(position, timeout)
        if request.route is Route.REPLICATED_WRITE:
            return self._wait_replicated(position, timeout)
        if not request.on_replica or not self._usable():
            if request.on_replica:
                request.on_replica, request.served = False, Served.FAILOVER
            return self.primary.wait_for(position, timeout)
        try:
            reached = self.replica.wait_for(position, timeout)
        except REPLICA_UNUSABLE as error:
            self._failed(request, error)
            return self.primary.wait_for(position, timeout)
        if reached or timeout <= 0:
            return reached
        if self.primary.wait_for(position, 0):
            log.warning("the read replica had not reached position %d within %g s: answered from the primary",
                        position, timeout)
            request.on_replica, request.served = False, Served.LAGGING
            return True
        return False

    def _wait_replicated(self, position: int, timeout: float) -> bool:
        """A facade write's wait: until the replica shows it (so the client's next GET does), then the primary
        (which shows whatever the replica does); the primary alone while the replica is down."""
        deadline = self.clock() + timeout
        if self._usable():
            try:
                if self.replica.wait_for(position, timeout):
                    return True
            except REPLICA_UNUSABLE as error:
                self._failed(None, error)
        return self.primary.wait_for(position, max(0.0, deadline - self.clock()))

    # ------------------------------------------------------------------ the replica's state
    def replica_status(self) -> dict[str, Any]:
        """Whether the replica answers, how far its read tables are behind the primary's projections (in events),
        and its WAL replay lag in seconds (0 once it replayed all it received)."""
        primary = {p["name"]: int(p["position"]) for p in self.primary.status()}
        try:
            positions, replay = self._replica_positions()
        except (psycopg.OperationalError, psycopg.InterfaceError, PoolTimeout) as error:
            self._failed(None, error)
            return {"status": "down", "serving": "primary", "reason": self._down_reason, "in_recovery": None,
                    "replay_lag_seconds": None, "lag_events": None, "projections": []}
        self._recovered()
        rows: Rows = [{"name": name, "position": positions[name],
                       "lag_events": max(0, primary[name] - positions[name])} for name in PROJECTIONS]
        return {"status": "up", "serving": "replica", "reason": None, "in_recovery": bool(replay["in_recovery"]),
                "replay_lag_seconds": round(float(replay["replay_lag_seconds"] or 0.0), 3),
                "lag_events": max((r["lag_events"] for r in rows), default=0), "projections": rows}

    def _replica_positions(self) -> tuple[dict[str, int], dict[str, Any]]:
        with self.replica.pool.connection(timeout=self.replica.connect_wait) as conn:
            replay = cast("dict[str, Any] | None", conn.execute(REPLAY).fetchone())  # the pool's rows are dicts
            positions = {}
            for name in PROJECTIONS:
                query = sql.SQL(POSITION).format(sql.Identifier(tracking_table(name)))
                row = cast("dict[str, Any] | None", conn.execute(query, (APPLICATION,)).fetchone())
                positions[name] = int(row["notification_id"]) if row else 0
        return positions, replay or {}

    # ------------------------------------------------------------------ always the primary
    def __getattr__(self, name: str) -> Any:
        # A read added to the view but not routed here yet is the primary's: never older than the replica.
        if name == "primary":  # not set yet (copying, unpickling): no recursion
            raise AttributeError(name)
        return getattr(self.primary, name)

    def head(self) -> int:
        return self.primary.head()

    def status(self) -> Rows:
        return self.primary.status()

    def ping(self) -> None:
        self.primary.ping()

    # ------------------------------------------------------------------ data reads, routed
    def get(self, task_id: UUID) -> dict[str, Any] | None:
        return self._read(lambda v: v.get(task_id))

    def find_external(self, namespace: str, external_id: str) -> dict[str, Any] | None:
        return self._read(lambda v: v.find_external(namespace, external_id))

    def output_pages(self, task_id: UUID, buffer: str, from_sequence: int, max_bytes: int) -> Rows:
        return self._read(lambda v: v.output_pages(task_id, buffer, from_sequence, max_bytes))

    def list(self, flt: TaskFilter, sort: str = "created_at", descending: bool = False,
             cursor: str | None = None, limit: int = 50, offset: int = 0,
             exact_up_to: int | None = None, count: bool = True) -> TaskPage:
        return self._read(lambda v: v.list(flt, sort, descending, cursor, limit, offset, exact_up_to, count))

    def count_by_state(self, flt: TaskFilter, up_to: int) -> dict[str, int]:
        return self._read(lambda v: v.count_by_state(flt, up_to))

    def count_each_state(self, flt: TaskFilter, states: Sequence[str], up_to: int) -> dict[str, int]:
        return self._read(lambda v: v.count_each_state(flt, states, up_to))

    def claim_candidates(self, namespace: str | None, type: str | None, limit: int) -> Ids:
        return self._read(lambda v: v.claim_candidates(namespace, type, limit))

    def runs(self, task_id: UUID) -> Rows:
        return self._read(lambda v: v.runs(task_id))

    def schedule_runs(self, task_id: UUID, *, sort: str = "time", descending: bool = True, limit: int = 50,
                      offset: int = 0) -> tuple[Rows, int]:
        return self._read(lambda v: v.schedule_runs(task_id, sort=sort, descending=descending, limit=limit,
                                                    offset=offset))

    def schedules(self, after: UUID | None, limit: int, namespace: str | None = None) -> Rows:
        return self._read(lambda v: v.schedules(after, limit, namespace))

    def schedule_counts(self, up_to: int, namespace: str | None = None) -> dict[str, int]:
        return self._read(lambda v: v.schedule_counts(up_to, namespace))

    def lease_expiries(self, limit: int) -> Rows:
        return self._read(lambda v: v.lease_expiries(limit))


def replica_of(view: TaskView) -> ReplicaRoutedView | None:
    """The view's replica routing, if it reads from a replica (for /readyz and /metrics)."""
    return view if isinstance(view, ReplicaRoutedView) else None
