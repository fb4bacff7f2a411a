"""verify's snapshot check: every stored snapshot equals the stream replayed from its first event to its version.

Loads trust the latest snapshot of a stream (`ledger.streams`), so a snapshot that disagrees with
its events would silently change what every later write starts from. Snapshots taken under other
state rules (`SNAPSHOT_SCHEMA`) are ignored by loads, and so here.
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import groupby
from typing import Any
from uuid import uuid4

import psycopg
from eventsourcing.persistence import StoredEvent

from ledger.domain import StaleSnapshotError
from taskledger.tools.chain import Finding
from taskledger.tools.progress import bar
from taskledger.tools.scratch import field_differences
from taskledger.tools.store import Decoder, read_rows

SNAPSHOTS_TABLE = "taskledger_snapshots"


def check_snapshots(conn: psycopg.Connection[Any], decoder: Decoder, progress: bool) -> tuple[int, list[Finding]]:
    """(snapshots checked, problems): each snapshot against the replay of its stream's events."""
    if not _exists(conn):
        return 0, []
    checked, findings = 0, []
    total = conn.execute(f"SELECT count(*) FROM {SNAPSHOTS_TABLE}").fetchone()
    with bar(int(total[0]) if total else 0, "verify snapshots", enabled=progress) as shown:
        for task_id, grouped in groupby(_snapshots(conn), key=lambda s: s.originator_id):
            snapshots = list(grouped)
            findings += _check_stream(conn, decoder, task_id, snapshots)
            checked += len(snapshots)
            shown.update(len(snapshots))
    return checked, findings


def _check_stream(conn: psycopg.Connection[Any], decoder: Decoder, task_id: Any,
                  snapshots: list[StoredEvent]) -> list[Finding]:
    findings = []
    wanted = {s.originator_version: s for s in snapshots}
    aggregate: Any = None
    rows = read_rows(conn, "stream", "originator_id = %s AND originator_version <= %s",
                     (task_id, max(wanted)))
    for row in rows:
        aggregate = decoder.event(row).mutate(aggregate)
        stored = wanted.pop(row.originator_version, None)
        if stored is not None:
            findings += _compare(decoder, str(task_id), stored, aggregate)
    findings += [Finding("snapshot", str(task_id), version, "orphan",
                         "a snapshot at a version the stream does not have") for version in sorted(wanted)]
    return findings


def _compare(decoder: Decoder, task_id: str, stored: StoredEvent, replayed: Any) -> list[Finding]:
    try:
        loaded = decoder.mapper.to_domain_event(stored).mutate(None)  # type: ignore[attr-defined]
    except StaleSnapshotError:
        return []  # taken under other state rules: loads ignore it, so it cannot mislead one
    mine, theirs = _state_of(loaded), _state_of(replayed)
    if mine == theirs:
        return []
    return [Finding("snapshot", task_id, stored.originator_version, "differs",
                    f"the snapshot differs from the replay of its events: {field_differences(mine, theirs)}")]


def _state_of(aggregate: Any) -> dict[str, Any]:
    state = getattr(aggregate, "state", None)
    found = state.to_dict() if state is not None else {
        k: v for k, v in vars(aggregate).items() if k not in ("_pending_events", "_modified_on")}
    found["(version)"] = aggregate.version
    if hasattr(aggregate, "idempotency"):
        found["(idempotency)"] = aggregate.idempotency
    return found


def _snapshots(conn: psycopg.Connection[Any]) -> Iterator[StoredEvent]:
    query = (f"SELECT originator_id, originator_version, topic, state FROM {SNAPSHOTS_TABLE} "
             "ORDER BY originator_id, originator_version")
    with conn.cursor(name=f"tl_snapshots_{uuid4().hex[:12]}") as cursor:
        cursor.itersize = 500
        cursor.execute(query)
        for originator_id, version, topic, state in cursor:
            yield StoredEvent(originator_id, version, topic, bytes(state))


def _exists(conn: psycopg.Connection[Any]) -> bool:
    row = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (SNAPSHOTS_TABLE,)).fetchone()
    return bool(row and row[0])
