"""The record of archived tasks (`archived_tasks`): which events verify and rebuild leave out.

An archived task's events up to `last_position` belong to its archive file, not to the read tables. While
they are still in the event store (archived without `--prune-events`), verify and rebuild skip them, so
neither reports the missing rows nor brings them back. Pruned tasks have no such events left to skip.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

import psycopg

from projections.schema import ARCHIVED_DDL

TABLE = "archived_tasks"


def create_table(conn: psycopg.Connection[Any]) -> None:
    for statement in ARCHIVED_DDL:
        conn.execute(statement)


def exists(conn: psycopg.Connection[Any]) -> bool:
    row = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (TABLE,)).fetchone()
    return bool(row and row[0])


def archived_positions(conn: psycopg.Connection[Any]) -> dict[UUID, int]:
    """Task id -> the last archived position, for archived tasks whose events are still stored."""
    if not exists(conn):
        return {}
    rows = conn.execute(f"SELECT task_id, last_position FROM {TABLE} WHERE NOT pruned").fetchall()
    return {task_id: int(last) for task_id, last in rows}


def is_archived(archived: dict[UUID, int], task_id: Any, position: int) -> bool:
    """Whether an event belongs to an archive (a task re-created after a prune has later positions)."""
    return archived.get(task_id, 0) >= position


def keep(archived: dict[UUID, int], items: Sequence[tuple[int, Any]]) -> list[tuple[int, Any]]:
    """The (position, event) pairs that are not archived, in their order."""
    if not archived:
        return list(items)
    return [(p, e) for p, e in items if not is_archived(archived, getattr(e, "originator_id", None), p)]
