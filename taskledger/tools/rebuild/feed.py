"""Feeds the log, in order and in batches, to projection tables up to a bound per table."""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import psycopg
from eventsourcing.persistence import InterfaceError, OperationalError
from psycopg import sql

from taskledger.tools.rebuild.tables import ProjectionTables
from taskledger.tools.store import COLUMNS, EVENTS_TABLE, Decoder, StoredRow, ToolError, connect, readable_head
from taskledger.tools.verify import UNREADABLE

BATCH = 2000
FETCH = sql.SQL("SELECT {} FROM {} WHERE notification_id > %s AND notification_id <= %s "
                "ORDER BY notification_id LIMIT %s").format(sql.SQL(COLUMNS), sql.Identifier(EVENTS_TABLE))


class Unappliable(Exception):
    """An event the projection cannot apply: the live runner would stop at it too (a data problem)."""


@dataclass
class Target:
    """Projection tables and the position to feed them up to."""

    tables: ProjectionTables
    upto: int


def committed_head(conn: psycopg.Connection[Any]) -> int:
    """The highest committed position (for reports; feeding stops at `head`)."""
    row = conn.execute(sql.SQL("SELECT coalesce(max(notification_id), 0) FROM {}").format(
        sql.Identifier(EVENTS_TABLE))).fetchone()
    return int(row[0]) if row else 0


def head(url: str) -> int:
    """The highest position the rebuild may feed to: no event still committing can land at or below it."""
    return readable_head(url)


def pending(conn: psycopg.Connection[Any], targets: Sequence[Target]) -> int:
    """How many events of the log the targets still have to pass."""
    lo, hi = _span(targets)
    if lo >= hi:
        return 0
    row = conn.execute(sql.SQL("SELECT count(*) FROM {} WHERE notification_id > %s AND notification_id <= %s")
                       .format(sql.Identifier(EVENTS_TABLE)), (lo, hi)).fetchone()
    return int(row[0]) if row else 0


def feed(url: str, decoder: Decoder, targets: Sequence[Target], shown: Any, batch: int = BATCH) -> int:
    """Applies every event after each target's position up to its bound; returns how many events were read.

    Each batch commits the tables and their tracking position together, so a run killed at any point
    resumes after the last committed batch. The next batch is read and decoded while the targets write
    the current one, each target on a connection (and thread) of its own.
    """
    lo, hi = _span(targets)
    read = 0
    with connect(url, autocommit=True) as conn, ThreadPoolExecutor(max_workers=1 + len(targets)) as pool:
        def fetch(after: int) -> tuple[list[StoredRow], dict[int, Any]]:
            rows = [StoredRow(p, o, v, t, bytes(s)) for p, o, v, t, s in conn.execute(FETCH, (after, hi, batch))]
            wanted = {r.position: _decode(decoder, r) for r in rows
                      if any(t.tables.wants(r.topic) for t in targets)}
            return rows, wanted

        pending: Future[tuple[list[StoredRow], dict[int, Any]]] | None = pool.submit(fetch, lo) if lo < hi else None
        while pending is not None:
            rows, decoded = pending.result()
            if not rows:
                break
            pending = pool.submit(fetch, rows[-1].position) if rows[-1].position < hi else None
            for done in [pool.submit(_apply_target, t, rows, decoded) for t in targets]:
                done.result()
            read += len(rows)
            shown.update(len(rows))
    for target in targets:
        target.tables.fed = max(target.tables.fed, min(target.upto, hi))
    return read


def _span(targets: Sequence[Target]) -> tuple[int, int]:
    behind = [t for t in targets if t.tables.fed < t.upto]
    if not behind:
        return 0, 0
    return min(t.tables.fed for t in behind), max(t.upto for t in behind)


def _apply_target(target: Target, rows: list[StoredRow], decoded: dict[int, Any]) -> None:
    """The target's share of the rows, applied and tracked in one transaction."""
    tables = target.tables
    mine = [r for r in rows if tables.fed < r.position <= target.upto]
    if not mine:
        return
    _apply(tables, mine, [(r.position, decoded[r.position]) for r in mine if tables.wants(r.topic)])
    tables.fed = mine[-1].position


def _decode(decoder: Decoder, row: StoredRow) -> Any:
    try:
        return decoder.event(row)
    except UNREADABLE as exc:
        raise Unappliable(f"the event at position {row.position} (task {row.originator_id} "
                          f"v{row.originator_version}) cannot be decoded: {type(exc).__name__}: {exc}") from None


def _apply(tables: ProjectionTables, rows: list[StoredRow], items: list[tuple[int, Any]]) -> None:
    try:
        tables.apply_batch(items, rows[-1].position)
    except (OperationalError, InterfaceError, psycopg.OperationalError) as exc:
        raise ToolError(f"lost the connection to PostgreSQL at position {rows[-1].position} ({exc}); run the "
                        f"command again: it resumes where it stopped") from None
    except (*UNREADABLE, psycopg.Error) as exc:
        position = _failing(tables, items) or rows[-1].position
        row = next(r for r in rows if r.position == position)
        raise Unappliable(f"{tables.name} cannot apply the event at position {position} (task "
                          f"{row.originator_id} v{row.originator_version}) to schema {tables.schema}: "
                          f"{type(exc).__name__}: {exc}") from None


def _failing(tables: ProjectionTables, items: list[tuple[int, Any]]) -> int | None:
    """The first event of a failed batch that fails on top of the ones before it (in a rolled-back transaction)."""
    for end, (position, _) in enumerate(items, 1):
        try:
            tables.try_apply(items[:end])
        except (*UNREADABLE, psycopg.Error):
            return position
    return None
