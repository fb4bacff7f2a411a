"""`rebuild --dry-run`: what a rebuild would do, read from the database without changing anything."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from projections.runner import lead_held
from projections.tables import APPLICATION, EVENTS_TABLE, tracking_table
from taskledger.tools.rebuild.feed import committed_head
from taskledger.tools.rebuild.switch import retired_pattern
from taskledger.tools.rebuild.tables import (
    LIVE_SCHEMA,
    RETIRED_PREFIX,
    fingerprint,
    projection_tables,
    rebuild_schema,
    schema_note,
)
from taskledger.tools.store import check_event_store, connect


@dataclass(frozen=True)
class Plan:
    """One projection's rebuild as it would run now."""

    name: str
    live_rows: dict[str, int | None]  # None: the live schema has no such table
    live_position: int
    head: int
    leader_running: bool
    schema: str
    resume_from: int | None  # None: no usable partial rebuild, it starts from position 0
    stale_schema: bool
    events_to_apply: int
    retired: list[str]


def plan(url: str, names: Sequence[str]) -> list[Plan]:
    with connect(url) as conn:
        conn.read_only = True
        check_event_store(conn, url)
        at = committed_head(conn)
        return [_plan(conn, url, name, at) for name in names]


def _plan(conn: psycopg.Connection[Any], url: str, name: str, at: int) -> Plan:
    schema = rebuild_schema(name)
    note = schema_note(conn, schema)
    stale = note is not None and note.get("code") != fingerprint(url, name)
    resume = None if note is None or stale else _position(conn, schema, name)
    start = resume or 0
    tables = projection_tables(url, name)
    rows = {table: _count(conn, table) for table in tables[:-1]}
    events = _one(conn, sql.SQL("SELECT count(*) FROM {} WHERE notification_id > %s").format(
        sql.Identifier(EVENTS_TABLE)), (start,))
    retired = [str(r[0]) for r in conn.execute("SELECT nspname FROM pg_namespace WHERE nspname ~ %s "
                                               "ORDER BY nspname", (retired_pattern(name),)).fetchall()]
    return Plan(name, rows, _position(conn, LIVE_SCHEMA, name), at, lead_held(conn, name), schema, resume,
                stale, events, retired)


def render(plans: Sequence[Plan]) -> Iterator[str]:
    for p in plans:
        live = ", ".join(f"{LIVE_SCHEMA}.{t} ({'no such table' if n is None else f'{n} rows'})"
                         for t, n in p.live_rows.items())
        yield f"{p.name}:"
        yield f"  live tables      {live}"
        yield (f"  live position    {p.live_position} ({LIVE_SCHEMA}.{tracking_table(p.name)}); "
               f"the log's head is {p.head}")
        yield ("  live runner      leading; it will be asked to hand its lead over for the switch" if p.leader_running
               else "  live runner      none is leading now")
        yield f"  rebuild schema   {p.schema}: {_start(p)}"
        span = f"positions {(p.resume_from or 0) + 1}..{p.head}" if p.events_to_apply else "none yet"
        yield f"  events to apply  {p.events_to_apply} ({span}), then the ones written meanwhile"
        yield (f"  then             verify against the live tables at the same position; switch in one transaction: "
               f"the live tables to {RETIRED_PREFIX}{p.name}_<UTC time>, the rebuilt ones into {LIVE_SCHEMA}")
        if p.retired:
            yield f"  retired before   {', '.join(p.retired)} (kept for rollback; --drop-retired drops them)"
    yield "dry run: nothing was changed"


def _start(p: Plan) -> str:
    if p.stale_schema:
        return "holds an unfinished rebuild made by different projection code; it would be discarded and " \
               "rebuilt from position 0"
    if p.resume_from is None:
        return "not there; it would be created and built from position 0"
    return f"holds an unfinished rebuild at position {p.resume_from}; it would resume after it"


def _position(conn: psycopg.Connection[Any], schema: str, name: str) -> int:
    table = sql.Identifier(schema, tracking_table(name))
    if not _exists(conn, table):
        return 0
    return _one(conn, sql.SQL("SELECT coalesce(max(notification_id), 0) FROM {} WHERE application_name = %s")
                .format(table), (APPLICATION,))


def _count(conn: psycopg.Connection[Any], table: str) -> int | None:
    name = sql.Identifier(LIVE_SCHEMA, table)
    return _one(conn, sql.SQL("SELECT count(*) FROM {}").format(name)) if _exists(conn, name) else None


def _exists(conn: psycopg.Connection[Any], name: sql.Identifier) -> bool:
    row = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (name.as_string(conn),)).fetchone()
    return bool(row and row[0])


def _one(conn: psycopg.Connection[Any], query: Any, params: tuple[Any, ...] = ()) -> int:
    row = conn.execute(query, params).fetchone()
    return int(row[0]) if row and row[0] is not None else 0
