"""`taskledger export` / `taskledger import`: the event log as JSON Lines, streamed both ways.

One line per stored event, in log order: `{"position", "originator_id", "originator_version",
"topic", "state"}`, where `state` is the stored JSON itself (readable, diffable, and re-encoded to
the very same bytes on import). Import preserves positions and versions exactly, so read-your-write
positions, feed cursors and hash chains mean the same in the new database.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, TextIO
from uuid import UUID

import psycopg
from eventsourcing.utils import TopicError, resolve_topic

from taskledger.migrate import migrate
from taskledger.tools.progress import bar
from taskledger.tools.store import (
    EVENTS_TABLE,
    StoredRow,
    ToolError,
    check_event_store,
    connect,
    count_rows,
    read_rows,
    readable_head,
    tracked_positions,
    unreachable,
    where,
)

COPY = f"COPY {EVENTS_TABLE} (notification_id, originator_id, originator_version, topic, state) FROM STDIN"
KEYS = ("position", "originator_id", "originator_version", "topic", "state")


@dataclass(frozen=True)
class Imported:
    events: int
    first: int
    last: int


def export_events(url: str, out: TextIO, progress: bool = True) -> int:
    """Writes every event as one JSON line, from one consistent snapshot; returns how many.

    Only up to the readers' fence at the start: an event a writer is still committing below the newest
    one is not there yet, and an export past it would have a hole that later fills in.
    """
    with connect(url) as conn:
        check_event_store(conn, url)
        conn.rollback()
    upto = readable_head(url)
    with connect(url) as conn:
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        conn.read_only = True
        written = 0
        condition, params = "notification_id <= %s", (upto,)
        with bar(count_rows(conn, condition, params), "export", enabled=progress) as shown:
            for row in read_rows(conn, "log", condition, params):
                out.write(export_line(row) + "\n")
                written += 1
                shown.update()
    return written


def export_line(row: StoredRow) -> str:
    try:
        state = json.loads(row.state)
    except ValueError:
        raise ToolError(f"the event at position {row.position} is not stored as JSON text "
                        f"(compressed or encrypted?); export cannot write it readably") from None
    return json.dumps({"position": row.position, "originator_id": str(row.originator_id),
                       "originator_version": row.originator_version, "topic": row.topic, "state": state},
                      ensure_ascii=False, separators=(",", ":"))


def import_events(url: str, lines: Iterable[str], progress: bool = True) -> Imported:
    """Loads an export into an empty database in one transaction: all of it, or nothing."""
    try:
        migrate(url)  # creates the database and its tables if they are not there yet
    except psycopg.OperationalError as exc:
        raise unreachable(url, exc) from None
    count, first, last = 0, 0, 0
    with connect(url) as conn:
        conn.execute(f"LOCK TABLE {EVENTS_TABLE} IN EXCLUSIVE MODE")
        _require_empty(conn, url)
        try:
            with conn.cursor().copy(COPY) as copy, bar(None, "import", enabled=progress) as shown:
                for number, line in enumerate(lines, 1):
                    if not line.strip():
                        continue
                    record = parse_line(line, number, last)
                    copy.write_row(record)
                    count, first, last = count + 1, first or record[0], record[0]
                    shown.update()
        except psycopg.errors.UniqueViolation as exc:
            raise ToolError(f"the file holds the same task version twice ({exc.diag.message_detail}); "
                            f"nothing was imported") from None
        conn.execute("SELECT setval(pg_get_serial_sequence(%s, 'notification_id'), %s)",
                     (EVENTS_TABLE, max(last, 1)))
    return Imported(count, first, last)


def _require_empty(conn: psycopg.Connection[Any], url: str) -> None:
    if conn.execute(f"SELECT EXISTS (SELECT 1 FROM {EVENTS_TABLE})").fetchone() != (False,):
        raise ToolError(f"{where(url)} already holds events; import only into an empty database "
                        f"(create one and run `taskledger migrate` on it)")
    applied = {name: p for name, p in tracked_positions(conn).items() if p}
    if applied:
        raise ToolError(f"the read tables of {where(url)} are not empty ({applied}); "
                        f"import only into a freshly migrated database")


def parse_line(line: str, number: int, previous: int) -> tuple[int, UUID, int, str, bytes]:
    """One exported line as a row to copy, or a ToolError naming the line and what is wrong."""
    try:
        record = json.loads(line)
    except ValueError as exc:
        raise ToolError(f"line {number}: not JSON ({exc})") from None
    if not isinstance(record, dict) or set(record) != set(KEYS):
        raise ToolError(f"line {number}: an event line has exactly the keys {', '.join(KEYS)}")
    position, version, topic, state = (record[k] for k in ("position", "originator_version", "topic", "state"))
    if not _is_int(position) or position <= previous:
        raise ToolError(f"line {number}: position must be an integer above the previous line's ({previous})")
    if not _is_int(version) or version < 1:
        raise ToolError(f"line {number}: originator_version must be an integer, 1 or more")
    if not isinstance(state, dict) or not isinstance(topic, str):
        raise ToolError(f"line {number}: topic must be a string and state an object")
    try:
        originator_id = UUID(str(record["originator_id"]))
        resolve_topic(topic)
    except ValueError:
        raise ToolError(f"line {number}: originator_id is not a UUID") from None
    except TopicError:
        raise ToolError(f"line {number}: unknown event topic {topic!r} (an export from a newer release?)") from None
    encoded = json.dumps(state, ensure_ascii=False, separators=(",", ":")).encode()
    return position, originator_id, version, topic, encoded


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
