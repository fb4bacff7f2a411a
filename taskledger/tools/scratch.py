"""The real projection classes, replayed by hand into a scratch schema, and row diffs against live tables.

verify uses it to compare every projection with a replay; the blue/green rebuild builds its fresh
tables the same way. The projections' own SQL names tables without a schema, so every connection
of the scratch datastore sets `search_path` to the scratch schema alone: nothing can reach the
live tables through it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import uuid4

import psycopg
from eventsourcing.persistence import Tracking
from eventsourcing.postgres import PostgresDatastore
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import dict_row

from projections.tables import APPLICATION, tracking_table
from projections.registry import PROJECTIONS
from taskledger.tools.store import ToolError, connect, where


class ScratchDatastore(PostgresDatastore):
    """A datastore whose connections see one schema only; commits are not waited for (disposable data)."""

    def __init__(self, url: str, schema: str) -> None:
        self.scratch_schema = schema
        info = conninfo_to_dict(url)
        super().__init__(str(info.get("dbname", "postgres")), str(info.get("host", "localhost")),
                         str(info.get("port", "5432")), str(info.get("user", "postgres")),
                         str(info.get("password", "")), schema=schema, connect_timeout=10)

    def after_connect_func(self) -> Callable[[psycopg.Connection[Any]], None]:
        base = super().after_connect_func()
        search_path = sql.SQL("SET search_path TO {}").format(sql.Identifier(self.scratch_schema))

        def after_connect(conn: psycopg.Connection[Any]) -> None:
            base(conn)
            conn.execute(search_path)
            conn.execute("SET synchronous_commit TO off")

        return after_connect


@dataclass(frozen=True)
class RowDifference:
    """A row that differs between a live table and its replay, by primary key."""

    table: str
    key: dict[str, Any]
    kind: str
    detail: str


class ScratchProjections:
    """Fresh, empty copies of projections in their own schema, fed events in batches."""

    def __init__(self, url: str, names: Sequence[str], schema: str | None = None) -> None:
        self.url = url
        self.schema = schema or f"taskledger_scratch_{uuid4().hex[:10]}"
        self._execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(self.schema)))
        self.datastore = ScratchDatastore(url, self.schema)
        self.views: dict[str, Any] = {}
        self.tables: dict[str, list[str]] = {}
        for name in names:
            _, view_class = PROJECTIONS[name]
            before = self._table_names()
            view = view_class(self.datastore, tracking_table_name=tracking_table(name))
            view.create_table()
            self.tables[name] = sorted(self._table_names() - before - {tracking_table(name)})
            self.views[name] = view

    def wants(self, name: str, topic: str) -> bool:
        return bool(self.views[name].wants(topic))

    def apply_batch(self, name: str, items: list[tuple[int, Any]], position: int) -> None:
        """Events in log order and the tracking position, in one transaction, as the runners apply them."""
        self.views[name].apply_batch(items, Tracking(APPLICATION, position))

    def drop(self) -> None:
        self.datastore.close()
        self._execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(self.schema)))

    def _execute(self, statement: sql.Composed) -> None:
        try:
            with connect(self.url, autocommit=True) as conn:
                conn.execute(statement)
        except psycopg.errors.InsufficientPrivilege:
            raise ToolError(f"replaying projections needs CREATE on {where(self.url)} for a scratch "
                            f"schema; run as the migration user, or skip it with --skip-projections") from None

    def _table_names(self) -> set[str]:
        with connect(self.url) as conn:
            rows = conn.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
                                (self.schema,)).fetchall()
        return {str(r[0]) for r in rows}


def primary_key(conn: psycopg.Connection[Any], schema: str, table: str) -> list[tuple[str, bool]]:
    """The primary-key columns of a table, in key order, each with whether it is collatable text."""
    rows = conn.execute(
        "SELECT a.attname, a.attcollation <> 0 FROM pg_index i "
        "JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) "
        "WHERE i.indrelid = %s::regclass AND i.indisprimary "
        "ORDER BY array_position(i.indkey::int2[], a.attnum)",
        (sql.Identifier(schema, table).as_string(conn),)).fetchall()
    if not rows:
        raise ToolError(f"table {table} has no primary key; its rows cannot be matched for comparison")
    return [(str(name), bool(text)) for name, text in rows]


def diff_table(live: psycopg.Connection[Any], fresh: psycopg.Connection[Any], schema: str,
               table: str) -> Iterator[RowDifference]:
    """Merges both tables in primary-key order (text keys in byte order, as Python compares them).

    Each side sends its keys and a hash of each row's text (columns by name), so the comparison reads
    no documents; a row whose hashes differ is then read whole from both sides to say what differs.
    Tables whose columns differ between the sides are compared whole row by whole row instead.
    """
    keys = primary_key(fresh, schema, table)
    names = [k for k, _ in keys]
    order = sql.SQL(", ").join(
        sql.SQL('{} COLLATE "C"').format(sql.Identifier(k)) if text else sql.Identifier(k) for k, text in keys)
    columns = _columns(live, sql.Identifier(table))
    hashed = columns == _columns(fresh, sql.Identifier(schema, table))
    selected = sql.SQL("{}, md5(ROW({})::text) AS row_hash").format(
        sql.SQL(", ").join(map(sql.Identifier, names)), sql.SQL(", ").join(map(sql.Identifier, columns))
    ) if hashed else sql.SQL("*")
    select = sql.SQL("SELECT {} FROM {} ORDER BY {}")
    live_rows = _rows(live, select.format(selected, sql.Identifier(table), order))
    fresh_rows = _rows(fresh, select.format(selected, sql.Identifier(schema, table), order))

    def differs(old: Row, new: Row, key: dict[str, Any]) -> str | None:
        if not hashed:
            return field_differences(old, new) if old != new else None
        if old["row_hash"] == new["row_hash"]:
            return None
        return field_differences(_row_by_key(live, None, table, key), _row_by_key(fresh, schema, table, key))

    old, new = next(live_rows, None), next(fresh_rows, None)
    while old is not None or new is not None:
        side = _side(old, new, names)
        key = dict(zip(names, _key(new if side == "missing" else old, names)))
        if side == "extra":
            yield RowDifference(table, key, "extra", "the live table has this row; the replay does not")
        elif side == "missing":
            yield RowDifference(table, key, "missing", "the replay has this row; the live table does not")
        elif old is not None and new is not None and (detail := differs(old, new, key)) is not None:
            yield RowDifference(table, key, "differs", detail)
        if side != "missing":
            old = next(live_rows, None)
        if side != "extra":
            new = next(fresh_rows, None)


def _columns(conn: psycopg.Connection[Any], table: sql.Identifier) -> list[str]:
    """The table's column names in name order (the table as this connection's search path finds it)."""
    rows = conn.execute("SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0 "
                        "AND NOT attisdropped ORDER BY attname", (table.as_string(conn),)).fetchall()
    return [str(r[0]) for r in rows]


def _row_by_key(conn: psycopg.Connection[Any], schema: str | None, table: str, key: dict[str, Any]) -> dict[str, Any]:
    where = sql.SQL(" AND ").join(sql.SQL("{} = %s").format(sql.Identifier(k)) for k in key)
    target = sql.Identifier(table) if schema is None else sql.Identifier(schema, table)
    with conn.cursor(row_factory=dict_row) as cursor:
        row = cursor.execute(sql.SQL("SELECT * FROM {} WHERE {}").format(target, where), list(key.values())).fetchone()
    return row or {}


Row = dict[str, Any]


def _key(row: Row | None, names: list[str]) -> tuple[Any, ...]:
    return () if row is None else tuple(row[k] for k in names)


def _side(old: Row | None, new: Row | None, names: list[str]) -> str:
    """Which side holds the smaller key: 'extra' (live only), 'missing' (replay only), or 'both'."""
    if new is None:
        return "extra"
    if old is None:
        return "missing"
    old_key, new_key = _key(old, names), _key(new, names)
    return "extra" if old_key < new_key else "missing" if new_key < old_key else "both"


def field_differences(live: dict[str, Any], replay: dict[str, Any], width: int = 120) -> str:
    """`field: live X, replay Y` for every field that differs, values shortened."""
    def short(value: Any) -> str:
        text = repr(value)
        return text if len(text) <= width else text[: width - 1] + "…"

    names = sorted(set(live) | set(replay))
    return "; ".join(f"{n}: live {short(live.get(n))}, replay {short(replay.get(n))}"
                     for n in names if live.get(n) != replay.get(n))


def _rows(conn: psycopg.Connection[Any], query: sql.Composed) -> Iterator[dict[str, Any]]:
    with conn.cursor(name=f"tl_diff_{uuid4().hex[:12]}", row_factory=dict_row) as cursor:
        cursor.itersize = 1000
        cursor.execute(query)
        yield from cursor
