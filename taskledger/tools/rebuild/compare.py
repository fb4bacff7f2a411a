"""The rebuilt tables against the live ones at the same log position: verify's row diff, whole or recent.

The whole diff (`taskledger.tools.scratch.diff_table`, the one verify uses) runs once, against a
REPEATABLE READ snapshot of the live tables, while the service keeps running. The recent diff runs
while the live projection is paused for the switch and looks only at rows written after the
snapshot's position (every projection row records the position that last wrote it), so the pause
does not grow with the size of the tables.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from projections.tables import tracking_table
from taskledger.tools.rebuild.tables import LIVE_SCHEMA
from taskledger.tools.scratch import RowDifference, diff_table, field_differences, primary_key

SAMPLES = 20


@dataclass
class Differences:
    """How many rows differ, per table, and the first few of them."""

    counts: dict[str, int] = field(default_factory=dict)
    samples: list[RowDifference] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.counts

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def add(self, found: Iterable[RowDifference]) -> None:
        for difference in found:
            self.counts[difference.table] = self.counts.get(difference.table, 0) + 1
            if len(self.samples) < SAMPLES:
                self.samples.append(difference)

    def lines(self) -> list[str]:
        head = ", ".join(f"{table}: {n}" for table, n in self.counts.items())
        return [f"{self.total} rows differ ({head})", *(
            f"  {d.table} {_key_text(d.key)} {d.kind}: {d.detail}" for d in self.samples)]


def compare(live: psycopg.Connection[Any], fresh: psycopg.Connection[Any], name: str, schema: str,
            tables: list[str], after: int | None) -> Differences:
    """Each data table of the projection (not its tracking table): every row, or those written after a position."""
    found = Differences()
    for table in tables:
        if table == tracking_table(name):
            continue
        if not _exists(live, LIVE_SCHEMA, table):
            found.add([RowDifference(table, {}, "missing", f"the live schema has no table {table}")])
        elif after is None or not _has_position(live, fresh, schema, table):
            found.add(diff_table(live, fresh, schema, table))
        else:
            found.add(recent_differences(live, fresh, schema, table, after))
    return found


def recent_differences(live: psycopg.Connection[Any], fresh: psycopg.Connection[Any], schema: str, table: str,
                       after: int) -> list[RowDifference]:
    """Rows either side wrote after `after`; both sides were equal at `after`, so these are all that can differ."""
    names = [k for k, _ in primary_key(fresh, schema, table)]
    query = sql.SQL("SELECT * FROM {} WHERE position > %s")
    old = _keyed(live, query.format(sql.Identifier(LIVE_SCHEMA, table)), after, names)
    new = _keyed(fresh, query.format(sql.Identifier(schema, table)), after, names)
    found = []
    for key in sorted(old.keys() | new.keys()):
        named = dict(zip(names, key))
        if key not in new:
            found.append(RowDifference(table, named, "extra", "the live table has this row; the rebuild does not"))
        elif key not in old:
            found.append(RowDifference(table, named, "missing", "the rebuild has this row; the live table does not"))
        elif old[key] != new[key]:
            found.append(RowDifference(table, named, "differs", field_differences(old[key], new[key])))
    return found


def _keyed(conn: psycopg.Connection[Any], query: sql.Composed, after: int,
           names: list[str]) -> dict[tuple[Any, ...], dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cursor:
        return {tuple(row[k] for k in names): row for row in cursor.execute(query, (after,))}


def _exists(conn: psycopg.Connection[Any], schema: str, table: str) -> bool:
    row = conn.execute("SELECT to_regclass(%s) IS NOT NULL",
                       (sql.Identifier(schema, table).as_string(conn),)).fetchone()
    return bool(row and row[0])


def _has_position(live: psycopg.Connection[Any], fresh: psycopg.Connection[Any], schema: str, table: str) -> bool:
    query = ("SELECT count(*) FROM information_schema.columns WHERE table_schema = %s AND table_name = %s "
             "AND column_name = 'position'")
    return all(_one(conn, query, (where, table)) == 1 for conn, where in ((live, LIVE_SCHEMA), (fresh, schema)))


def _one(conn: psycopg.Connection[Any], query: str, params: tuple[Any, ...]) -> int:
    row = conn.execute(query, params).fetchone()
    return int(row[0]) if row else 0


def _key_text(key: dict[str, Any]) -> str:
    return "(" + ", ".join(f"{k}={v}" for k, v in key.items()) + ")"
