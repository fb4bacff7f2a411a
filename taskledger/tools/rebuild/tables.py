"""One projection's read tables in one schema, written by the real projection classes, in batches.

The rebuild's fresh tables live in `taskledger_rebuild_<projection>`; the live ones in `public`.
Either way the projection code is the one the runners use (`apply_batch`): its SQL names tables
without a schema, and every connection of the datastore sets `search_path` to that one schema, so
the same code writes either place and nothing else. The tracking table is named with the
datastore's schema by the library itself, so the tables and their position commit together in the
right schema.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import re
import sys
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

import psycopg
from eventsourcing.persistence import Tracking
from psycopg import sql

from projections.tables import APPLICATION, tracking_table
from projections.registry import PROJECTIONS
from taskledger.tools.archived import archived_positions, keep
from taskledger.tools.scratch import ScratchDatastore
from taskledger.tools.store import ToolError, connect, where

LIVE_SCHEMA = "public"
REBUILD_PREFIX = "taskledger_rebuild_"
RETIRED_PREFIX = "taskledger_retired_"
CREATE_TABLE = re.compile(r'CREATE TABLE IF NOT EXISTS\s+(?:"?\w+"?\.)?"?(\w+)"?', re.IGNORECASE)


def rebuild_schema(name: str) -> str:
    return f"{REBUILD_PREFIX}{name}"


class ProjectionTables:
    """The tables of one projection in one schema, and how far through the log they have been fed."""

    def __init__(self, url: str, name: str, schema: str, *, create: bool) -> None:
        self.name = name
        self.schema = schema
        self.datastore = ScratchDatastore(url, schema)
        _, view_class = PROJECTIONS[name]
        self.view: Any = view_class(self.datastore, tracking_table_name=tracking_table(name))
        if create:
            self.view.create_table()
        self.fed = self.view.max_tracking_id(APPLICATION) or 0
        with connect(url) as conn:  # archived tasks stay out of rebuilt tables (docs/retention.md)
            self.archived = archived_positions(conn)

    def wants(self, topic: str) -> bool:
        return bool(self.view.wants(topic))

    def apply_batch(self, items: list[tuple[int, Any]], position: int) -> None:
        """The events' rows and the tracking position `position`, in one transaction."""
        self.view.apply_batch(keep(self.archived, items), Tracking(APPLICATION, position))

    def try_apply(self, items: list[tuple[int, Any]]) -> None:
        """Applies events in a transaction that is always rolled back (finds the event a batch failed at)."""
        with self.datastore.transaction(commit=False) as curs:
            self.view.write(curs, keep(self.archived, items))

    def close(self) -> None:
        self.datastore.close()


def tables_in(conn: psycopg.Connection[Any], schema: str) -> list[str]:
    rows = conn.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = %s "
                        "AND table_type = 'BASE TABLE' ORDER BY table_name", (schema,)).fetchall()
    return [str(r[0]) for r in rows]


def fingerprint(url: str, name: str) -> str:
    """Identifies the projection code and DDL that built a partial rebuild, so stale work is not resumed."""
    projection_class, view_class = PROJECTIONS[name]
    digest = hashlib.sha256("\n".join(ddl(url, name)).encode())
    for cls in (projection_class, view_class):
        try:
            digest.update(inspect.getsource(sys.modules[cls.__module__]).encode())
        except (OSError, TypeError):
            digest.update(cls.__qualname__.encode())
    return digest.hexdigest()[:16]


def schema_note(conn: psycopg.Connection[Any], schema: str) -> dict[str, Any] | None:
    """The rebuild's note on its schema (None: no such schema); `{}` if the note is unreadable."""
    row = conn.execute("SELECT obj_description(oid, 'pg_namespace') FROM pg_namespace WHERE nspname = %s",
                       (schema,)).fetchone()
    if row is None:
        return None
    try:
        note = json.loads(row[0] or "{}")
    except json.JSONDecodeError:
        return {}
    return note if isinstance(note, dict) else {}


def open_rebuild(url: str, name: str, restart: bool, say: Callable[[str], None]) -> ProjectionTables:
    """The rebuild's tables of a projection: resumed where an earlier run stopped, or new and empty."""
    schema = rebuild_schema(name)
    code = fingerprint(url, name)
    with connect(url, autocommit=True) as conn:
        note = schema_note(conn, schema)
        if note is not None and (restart or note.get("code") != code):
            why = "--restart" if restart else "it was made by different projection code"
            say(f"{name}: discarding the unfinished rebuild in schema {schema} ({why})")
            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))
            note = None
        if note is None:
            _create_schema(conn, url, schema, {"projection": name, "code": code,
                                               "started": datetime.now(timezone.utc).isoformat()})
    tables = ProjectionTables(url, name, schema, create=True)
    if tables.fed:
        say(f"{name}: resuming the rebuild in schema {schema} after position {tables.fed}")
    else:
        say(f"{name}: building fresh tables in schema {schema} from position 0")
    return tables


def _create_schema(conn: psycopg.Connection[Any], url: str, schema: str, note: dict[str, Any]) -> None:
    try:
        with conn.transaction():
            conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
            conn.execute(sql.SQL("COMMENT ON SCHEMA {} IS {}").format(
                sql.Identifier(schema), sql.Literal(json.dumps(note))))
    except psycopg.errors.InsufficientPrivilege:
        raise ToolError(f"rebuilding needs CREATE on {where(url)} for schema {schema} (and ownership of the "
                        f"read tables for the switch); run it as the migration user") from None


def ddl(url: str, name: str) -> list[str]:
    """The statements the projection's view creates its tables with, read without touching the database."""
    _, view_class = PROJECTIONS[name]
    datastore = ScratchDatastore(url, LIVE_SCHEMA)  # never opened: only the view's statements are read
    try:
        view = view_class(datastore, tracking_table_name=tracking_table(name))
        return [statement.as_string() for statement in view.sql_create_statements]
    finally:
        datastore.close()


def projection_tables(url: str, name: str) -> list[str]:
    """The tables a projection creates, its tracking table last."""
    found = [m.group(1) for statement in ddl(url, name) if (m := CREATE_TABLE.search(statement))]
    data = sorted({t for t in found if t != tracking_table(name)})
    return [*data, tracking_table(name)]
