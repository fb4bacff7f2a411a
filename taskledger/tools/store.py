"""The event store as the tools see it: rows exactly as stored, read in batches, decoded on demand."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from uuid import UUID, uuid4

import psycopg
from eventsourcing.persistence import Mapper, StoredEvent
from psycopg import sql

from eventstore.fence import Fence
from ledger.application import TaskLedger, external_task_id
from ledger.domain import event_hash
from projections.registry import PROJECTIONS
from projections.tables import APPLICATION, EVENTS_TABLE, tracking_table
from taskledger.config import eventsourcing_env
from taskledger.preflight import CONNECT_TIMEOUT, where  # where: re-exported for the tools
from taskledger.preflight import unavailable as unreachable

COLUMNS = "notification_id, originator_id, originator_version, topic, state"
ORDERS = {"log": "notification_id", "stream": "originator_id, originator_version"}


class ToolError(Exception):
    """A tool cannot do what it was asked; the message says why and what to do about it."""


@dataclass(frozen=True)
class StoredRow:
    """One row of the events table, as stored."""

    position: int
    originator_id: UUID
    originator_version: int
    topic: str
    state: bytes


def connect(url: str, **kwargs: Any) -> psycopg.Connection[Any]:
    """A connection, or a DatabaseUnavailableError that tells the operator what to check."""
    try:
        return psycopg.connect(url, connect_timeout=CONNECT_TIMEOUT, **kwargs)
    except psycopg.OperationalError as exc:
        raise unreachable(url, exc) from None


def check_event_store(conn: psycopg.Connection[Any], url: str) -> None:
    row = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (EVENTS_TABLE,)).fetchone()
    if not row or not row[0]:
        raise ToolError(f"{where(url)} has no event store ({EVENTS_TABLE}); run `taskledger migrate` first")


def open_ledger(url: str) -> TaskLedger:
    """The ledger application over a database that was checked to hold an event store."""
    with connect(url) as conn:
        check_event_store(conn, url)
    return TaskLedger(eventsourcing_env(url, pool_size=1))


def task_id_of(url: str, task: str, namespace: str | None) -> UUID:
    """A task's id from its UUID, or from its external id within a namespace."""
    if namespace is None:
        try:
            return UUID(task)
        except ValueError:
            raise ToolError(f"{task!r} is not a task id (a UUID); to name a task by its external id, "
                            f"add --namespace NAMESPACE") from None
    with connect(url) as conn:
        row = conn.execute("SELECT id FROM tasks WHERE namespace = %s AND external_id = %s",
                           (namespace, task)).fetchone()
    return row[0] if row else external_task_id(namespace, task)


def readable_head(url: str, timeout: float = 5.0) -> int:
    """The highest position no event still committing can land at or below (the readers' fence): a log read
    up to it is a consistent prefix, whatever writers are doing."""
    with connect(url, autocommit=True) as conn:
        return Fence(sql.Identifier(EVENTS_TABLE)).readable_head(conn, timeout=timeout)


def tracked_positions(conn: psycopg.Connection[Any]) -> dict[str, int]:
    """How far each projection has applied the log (0 if it never ran)."""
    positions = {}
    for name in PROJECTIONS:
        row = conn.execute(sql.SQL("SELECT notification_id FROM {} WHERE application_name = %s").format(
            sql.Identifier(tracking_table(name))), (APPLICATION,)).fetchone()
        positions[name] = int(row[0]) if row else 0
    return positions


def read_rows(conn: psycopg.Connection[Any], order: str = "log", condition: str = "TRUE",
              params: tuple[Any, ...] = (), batch: int = 1000) -> Iterator[StoredRow]:
    """Rows in log or stream order through a server-side cursor: constant memory, any table size."""
    query = sql.SQL("SELECT {} FROM {} WHERE {} ORDER BY {}").format(
        sql.SQL(COLUMNS), sql.Identifier(EVENTS_TABLE), sql.SQL(condition), sql.SQL(ORDERS[order]))  # type: ignore[arg-type]
    with conn.cursor(name=f"tl_rows_{uuid4().hex[:12]}") as cursor:
        cursor.itersize = batch
        cursor.execute(query, params)
        for position, originator_id, version, topic, state in cursor:
            yield StoredRow(position, originator_id, version, topic, bytes(state))


def count_rows(conn: psycopg.Connection[Any], condition: str = "TRUE", params: tuple[Any, ...] = ()) -> int:
    query = sql.SQL("SELECT count(*) FROM {} WHERE {}").format(sql.Identifier(EVENTS_TABLE), sql.SQL(condition))  # type: ignore[arg-type]
    row = conn.execute(query, params).fetchone()
    return int(row[0]) if row else 0


class Decoder:
    """Turns stored rows into domain events (upcast) or into their stored form (as written)."""

    def __init__(self, mapper: Mapper[UUID]) -> None:
        self.mapper = mapper

    def event(self, row: StoredRow) -> Any:
        return self.mapper.to_domain_event(
            StoredEvent(row.originator_id, row.originator_version, row.topic, row.state))

    def stored_form(self, row: StoredRow) -> Any:
        """The event exactly as written: stored topic and fields, before any upcaster or topic rename.

        Hashing this (not the decoded event) keeps the chain check true across schema evolution.
        """
        fields = self.mapper.transcoder.decode(row.state)
        fields.pop("class_version", None)
        fields["originator_id"] = row.originator_id
        fields["originator_version"] = row.originator_version
        written: Any = object.__new__(_written_type(row.topic))
        written.__dict__.update(fields)
        return written


@lru_cache(maxsize=512)
def _written_type(topic: str) -> type:
    """A bare class named like the stored topic: `event_hash` reads only the fields and the name."""
    module, _, qualname = topic.partition(":")
    return type("Written", (), {"__module__": module, "__qualname__": qualname})


def hash_at(written: Any, version: int) -> str:
    """The hash the same stored content would have at another version (finds moved events)."""
    moved = object.__new__(type(written))
    moved.__dict__.update({**vars(written), "originator_version": version})
    return event_hash(moved)
