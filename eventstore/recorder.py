"""The ledger's application recorder: appends without a table lock, in one round trip; reads behind the fence.

eventsourcing's `PostgresApplicationRecorder` takes `LOCK TABLE … IN EXCLUSIVE MODE` for every
insert so that notification ids commit in order, and holds it (and a NOTIFY's global lock) through
the commit's WAL flush: every writer waits for every other writer's fsync. This recorder instead
lets writers commit concurrently (group commit) and moves ordering to the readers: every
transaction takes its transaction id before its notification ids (the column's default does it,
so no writer can forget), and no reader passes a position until the fence (`eventstore.fence`)
says no unfinished transaction can still commit at or below it. NOTIFY leaves the write entirely:
a notifier thread per process sends one wake-up after commits (`eventstore.notifier`).

`append` is the ledger's write: many aggregates, each all-or-nothing against its expected version,
snapshots in the same transaction, one statement, one round trip. It never raises on a stale
aggregate; it reports which aggregates were written.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar, cast
from uuid import UUID

import psycopg
from eventsourcing.persistence import (
    IntegrityError,
    InterfaceError,
    Notification,
    OperationalError,
    ProgrammingError,
    StoredEvent,
    Subscription,
)
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore
from psycopg import sql

from eventstore.connect import alive
from eventstore.fence import Fence
from eventstore.notifier import Notifier
from eventstore.tail import LogTail
from ledger.store import Append, Appended, Stream

log = logging.getLogger(__name__)
T = TypeVar("T")
ATTEMPTS = 3
# Seconds a statement waits for a pooled connection before the database counts as unreachable.
CONNECT_WAIT = 2.0
# How long a one-off read (the /events feed, an export) waits for transactions in flight at its start.
SETTLE_TIMEOUT = 0.5


# Every new row's notification id comes after its transaction's id: the order the fence relies on.
POSITION_FUNCTION = """
CREATE OR REPLACE FUNCTION {function}() RETURNS bigint LANGUAGE sql VOLATILE AS $$
    SELECT CASE WHEN pg_current_xact_id() IS NOT NULL THEN nextval({sequence}::regclass) END
$$"""
POSITION_DEFAULT = "ALTER TABLE {events} ALTER COLUMN notification_id SET DEFAULT {function}()"
DEFAULT_OF = """
SELECT pg_get_expr(d.adbin, d.adrelid) FROM pg_attrdef d
JOIN pg_attribute a ON a.attrelid = d.adrelid AND a.attnum = d.adnum
WHERE d.adrelid = %s::regclass AND a.attname = 'notification_id'
"""

# The common write: one event of one aggregate. Versions are gap-free, so "no event at this version yet"
# is "the expected version is still current"; ON CONFLICT waits for a writer in flight and never errors.
WRITE_ONE = """
INSERT INTO {events} (originator_id, originator_version, topic, state)
VALUES (%(id)s, %(version)s, %(topic)s, %(state)s)
ON CONFLICT (originator_id, originator_version) DO NOTHING
RETURNING originator_id, originator_version, notification_id
"""

# A batch of aggregates with one event each (heartbeats): the same guard, row by row.
WRITE_SINGLES = """
WITH written AS (
    INSERT INTO {events} (originator_id, originator_version, topic, state)
    SELECT originator_id, originator_version, topic, state
    FROM unnest(%(ids)b::uuid[], %(versions)b::bigint[], %(topics)b::text[], %(states)b::bytea[],
                %(firsts)b::bigint[]) WITH ORDINALITY AS b(originator_id, originator_version, topic, state, first, n)
    ORDER BY n
    ON CONFLICT (originator_id, originator_version) DO NOTHING
    RETURNING originator_id, originator_version, notification_id
){snapshots}
SELECT originator_id, originator_version, notification_id FROM written
"""

# Several events of one aggregate must go in all together or not at all: guarded on the first one's version
# (a writer in flight that took it makes the statement fail; it is written again and then finds it stale).

WRITE = """
WITH batch AS (
    SELECT * FROM unnest(%(ids)b::uuid[], %(versions)b::bigint[], %(topics)b::text[], %(states)b::bytea[],
                         %(firsts)b::bigint[]) WITH ORDINALITY
        AS b(originator_id, originator_version, topic, state, first_version, n)
), fresh AS (
    SELECT * FROM batch b WHERE NOT EXISTS (
        SELECT 1 FROM {events} e
        WHERE e.originator_id = b.originator_id AND e.originator_version >= b.first_version)
), written AS (
    INSERT INTO {events} (originator_id, originator_version, topic, state)
    SELECT originator_id, originator_version, topic, state FROM fresh ORDER BY n
    RETURNING originator_id, originator_version, notification_id
){snapshots}
SELECT originator_id, originator_version, notification_id FROM written
"""

SNAPSHOTS = """, snapshotted AS (
    INSERT INTO {snapshots} (originator_id, originator_version, topic, state)
    SELECT s.* FROM unnest(%(s_ids)b::uuid[], %(s_versions)b::bigint[], %(s_topics)b::text[],
                           %(s_states)b::bytea[]) AS s(originator_id, originator_version, topic, state)
    WHERE s.originator_id IN (SELECT originator_id FROM {written})
    ON CONFLICT DO NOTHING
)"""

# One round trip for cold loads and catch-ups alike: per aggregate, the latest snapshot newer than the
# version the caller knows (if any) and every event after the newer of the two.
READ_STREAMS = """
WITH k AS (SELECT * FROM unnest(%(ids)b::uuid[], %(known)b::bigint[]) AS k(id, known)),
s AS (
    SELECT DISTINCT ON (sn.originator_id) sn.originator_id, sn.originator_version, sn.topic, sn.state
    FROM {snapshots} sn JOIN k ON sn.originator_id = k.id AND sn.originator_version > k.known AND %(use)s
    ORDER BY sn.originator_id, sn.originator_version DESC
)
SELECT true AS snap, originator_id, originator_version, topic, state FROM s
UNION ALL
SELECT false, e.originator_id, e.originator_version, e.topic, e.state
FROM k JOIN {events} e ON e.originator_id = k.id
WHERE e.originator_version > greatest(k.known, coalesce((SELECT s.originator_version FROM s WHERE s.originator_id = k.id), 0))
ORDER BY 2, 1 DESC, 3
"""

READ_STREAM = """
SELECT true AS snap, originator_id, originator_version, topic, state FROM (
    SELECT * FROM {snapshots} WHERE originator_id = %(id)s AND originator_version > %(known)s AND %(use)s
    ORDER BY originator_version DESC LIMIT 1) s
UNION ALL
SELECT false, originator_id, originator_version, topic, state FROM {events}
WHERE originator_id = %(id)s AND originator_version > greatest(%(known)s, coalesce((
    SELECT max(originator_version) FROM {snapshots}
    WHERE originator_id = %(id)s AND originator_version > %(known)s AND %(use)s), 0))
ORDER BY 1 DESC, 3
"""

SELECT = """
SELECT notification_id, originator_id, originator_version, topic, state FROM {events}
WHERE notification_id > %s AND notification_id <= %s {topics} ORDER BY notification_id LIMIT %s
"""


class LedgerRecorder(PostgresApplicationRecorder):
    """Lock-free appends, gap-free reads; a drop-in `APPLICATION_RECORDER_TOPIC` for eventsourcing."""

    def __init__(self, datastore: PostgresDatastore, *, events_table_name: str = "stored_events") -> None:
        super().__init__(datastore, events_table_name=events_table_name)
        schema = sql.Identifier(self.datastore.schema)
        self.events_ident = sql.SQL("{}.{}").format(schema, sql.Identifier(events_table_name))
        prefix = events_table_name.removesuffix("_events")
        self.snapshots_table_name = f"{prefix}_snapshots"
        snapshots = sql.SQL("{}.{}").format(schema, sql.Identifier(self.snapshots_table_name))
        self.position_function = sql.SQL("{}.{}").format(schema, sql.Identifier(f"{prefix}_next_position"))
        sequence = sql.Literal(f"{self.datastore.schema}.{events_table_name}_notification_id_seq")
        self.sql_create_statements += [
            sql.SQL(POSITION_FUNCTION).format(function=self.position_function, sequence=sequence),
            sql.SQL(POSITION_DEFAULT).format(events=self.events_ident, function=self.position_function)]
        # Rendered once: psycopg caches the parsing of a query given as text, not of a Composed one.
        self.write_one = sql.SQL(WRITE_ONE).format(events=self.events_ident).as_string()
        self.writes = {(singles, with_snapshots): sql.SQL(WRITE_SINGLES if singles else WRITE).format(
            events=self.events_ident,
            snapshots=sql.SQL(SNAPSHOTS).format(snapshots=snapshots, written=sql.Identifier(
                "written" if singles else "fresh")) if with_snapshots else sql.SQL("")).as_string()
            for singles in (True, False) for with_snapshots in (True, False)}
        self.read_streams_statement = sql.SQL(READ_STREAMS).format(
            events=self.events_ident, snapshots=snapshots).as_string()
        self.read_stream_statement = sql.SQL(READ_STREAM).format(
            events=self.events_ident, snapshots=snapshots).as_string()
        self.positions_of_statement = sql.SQL(
            "SELECT e.originator_id, e.notification_id FROM unnest(%(ids)b::uuid[], %(versions)b::bigint[]) "
            "AS k(id, version) JOIN {} e ON e.originator_id = k.id AND e.originator_version = k.version"
        ).format(self.events_ident).as_string()
        self.select_all = sql.SQL(SELECT).format(events=self.events_ident, topics=sql.SQL("")).as_string()
        self.select_topics = sql.SQL(SELECT).format(events=self.events_ident,
                                                    topics=sql.SQL("AND topic = ANY(%s)")).as_string()
        self.fence = Fence(self.events_ident)
        self.notifier = Notifier(self.datastore, self.channel_name)
        self._checked = False
        self._pool_open = False

    # ------------------------------------------------------------------ writes
    def append(self, batch: Sequence[Append]) -> Appended:
        """Writes every aggregate whose expected version is still current, in one transaction."""
        batch = [a for a in batch if a.events]
        if not batch:
            return Appended()
        if len(batch) == 1 and len(batch[0].events) == 1 and batch[0].snapshot is None:
            e = batch[0].events[0]
            statement = self.write_one
            params = {"id": e.originator_id, "version": e.originator_version, "topic": e.topic, "state": e.state}
        else:
            params = _write_params(batch)
            singles = all(len(a.events) == 1 for a in batch)
            statement = self.writes[singles, bool(params.get("s_ids"))]
        rows = self._write(statement, params)
        self.notifier.wake()
        result = Appended()
        for originator_id, _version, position in rows:
            result.positions.setdefault(originator_id, []).append(position)
        result.stale = {cast(UUID, a.events[0].originator_id) for a in batch} - set(result.positions)
        return result

    def insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Sequence[int] | None:
        """eventsourcing's insert (all or nothing, IntegrityError on any conflict), without the table lock."""
        if not stored_events:
            return []
        by_aggregate: dict[Any, list[StoredEvent]] = {}
        for event in stored_events:
            by_aggregate.setdefault(event.originator_id, []).append(event)
        if len(by_aggregate) > 1:
            raise ProgrammingError("insert_events writes one aggregate at a time here; use append for several")
        appended = self.append([Append(events) for events in by_aggregate.values()])
        if appended.stale:
            raise IntegrityError(f"version conflict on aggregate {next(iter(appended.stale))}")
        return next(iter(appended.positions.values()))

    def _write(self, statement: str, params: dict[str, Any]) -> list[tuple[Any, int, int]]:
        """One autocommit statement (its own transaction); a unique-key race is written again."""
        self._check_schema()
        with self._connection() as conn:
            for attempt in range(ATTEMPTS):
                try:
                    with conn.cursor(row_factory=psycopg.rows.tuple_row) as curs:
                        curs.execute(statement, params, prepare=True)
                        return list(curs.fetchall())
                except psycopg.errors.UniqueViolation:
                    # A writer in flight took the same version after our NOT EXISTS check; it has
                    # committed now, so the next attempt sees it and reports that aggregate stale.
                    log.debug("append raced a concurrent writer (attempt %d); writing again", attempt + 1)
        raise IntegrityError("append kept racing concurrent writers")

    @contextmanager
    def _connection(self) -> Iterator[psycopg.Connection[Any]]:
        """A pooled connection for the hot paths, without the library's per-checkout work (it opens the pool)."""
        if not self._pool_open:
            with self.datastore.get_connection():
                self._pool_open = True
        try:
            conn = self._checkout()
            try:
                yield conn
            finally:
                self.datastore.pool.putconn(conn)
        except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
            self.datastore.pool.check()  # the server closed them (a restart): the idle ones are replaced
            kind = OperationalError if isinstance(exc, psycopg.OperationalError) else InterfaceError
            raise kind(str(exc)) from exc

    def _checkout(self) -> psycopg.Connection[Any]:
        """A pooled connection that is still open: ones a restart closed are dropped, never sent to."""
        pool = self.datastore.pool
        for _ in range(pool.max_size + 1):
            conn = pool.getconn(timeout=CONNECT_WAIT)
            if alive(conn):
                return conn
            conn.close()
            pool.putconn(conn)  # the pool sees it closed and opens another in its place
        return pool.getconn(timeout=CONNECT_WAIT)

    def _reading(self, read: Callable[[psycopg.Connection[Any]], T]) -> T:
        """A read, tried once more on a fresh connection when the first one had died (a database restart).

        Writes are not tried again here: a connection lost while a write was in flight leaves its
        outcome unknown, so the caller hears of it (the API answers 503) and decides."""
        try:
            with self._connection() as conn:
                return read(conn)
        except (OperationalError, InterfaceError):
            with self._connection() as conn:
                return read(conn)

    def _check_schema(self) -> None:
        """Refuses to write to an event table whose positions are not taken after the transaction id."""
        if self._checked:
            return
        with self.datastore.get_connection() as conn:
            row = conn.execute(DEFAULT_OF, (self.events_ident.as_string(conn),)).fetchone()
            default = next(iter(row.values())) if isinstance(row, dict) else (row[0] if row else None)
            if not default or f"{self.snapshots_table_name.removesuffix('_snapshots')}_next_position" not in default:
                raise ProgrammingError(f"{self.events_table_name}.notification_id defaults to {default!r}, not to "
                                       f"the ledger's position function: run `taskledger migrate` first")
        self._checked = True

    def close(self) -> None:
        self.notifier.close()

    # ------------------------------------------------------------------- reads
    def read_streams(self, known: Mapping[UUID, int], snapshots: bool = True) -> dict[UUID, Stream]:
        """What the store has of each aggregate beyond the version the caller knows, in one query."""
        if not known:
            return {}
        if len(known) == 1:
            (only, version), = known.items()
            statement, params = self.read_stream_statement, {"id": only, "known": version, "use": snapshots}
        else:
            statement = self.read_streams_statement
            params = {"ids": list(known), "known": list(known.values()), "use": snapshots}
        found: dict[UUID, Stream] = {}

        def read(conn: psycopg.Connection[Any]) -> list[tuple[Any, ...]]:
            with conn.cursor(row_factory=psycopg.rows.tuple_row) as curs:
                curs.execute(statement, params, prepare=True)
                return curs.fetchall()

        for is_snapshot, originator_id, version, topic, state in self._reading(read):
            stream = found.setdefault(originator_id, Stream())
            stored = StoredEvent(originator_id, version, topic, bytes(state))
            if is_snapshot:
                stream.snapshot = stored
            else:
                stream.events.append(stored)
        return found

    def positions_of(self, versions: Mapping[UUID, int]) -> dict[UUID, int]:
        """The log position of each aggregate's event at the given version, in one query."""
        if not versions:
            return {}
        params = {"ids": list(versions), "versions": list(versions.values())}

        def read(conn: psycopg.Connection[Any]) -> dict[UUID, int]:
            with conn.cursor(row_factory=psycopg.rows.tuple_row) as curs:
                curs.execute(self.positions_of_statement, params, prepare=True)
                return {originator_id: position for originator_id, position in curs.fetchall()}

        return self._reading(read)

    def committed_head(self) -> int:
        """The highest committed position (not fenced): a fine target to wait for, not a bound to read to."""
        row = self._reading(lambda conn: conn.execute(self.max_notification_id_statement).fetchone())
        return int((row or {}).get("max") or 0)

    def readable_head(self, after: int = 0, timeout: float = SETTLE_TIMEOUT) -> int:
        """The highest position a reader that has read `after` may pass now (see `Fence.readable_head`)."""
        return self._reading(lambda conn: self.fence.readable_head(conn, after, timeout))

    def max_notification_id(self) -> int | None:
        return self.readable_head() or None

    def select_notifications(self, start: int | None, limit: int, stop: int | None = None,
                             topics: Sequence[str] = (), *, inclusive_of_start: bool = True) -> Sequence[Notification]:
        """Notifications in log order, never past a position an unfinished transaction could still fill."""
        after = (start or 0) - (1 if inclusive_of_start and start else 0)
        upto = self.readable_head(after)
        if stop is not None:
            upto = min(upto, stop)
        return self.select_range(after, upto, limit, topics)

    def select_range(self, after: int, upto: int, limit: int, topics: Sequence[str] = ()) -> list[Notification]:
        """Notifications with `after < id <= upto`; the caller vouches that `upto` is behind the fence."""
        if upto <= after:
            return []
        statement = self.select_topics if topics else self.select_all
        params: list[Any] = [after, upto, *([list(topics)] if topics else []), limit]
        def read(conn: psycopg.Connection[Any]) -> list[Notification]:
            with conn.cursor(row_factory=psycopg.rows.tuple_row) as curs:
                curs.execute(statement, params, prepare=True)
                return [Notification(id=n, originator_id=o, originator_version=v, topic=t, state=bytes(s))
                        for n, o, v, t, s in curs.fetchall()]

        return self._reading(read)

    def subscribe(self, gt: int | None = None, topics: Sequence[str] = ()) -> Subscription[Any]:
        return LogTail(self, gt or 0, topics)


def _write_params(batch: Sequence[Append]) -> dict[str, Any]:
    params: dict[str, list[Any]] = {k: [] for k in ("ids", "versions", "topics", "states", "firsts")}
    snaps: dict[str, list[Any]] = {k: [] for k in ("s_ids", "s_versions", "s_topics", "s_states")}
    for item in batch:
        if not item.events:
            continue
        first = item.events[0].originator_version
        for e in item.events:
            for key, value in zip(params, (e.originator_id, e.originator_version, e.topic, e.state, first)):
                params[key].append(value)
        if item.snapshot is not None:
            s = item.snapshot
            for key, value in zip(snaps, (s.originator_id, s.originator_version, s.topic, s.state)):
                snaps[key].append(value)
    return {**params, **(snaps if snaps["s_ids"] else {})}
