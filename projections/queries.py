"""The query interface the API reads through, and its PostgreSQL implementation."""

from __future__ import annotations

import base64
import dataclasses
import binascii
import json
import re
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from collections.abc import Mapping, Sequence
from typing import Any, Protocol, cast
from uuid import UUID

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from projections.registry import PROJECTIONS
from projections.tables import APPLICATION, EVENTS_TABLE, tracking_table
from projections.schema import ACTIVE_SCHEDULE, LEASE_EXPIRED, STOPPED_SCHEDULE

# What a list sorts by: a column of the task view (each with its index, projections.schema).
SORT_KEYS: dict[str, sql.Composable] = {
    "created_at": sql.Identifier("created_at"), "updated_at": sql.Identifier("updated_at"),
    "name": sql.Identifier("name"), "state": sql.Identifier("state"), "kylin_cube": sql.Identifier("kylin_cube")}
SORTABLE = tuple(SORT_KEYS)
# Fewer characters than this hold no trigram: such a substring is matched without the trigram index (which
# would be read whole), by the other filters and the sort's index.
TRIGRAM = 3
# Seconds a read waits for a pooled connection before it counts the database as unreachable.
CONNECT_WAIT = 2.0
# Seen from pg_stat_activity: every database of the server, since transaction ids are server-wide.
OLDEST_TRANSACTION = """
SELECT pid, datname AS database, application_name, state,
       round(extract(epoch FROM now() - xact_start)::numeric, 3)::float AS open_seconds
FROM pg_stat_activity WHERE backend_xid IS NOT NULL AND pid <> pg_backend_pid()
ORDER BY age(backend_xid) DESC LIMIT 1
"""
_EVENTS = sql.Identifier(EVENTS_TABLE)
RUN_SORTABLE = ("time", "run", "status", "took_ms")
# A page of recurring tasks (the dashboard's schedules): active ones by the scheduler's index, stopped ones
# by theirs, each walked in id order from `after` and stopped at the page; the document of the page's rows
# is read once each (json_to_record), for the few keys shown.
SCHEDULES = """
SELECT s.id, s.namespace, s.name, s.state, s.updated_at, d.schedule,
       coalesce(d.schedule_cursor, d.created_at) AS cursor, d.run_count, d.last_run_time, d.occurrence_count,
       d.current_run, CASE WHEN json_typeof(d.pending_runs) = 'array' THEN json_array_length(d.pending_runs)
                      ELSE 0 END AS waiting_runs
FROM ((SELECT id, namespace, name, state, updated_at, doc FROM tasks
       WHERE {active} AND id > %(after)s {namespace} ORDER BY id LIMIT %(limit)s)
      UNION ALL
      (SELECT id, namespace, name, state, updated_at, doc FROM tasks
       WHERE {stopped} AND id > %(after)s {namespace} ORDER BY id LIMIT %(limit)s)
      ORDER BY id LIMIT %(limit)s) AS s,
     json_to_record(s.doc) AS d(schedule json, schedule_cursor text, created_at text, run_count integer,
                                last_run_time text, occurrence_count integer, pending_runs json, current_run json)
ORDER BY s.id
"""
SCHEDULE_COUNTS = """
SELECT (SELECT count(*) FROM (SELECT 1 FROM tasks WHERE {active} {namespace} LIMIT %(up_to)s) AS a) AS active,
       (SELECT count(*) FROM (SELECT 1 FROM tasks WHERE {stopped} {namespace} LIMIT %(up_to)s) AS b) AS stopped
"""
# The newest runs the watchdog ended, by their own (small) index; the deadline is the message's.
LEASE_EXPIRIES = """
SELECT r.task_id, r.attempt AS lease_epoch, r.worker, r.started_at, r.ended_at, r.outcome, r.message,
       substring(r.message from 'no heartbeat by (.*)$') AS deadline, t.namespace, t.name, t.state
FROM (SELECT task_id, attempt, worker, started_at, ended_at, outcome, message FROM task_runs
      WHERE {expired} ORDER BY ended_at DESC, task_id DESC, attempt DESC LIMIT %(limit)s) AS r
LEFT JOIN tasks AS t ON t.id = r.task_id
ORDER BY r.ended_at DESC, r.task_id DESC, r.attempt DESC
"""

# /metrics (docs/observability.md): the namespaces found one by one along (namespace, state, …) (a skip scan:
# one index probe each, however many tasks), then every (namespace, state) counted up to its state's bound.
TASKS_BY_NAMESPACE_STATE = """
WITH RECURSIVE ns(namespace) AS (
    (SELECT namespace FROM tasks WHERE NOT dropped ORDER BY namespace LIMIT 1)
    UNION ALL
    SELECT (SELECT t.namespace FROM tasks AS t WHERE NOT t.dropped AND t.namespace > ns.namespace
            ORDER BY t.namespace LIMIT 1)
    FROM ns WHERE ns.namespace IS NOT NULL
)
SELECT found.namespace, s.state,
       (SELECT count(*) FROM (SELECT 1 FROM tasks AS t WHERE NOT t.dropped AND t.namespace = found.namespace
                              AND t.state = s.state LIMIT s.up_to) AS m) AS n, s.up_to
FROM (SELECT namespace FROM ns WHERE namespace IS NOT NULL LIMIT %(max_namespaces)s) AS found
CROSS JOIN unnest(%(states)s::text[], %(bounds)s::integer[]) AS s(state, up_to)
"""
# The two along their partial indexes (projections.schema): what they cost grows with the expiries and the
# skipped or missed occurrences, not with the tasks.
DOMAIN_TOTALS = """
SELECT (SELECT count(*) FROM task_runs WHERE {expired}) AS lease_expiries,
       (SELECT count(*) FROM task_occurrences WHERE status IN ('skipped', 'missed') AND status = 'skipped') AS skipped,
       (SELECT count(*) FROM task_occurrences WHERE status IN ('skipped', 'missed') AND status = 'missed') AS missed,
       current_setting('server_version') AS postgres
"""


Rows = list[dict[str, Any]]
Ids = list[UUID]


class InvalidCursorError(ValueError):
    """The pagination cursor was not produced by this query."""


# PostgreSQL's refusal of a connection when every slot is taken (SQLSTATE 53300): for the API's log and the CLI.
SERVER_FULL = re.compile(r"too many (clients|connections)|remaining connection slots")


class ReadSideUnavailableError(Exception):
    """The read tables' database did not answer (restarting, or unreachable); worth retrying shortly."""


@dataclass(frozen=True)
class TaskFilter:
    """Which tasks a list asks for; None means 'any'."""

    states: tuple[str, ...] = ()
    namespace: str | None = None
    namespace_prefix: str | None = None
    facade: str | None = None
    type: str | None = None
    name_prefix: str | None = None
    worker: str | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None
    updated_after: datetime | None = None
    updated_before: datetime | None = None
    submitter: str | None = None
    labels: tuple[tuple[str, str], ...] = ()  # each key with that value
    label_keys: tuple[str, ...] = ()  # each key present, any value
    name_contains: str | None = None  # in any case
    error_contains: str | None = None  # in any case
    kylin_cube_contains: str | None = None  # in any case, in a Kylin job's cube
    # Tasks matching this other filter are listed too (an OR of the two).
    also: TaskFilter | None = None


@dataclass(frozen=True)
class TaskPage:
    items: Rows
    total: int
    next_cursor: str | None
    total_is_estimate: bool = False  # the planner's estimate: more than the exact-count bound matched


class TaskView(Protocol):
    """What the API may ask of the read side."""

    def get(self, task_id: UUID) -> dict[str, Any] | None: ...

    def find_external(self, namespace: str, external_id: str) -> dict[str, Any] | None: ...

    def output_pages(self, task_id: UUID, buffer: str, from_sequence: int, max_bytes: int) -> Rows: ...

    def list(self, flt: TaskFilter, sort: str = "created_at", descending: bool = False,
             cursor: str | None = None, limit: int = 50, offset: int = 0,
             exact_up_to: int | None = None, count: bool = True) -> TaskPage: ...

    def count_by_state(self, flt: TaskFilter, up_to: int) -> dict[str, int]: ...

    def count_each_state(self, flt: TaskFilter, states: Sequence[str], up_to: int) -> dict[str, int]: ...

    def claim_candidates(self, namespace: str | None, type: str | None, limit: int) -> Ids: ...

    def runs(self, task_id: UUID) -> Rows: ...

    def schedule_runs(self, task_id: UUID, *, sort: str = "time", descending: bool = True, limit: int = 50,
                      offset: int = 0) -> tuple[Rows, int]: ...

    def schedules(self, after: UUID | None, limit: int, namespace: str | None = None) -> Rows: ...

    def schedule_counts(self, up_to: int, namespace: str | None = None) -> dict[str, int]: ...

    def lease_expiries(self, limit: int) -> Rows: ...

    def status(self) -> Rows: ...

    def wait_for(self, position: int, timeout: float) -> bool: ...

    def head(self) -> int: ...

    def ping(self) -> None: ...


class PostgresTaskView:
    """Reads the task view and run history tables with plain SQL."""

    def __init__(self, conninfo: str, min_size: int = 1, max_size: int = 8, connect_wait: float = CONNECT_WAIT
                 ) -> None:
        # Connections beyond min_size that a burst opened close after a minute unused. Reads are never
        # prepared: a prepared list query may get PostgreSQL's generic plan, made without the values, which
        # cannot use a LIKE prefix's range nor judge a filter's selectivity (a bounded count then reads the
        # whole table); every read is planned for its own values instead.
        # JIT is off for reads: compiling a list query's expressions costs 10-100 ms where the whole query
        # costs a few (PostgreSQL compiles any plan costed above jit_above_cost, as a bounded count may be).
        # Sequential scans are not synchronized: a bounded count that scans would otherwise start wherever
        # another reader's scan of the table is, and a run of non-matching rows there (a bulk action's 100 000
        # unlabelled tasks at the end of the table) held every concurrent label count for 120-190 ms at once.
        given = str(conninfo_to_dict(conninfo).get("options") or "")
        conninfo = make_conninfo(conninfo, options=f"{given} -c jit=off -c synchronize_seqscans=off".strip())
        self.pool = ConnectionPool(conninfo, min_size=min_size, max_size=max_size, open=False, max_idle=60.0,
                                   kwargs={"row_factory": dict_row, "autocommit": True, "prepare_threshold": None})
        self.connect_wait = connect_wait  # a replica's is short: its reads fail over (projections/replica.py)

    def open(self) -> None:
        self.pool.open(wait=True, timeout=30)

    def close(self) -> None:
        self.pool.close()

    def _all(self, query: Any, params: Any = (), settings: tuple[str, ...] = ()) -> Rows:
        """The rows of a read; a connection the server closed (a restart) is replaced and the read tried once
        more, then an unreachable database is ReadSideUnavailableError (the API answers 503). `settings` are
        planner settings (`SET LOCAL`) for this read alone."""
        for attempt in (1, 2):
            try:
                with self.pool.connection(timeout=self.connect_wait) as conn:
                    if not settings:
                        return cast(Rows, conn.execute(query, params).fetchall())
                    with conn.transaction():
                        for setting in settings:
                            conn.execute(sql.SQL("SET LOCAL {}").format(sql.SQL(setting)))
                        return cast(Rows, conn.execute(query, params).fetchall())
            except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
                if attempt == 2:
                    raise ReadSideUnavailableError(f"the read tables' database did not answer: {exc}") from exc
                self.pool.check()  # drops every idle connection the server closed, opens fresh ones
        raise AssertionError("unreachable")

    def ping(self) -> None:
        self._all("SELECT 1")

    def get(self, task_id: UUID) -> dict[str, Any] | None:
        rows = self._all("SELECT doc FROM tasks WHERE id = %s", (task_id,))
        return rows[0]["doc"] if rows else None

    def find_external(self, namespace: str, external_id: str) -> dict[str, Any] | None:
        """A task by the id its own ecosystem knows it by (openLooKeng task id, HugeGraph number)."""
        rows = self._all("SELECT doc FROM tasks WHERE namespace = %s AND external_id = %s",
                         (namespace, external_id))
        return rows[0]["doc"] if rows else None

    def output_pages(self, task_id: UUID, buffer: str, from_sequence: int, max_bytes: int) -> Rows:
        """Pages of an output buffer from a sequence on, at least one and then up to max_bytes of data."""
        rows = self._all("SELECT sequence, data, positions, last FROM task_output_pages "
                         "WHERE task_id = %s AND buffer = %s AND sequence >= %s ORDER BY sequence LIMIT 1000",
                         (task_id, buffer, from_sequence))
        taken: Rows = []
        size = 0
        for row in rows:
            if taken and size + len(row["data"]) > max_bytes:
                break
            taken.append(row)
            size += len(row["data"])
        return taken

    def list(self, flt: TaskFilter, sort: str = "created_at", descending: bool = False,
             cursor: str | None = None, limit: int = 50, offset: int = 0,
             exact_up_to: int | None = None, count: bool = True) -> TaskPage:
        """A page of matching tasks and their total: exact (counted), or, with `exact_up_to`, exact up to that
        many and the planner's estimate beyond (a count of a large result costs what the result is large).
        Without `count` nothing is counted (a reader walking every page needs no total): `total` is 0."""
        if sort not in SORTABLE:
            raise ValueError(f"sort must be one of {', '.join(SORTABLE)}")
        query, page_params = _page_query(flt, sort, descending, cursor)
        rows = self._all(query, [*page_params, limit + 1, offset])
        more = len(rows) > limit
        if not count:
            total, estimated = 0, False
        elif cursor is None and not more and (rows or offset == 0):
            total, estimated = offset + len(rows), False  # the first page holds them all: nothing to count
        else:
            total, estimated = self._total(flt, exact_up_to, offset + len(rows))
        rows = rows[:limit]
        next_cursor = _encode_cursor(sort, rows[-1]["sort_value"], rows[-1]["id"]) if more and rows else None
        return TaskPage([r["doc"] for r in rows], total, next_cursor, estimated)

    def plans(self, flt: TaskFilter, sort: str = "created_at", descending: bool = False, limit: int = 50,
              count_bound: int = 200) -> tuple[Any, Any]:
        """EXPLAIN (FORMAT JSON) of a list's page and of its bounded count (docs/indexes.md; tests check them)."""
        query, params = _page_query(flt, sort, descending, None)
        where, count_params = _where(flt)
        bounded = sql.SQL("SELECT count(*) AS n FROM (SELECT 1 FROM tasks WHERE {} LIMIT %s) AS matched").format(where)
        explain = sql.SQL("EXPLAIN (FORMAT JSON) ")
        page = self._all(explain + query, [*params, limit + 1, 0])
        counted = self._all(explain + bounded, [*count_params, count_bound + 1],
                            COUNT_BY_BITMAP if _has_substring(flt) else ())
        return _plan_of(page[0])[0]["Plan"], _plan_of(counted[0])[0]["Plan"]

    def _total(self, flt: TaskFilter, exact_up_to: int | None, at_least: int = 0) -> tuple[int, bool]:
        where, params = _where(flt)
        settings = COUNT_BY_BITMAP if _has_substring(flt) else ()
        if exact_up_to is None:
            query = sql.SQL("SELECT count(*) AS n FROM tasks WHERE {}").format(where)
            return self._all(query, params, settings)[0]["n"], False
        explain = sql.SQL("EXPLAIN (FORMAT JSON) SELECT 1 FROM tasks WHERE {}").format(where)
        if settings:
            # A substring's bounded count is a trigram bitmap, which reads every match's index entry before it
            # stops at the bound: it costs what the matches are many (16-20 ms for 20 000 of 1M tasks). When the
            # planner expects far more than the bound (and than its own floor), its estimate is the total,
            # marked as one, and nothing is counted. It is asked only when the page could not tell the total
            # (a full page, or a later one), never below the rows the page saw; like any statistic it lags the
            # table until the next ANALYZE (autovacuum's, or after a bulk drop or an archive).
            estimate = int(_plan_of(self._all(explain, params)[0])[0]["Plan"]["Plan Rows"])
            if estimate > ESTIMATE_TRUSTED_OVER * max(exact_up_to, self._substring_floor()):
                return max(estimate, at_least), True
        # Otherwise always counted up to the bound, whatever the planner expects: its statistics lag the table
        # (right after a bulk cancel it still expected 14 000 queued tasks where none was left).
        bounded = sql.SQL("SELECT count(*) AS n FROM (SELECT 1 FROM tasks WHERE {} LIMIT %s) AS matched").format(where)
        counted = int(self._all(bounded, [*params, exact_up_to + 1], settings)[0]["n"])
        if counted <= exact_up_to:
            return counted, False
        estimate = int(_plan_of(self._all(explain, params)[0])[0]["Plan"]["Plan Rows"])
        return max(estimate, counted, at_least), True  # never fewer than the rows already seen

    def _substring_floor(self) -> float:
        """The fewest rows the planner ever expects of a substring: it does not believe a pattern's share below
        0.01 % of the table (patternsel's clamp), so at 20M tasks it expects 2 000 of a substring that one task
        holds; only an estimate well above that floor says something of the matches."""
        rows = self._all("SELECT reltuples FROM pg_class WHERE oid = 'tasks'::regclass")
        return max(float(rows[0]["reltuples"]), 0.0) * 0.0001 if rows else 0.0

    def count_by_state(self, flt: TaskFilter, up_to: int) -> dict[str, int]:
        """How many matching tasks are in each state, counting at most `up_to` tasks in all (a bulk action's
        bound: a caller learns its selection is larger than that without paying for all of it)."""
        where, params = _where(flt)
        query = sql.SQL("SELECT state, count(*) AS n FROM (SELECT state FROM tasks WHERE {} LIMIT %s) AS matched "
                        "GROUP BY state").format(where)
        settings = COUNT_BY_BITMAP if _has_substring(flt) else ()
        return {r["state"]: int(r["n"]) for r in self._all(query, [*params, up_to], settings)}

    def count_each_state(self, flt: TaskFilter, states: Sequence[str], up_to: int) -> dict[str, int]:
        """How many matching tasks each state holds, each counted up to `up_to` (a dashboard's badges: one
        statement, a bounded index scan per state, so the cost does not grow with the view)."""
        parts, params = [], []
        for state in states:
            where, values = _where(dataclasses.replace(flt, states=(state,)))
            parts.append(sql.SQL("SELECT %s AS state, (SELECT count(*) FROM (SELECT 1 FROM tasks WHERE {} LIMIT %s) "
                                 "AS matched) AS n").format(where))
            params += [state, *values, up_to]
        if not parts:
            return {}
        settings = COUNT_BY_BITMAP if _has_substring(flt) else ()
        return {r["state"]: int(r["n"]) for r in self._all(sql.SQL(" UNION ALL ").join(parts), params, settings)}

    def claim_candidates(self, namespace: str | None, type: str | None, limit: int) -> Ids:
        """Queued tasks a worker may take, oldest first; a recurring task only while a triggered run waits."""
        where, params = _where(TaskFilter(namespace=namespace, type=type))
        query = sql.SQL("SELECT id FROM tasks WHERE {} AND claimable AND state = 'QUEUED' "
                        "ORDER BY created_at, id LIMIT %s").format(where)
        return [r["id"] for r in self._all(query, [*params, limit])]

    def runs(self, task_id: UUID) -> Rows:
        return self._all(
            "SELECT attempt, worker, started_at, ended_at, outcome, message, duration_ms "
            "FROM task_runs WHERE task_id = %s ORDER BY attempt", (task_id,))

    def schedule_runs(self, task_id: UUID, *, sort: str = "time", descending: bool = True, limit: int = 50,
                      offset: int = 0) -> tuple[Rows, int]:
        """One page of the occurrences of a task's schedule (run, skipped or missed), and how many there are."""
        if sort not in RUN_SORTABLE:
            raise ValueError(f"sort must be one of {', '.join(RUN_SORTABLE)}")
        order = sql.SQL("DESC") if descending else sql.SQL("ASC")
        query = sql.SQL("SELECT run, time, status, reason, message, took_ms, started_at, ended_at "
                        "FROM task_occurrences WHERE task_id = %s "
                        "ORDER BY {col} {o} NULLS LAST, run {o} LIMIT %s OFFSET %s").format(
            col=sql.Identifier(sort), o=order)
        rows = self._all(query, (task_id, limit, offset))
        total = self._all("SELECT count(*) AS n FROM task_occurrences WHERE task_id = %s", (task_id,))[0]["n"]
        return rows, total

    def active_schedules(self, after: UUID | None, limit: int) -> Rows:
        """Tasks whose schedule records occurrences, by id from `after`: id, version, schedule, cursor."""
        query = sql.SQL("SELECT id, version, doc -> 'schedule' AS schedule, "
                        "coalesce(doc ->> 'schedule_cursor', doc ->> 'created_at') AS cursor FROM tasks "
                        "WHERE {} AND id > %s ORDER BY id LIMIT %s").format(sql.SQL(ACTIVE_SCHEDULE))
        return self._all(query, (after or UUID(int=0), limit))

    def schedules(self, after: UUID | None, limit: int, namespace: str | None = None) -> Rows:
        """Recurring tasks whose schedule is active (QUEUED, RUNNING) or stopped (PAUSED, CANCELLING), by id
        from `after`: id, namespace, name, state, updated_at, schedule, cursor, run_count, last_run_time,
        occurrence_count, current_run, waiting_runs. Each kind is read along its partial index."""
        where_ns = sql.SQL("AND namespace = %(namespace)s" if namespace is not None else "")
        query = sql.SQL(SCHEDULES).format(active=sql.SQL(ACTIVE_SCHEDULE), stopped=sql.SQL(STOPPED_SCHEDULE),
                                          namespace=where_ns)
        return self._all(query, {"after": after or UUID(int=0), "limit": limit, "namespace": namespace})

    def schedule_counts(self, up_to: int, namespace: str | None = None) -> dict[str, int]:
        """How many recurring tasks are active and stopped, each counted up to `up_to` (from its index)."""
        where_ns = sql.SQL("AND namespace = %(namespace)s" if namespace is not None else "")
        query = sql.SQL(SCHEDULE_COUNTS).format(active=sql.SQL(ACTIVE_SCHEDULE),
                                                stopped=sql.SQL(STOPPED_SCHEDULE), namespace=where_ns)
        row = self._all(query, {"up_to": up_to, "namespace": namespace})[0]
        return {"active": int(row["active"]), "stopped": int(row["stopped"])}

    def lease_expiries(self, limit: int) -> Rows:
        """The newest leases the watchdog expired, newest first: task_id, lease_epoch, worker, started_at,
        ended_at (the expiry), outcome (retrying, failed, cancelled), message, deadline, and the task's
        namespace, name and state (None once its row is gone)."""
        query = sql.SQL(LEASE_EXPIRIES).format(expired=sql.SQL(LEASE_EXPIRED.replace("%", "%%")))
        return self._all(query, {"limit": limit})

    def domain_counts(self, bounds: Mapping[str, int], max_namespaces: int) -> dict[str, Any]:
        """What /metrics shows of the domain: `tasks`, rows of namespace, state, n and estimated for each state
        of `bounds` (n is exact up to the state's bound, beyond it the planner's estimate, never less), for
        the first `max_namespaces` namespaces by name; `lease_expiries`, `skipped` and `missed`, counted whole
        by their partial indexes; and the server's `postgres` version."""
        rows = self._all(TASKS_BY_NAMESPACE_STATE, {"max_namespaces": max_namespaces, "states": list(bounds),
                                                    "bounds": list(bounds.values())})
        tasks = [{**row, "n": int(row["n"]), "estimated": False} for row in rows]  # zeros too: no series vanishes
        for row in tasks:
            if row["n"] >= row["up_to"]:
                plan = self._all("EXPLAIN (FORMAT JSON) SELECT 1 FROM tasks WHERE NOT dropped AND namespace = %s "
                                 "AND state = %s", (row["namespace"], row["state"]))
                row["n"], row["estimated"] = max(row["up_to"], int(_plan_of(plan[0])[0]["Plan"]["Plan Rows"])), True
        totals = self._all(sql.SQL(DOMAIN_TOTALS).format(expired=sql.SQL(LEASE_EXPIRED.replace("%", "%%"))))[0]
        return {"tasks": tasks, **totals}

    def expired_leases(self, now: datetime, limit: int) -> Ids:
        """Running or cancelling tasks whose last heartbeat is older than their heartbeat_timeout, oldest first."""
        return [r["id"] for r in self._all(
            "SELECT id FROM tasks WHERE lease_deadline < %s AND NOT dropped ORDER BY lease_deadline LIMIT %s",
            (now, limit))]

    def status(self) -> Rows:
        """Position, head and lag of every projection; where one waits at a gap, the transaction it waits for."""
        head_row = self._all(sql.SQL("SELECT max(notification_id) AS head FROM {}").format(_EVENTS))[0]
        head = head_row["head"] or 0
        result = []
        for name in PROJECTIONS:
            position = self._position(name)
            lag = head - position
            held_at = position + 1 if lag and not self._exists(position + 1) else None
            result.append({"name": name, "position": position, "head": head, "lag_events": lag,
                           "lag_seconds": self._lag_seconds(position) if lag else 0.0, "held_at": held_at,
                           "held_by": self.oldest_transaction() if held_at is not None else None})
        return result

    def oldest_transaction(self) -> dict[str, Any] | None:
        """The oldest open transaction holding a transaction id, anywhere on the server (what log readers
        wait for at a gap), or None."""
        rows = self._all(OLDEST_TRANSACTION)
        return rows[0] if rows else None

    def _exists(self, position: int) -> bool:
        return bool(self._all(sql.SQL("SELECT 1 FROM {} WHERE notification_id = %s").format(_EVENTS), (position,)))

    def head(self) -> int:
        """The highest committed log position (a write's answer never names a higher one)."""
        return int(self._all(sql.SQL("SELECT coalesce(max(notification_id), 0) AS head FROM {}").format(_EVENTS))[0]["head"])

    def wait_for(self, position: int, timeout: float) -> bool:
        """Waits, bounded, until every projection has reached the position."""
        deadline = time.monotonic() + timeout
        delay = 0.002
        while True:
            if all(self._position(name) >= position for name in PROJECTIONS):
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(delay)
            delay = min(delay * 2, 0.05)

    def _position(self, name: str) -> int:
        table = sql.Identifier(tracking_table(name))
        rows = self._all(sql.SQL("SELECT notification_id FROM {} WHERE application_name = %s").format(table),
                         (APPLICATION,))
        return rows[0]["notification_id"] if rows else 0

    def _lag_seconds(self, position: int) -> float:
        """Age of the oldest event the projection has not applied yet."""
        rows = self._all(sql.SQL("SELECT state FROM {} WHERE notification_id > %s ORDER BY notification_id LIMIT 1")
                         .format(_EVENTS), (position,))
        if not rows:
            return 0.0
        stamp = json.loads(bytes(rows[0]["state"]))["timestamp"]["_data_"]
        return max(0.0, (datetime.now(timezone.utc) - datetime.fromisoformat(stamp)).total_seconds())


# A substring's count is never walked along a btree (an index-only scan of (name, id) filtered by the
# substring): the planner expects the matches spread evenly along the index and stops after the bound, but
# names that share a substring sit together in name order, so it read 165 000 pages to find 1 001 `ser`
# (550 ms at 1M tasks). Its trigram index (a bitmap) or a plain scan stop as they should.
COUNT_BY_BITMAP = ("enable_indexscan = off", "enable_indexonlyscan = off")
# A substring list's total is the planner's estimate, uncounted, when it expects more than this many times the
# exact-count bound (PostgresTaskView._total; docs/indexes.md).
ESTIMATE_TRUSTED_OVER = 10


def _has_substring(flt: TaskFilter) -> bool:
    return any(t is not None for t in (flt.name_contains, flt.error_contains, flt.kylin_cube_contains)) or (
        flt.also is not None and _has_substring(flt.also))


def _page_query(flt: TaskFilter, sort: str, descending: bool, cursor: str | None
                ) -> tuple[sql.Composable, list[Any]]:
    """A list's page: keyset-paged on (sort key, id); LIMIT and OFFSET are the last two parameters."""
    where, params = _where(flt)
    order = sql.SQL("DESC") if descending else sql.SQL("ASC")
    column = SORT_KEYS[sort]
    if cursor is not None:
        value, last_id = _decode_cursor(cursor, sort)
        compare = sql.SQL("<") if descending else sql.SQL(">")
        where = sql.SQL("{} AND ({}, id) {} (%s, %s)").format(where, column, compare)
        params = [*params, value, last_id]
    query = sql.SQL("SELECT doc, {col}::text AS sort_value, id FROM tasks WHERE {w} "
                    "ORDER BY {col} {o}, id {o} LIMIT %s OFFSET %s").format(col=column, w=where, o=order)
    return query, params


def _where(flt: TaskFilter) -> tuple[sql.Composable, list[Any]]:
    clause, params = _conditions(flt)
    if flt.also is None:
        return clause, params
    other, more = _conditions(flt.also)
    return sql.SQL("(({}) OR ({}))").format(clause, other), [*params, *more]


def _conditions(flt: TaskFilter) -> tuple[sql.Composable, list[Any]]:
    clauses: list[sql.Composable] = [sql.SQL("NOT dropped")]
    params: list[Any] = []

    def add(clause: str, *values: Any) -> None:
        clauses.append(sql.SQL(clause))
        params.extend(values)

    if len(flt.states) == 1:  # `= ANY` of one value would hide the order of (namespace, state, created_at)
        add("state = %s", flt.states[0])
    elif flt.states:
        add("state = ANY(%s)", list(flt.states))
    for column, value in (("namespace", flt.namespace), ("facade", flt.facade), ("type", flt.type),
                          ("worker", flt.worker), ("submitter", flt.submitter)):
        if value is not None:
            add(f"{column} = %s", value)
    for column, prefix in (("namespace", flt.namespace_prefix), ("name", flt.name_prefix)):
        if prefix is not None:
            add(f"{column} LIKE %s", _like_prefix(prefix))
    if flt.labels:  # label values are strings: containment is equality of each key's value
        wanted = dict(flt.labels)
        if len(set(flt.labels)) > len(wanted):
            add("false")  # one key asked with two values
        else:
            add("labels @> %s::jsonb", json.dumps(wanted))
    if flt.label_keys:
        add("labels ?& %s", list(flt.label_keys))
    for column, text in (("name", flt.name_contains), ("error", flt.error_contains),
                         ("kylin_cube", flt.kylin_cube_contains)):
        if text is not None:
            matched = column if len(text) >= TRIGRAM else f"({column} || '')"  # (no index matches the latter)
            add(f"{matched} ILIKE %s", f"%{_like_escaped(text)}%")
    for column, op, moment in (("created_at", ">=", flt.created_after), ("created_at", "<", flt.created_before),
                               ("updated_at", ">=", flt.updated_after), ("updated_at", "<", flt.updated_before)):
        if moment is not None:
            add(f"{column} {op} %s", moment)
    return sql.SQL(" AND ").join(clauses), params


def _plan_of(row: dict[str, Any]) -> Any:
    value = next(iter(row.values()))
    return json.loads(value) if isinstance(value, str) else value


def _like_escaped(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _like_prefix(prefix: str) -> str:
    return _like_escaped(prefix) + "%"


def _encode_cursor(sort: str, value: str, last_id: UUID) -> str:
    raw = json.dumps([sort, value, str(last_id)]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str, sort: str) -> tuple[str, UUID]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        cursor_sort, value, last_id = json.loads(base64.urlsafe_b64decode(padded))
        if cursor_sort != sort or not isinstance(value, str):
            raise ValueError
        if sort in ("created_at", "updated_at"):
            datetime.fromisoformat(value)  # a forged value must not reach the database as a timestamp
        return value, UUID(last_id)
    except (ValueError, TypeError, binascii.Error, json.JSONDecodeError):
        raise InvalidCursorError("cursor is not valid for this query; start again without it") from None
