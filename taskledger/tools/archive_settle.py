"""The second half of `taskledger archive`: tasks safely in a verified file leave the read tables (and,
when asked, the event store), batch by batch, each batch in one transaction with its record."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import psycopg

from taskledger.tools.archive_file import TaskHead
from taskledger.tools.progress import bar
from taskledger.tools.snapshots import SNAPSHOTS_TABLE
from taskledger.tools.store import EVENTS_TABLE, ToolError, connect, tracked_positions

# Every read table that holds rows per task, and its task column (tests check it against the projections' DDL).
READ_TABLES = {"tasks": "id", "task_runs": "task_id", "task_occurrences": "task_id", "task_output_pages": "task_id"}
RECORD = """
INSERT INTO archived_tasks (task_id, namespace, archive, archive_sha256, events, version, last_position)
SELECT * FROM unnest(%s::uuid[], %s::text[], %s::text[], %s::text[], %s::int[], %s::int[], %s::bigint[])
"""


@dataclass(frozen=True)
class Options:
    prune_events: bool = False
    batch_size: int = 500
    wait: float = 60.0
    progress: bool = True


@dataclass
class Outcome:
    """What a run did (or, dry, would do)."""

    tasks: int = 0
    events: int = 0
    dropped_first: int = 0
    removed: int = 0
    pruned_events: int = 0
    by_namespace: dict[str, int] = field(default_factory=dict)
    more: int = 0  # tasks that match but were left for another file (a re-run on an existing FILE)
    sha256: str = ""
    continued: bool = False  # this run finished an archive FILE already held


class Refused(ToolError):
    """The data of a chosen task is not what it should be (a broken chain, a changed stream); nothing was removed."""


def wait_projected(url: str, position: int, timeout: float) -> None:
    """Waits until every projection has applied `position`: a row deleted before its last event is applied
    would be written again (or stop the projection) when the event arrives."""
    deadline = time.monotonic() + timeout
    while True:
        with connect(url) as conn:
            positions = tracked_positions(conn)
        if all(p >= position for p in positions.values()):
            return
        if time.monotonic() > deadline:
            at = ", ".join(f"{name} at {p}" for name, p in positions.items())
            raise ToolError(f"the projections have not applied position {position} within {timeout:g} s ({at}); "
                            f"start the service or `taskledger project` and run the same command again")
        time.sleep(0.1)


def settle(url: str, output: str, sha: str, heads: Sequence[TaskHead], options: Options) -> Outcome:
    """Records the archive's tasks and removes their read rows (and events, with prune_events), in batches."""
    outcome = Outcome(tasks=len(heads), events=sum(h.events for h in heads))
    for head in heads:
        outcome.by_namespace[head.namespace] = outcome.by_namespace.get(head.namespace, 0) + 1
    with connect(url) as conn, bar(len(heads), "remove from read tables", unit="task",
                                   enabled=options.progress) as shown:
        for start in range(0, len(heads), options.batch_size):
            batch = list(heads[start:start + options.batch_size])
            with conn.transaction():
                removed, pruned = _settle_batch(conn, output, sha, batch, options.prune_events)
            outcome.removed += removed
            outcome.pruned_events += pruned
            shown.update(len(batch))
    return outcome


def _settle_batch(conn: psycopg.Connection[Any], output: str, sha: str, batch: list[TaskHead],
                  prune: bool) -> tuple[int, int]:
    ids = [UUID(h.task_id) for h in batch]
    recorded = dict(conn.execute("SELECT task_id, pruned FROM archived_tasks WHERE task_id = ANY(%s) FOR UPDATE",
                                 (ids,)).fetchall())
    fresh = [h for h in batch if UUID(h.task_id) not in recorded]
    _check_unchanged(conn, fresh)
    if fresh:
        conn.execute(RECORD, ([UUID(h.task_id) for h in fresh], [h.namespace for h in fresh],
                              [output] * len(fresh), [sha] * len(fresh), [h.events for h in fresh],
                              [h.version for h in fresh], [h.last_position for h in fresh]))
        fresh_ids = [UUID(h.task_id) for h in fresh]
        for table, column in READ_TABLES.items():
            conn.execute(f"DELETE FROM {table} WHERE {column} = ANY(%s)", (fresh_ids,))
    if not prune:
        return len(fresh), 0
    unpruned = [h for h in batch if not recorded.get(UUID(h.task_id), False)]
    return len(fresh), _prune(conn, unpruned)


def _check_unchanged(conn: psycopg.Connection[Any], heads: list[TaskHead]) -> None:
    """Each task's stored stream must be exactly what the file holds (it is dropped: nothing can follow)."""
    if not heads:
        return
    stored = {str(task_id): (int(n), int(top)) for task_id, n, top in conn.execute(
        f"SELECT originator_id, count(*), max(originator_version) FROM {EVENTS_TABLE} "
        f"WHERE originator_id = ANY(%s) GROUP BY originator_id", ([UUID(h.task_id) for h in heads],))}
    for head in heads:
        if stored.get(head.task_id) != (head.events, head.version):
            have = stored.get(head.task_id, (0, 0))
            raise Refused(f"task {head.task_id} holds {have[0]} events up to v{have[1]} in the store, but the "
                            f"archive holds {head.events} up to v{head.version}; nothing of this batch was removed. "
                            f"Archive it again into another file")


def _prune(conn: psycopg.Connection[Any], heads: list[TaskHead]) -> int:
    """Deletes the archived events (and snapshots) of these tasks; all of them or, on any mismatch, none."""
    if not heads:
        return 0
    ids = [UUID(h.task_id) for h in heads]
    deleted = conn.execute(f"DELETE FROM {EVENTS_TABLE} WHERE originator_id = ANY(%s)", (ids,)).rowcount
    expected = sum(h.events for h in heads)
    if deleted != expected:
        raise Refused(f"pruning would delete {deleted} events where the archive holds {expected}; "
                        f"nothing of this batch was pruned. Run `taskledger verify`")
    if conn.execute("SELECT to_regclass(%s) IS NOT NULL", (SNAPSHOTS_TABLE,)).fetchone() == (True,):
        conn.execute(f"DELETE FROM {SNAPSHOTS_TABLE} WHERE originator_id = ANY(%s)", (ids,))
    conn.execute("UPDATE archived_tasks SET pruned = true WHERE task_id = ANY(%s)", (ids,))
    return deleted
