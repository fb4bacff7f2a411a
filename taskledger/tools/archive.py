"""`taskledger archive`: ended tasks older than a policy's age go to a verifiable JSON Lines file and leave
the read tables (and, with `--prune-events` only, the event store). docs/retention.md.

1. choose   ended tasks (SUCCEEDED, FAILED, CANCELLED, ABORTED or dropped) of the namespaces, with no event
            for the policy's age and no schedule that could still run (a FAILED recurring task resumes)
2. drop     the ones not dropped yet get a `Dropped` event (actor `taskledger-archive`): a dropped task takes
            no command, so its stream is final; then wait until every projection has applied it
3. write    FILE.partial, fsynced, read back and verified offline, renamed to FILE, directory fsynced
4. settle   per batch, one transaction: record the tasks in `archived_tasks`, delete their read rows
            (and with --prune-events their events and snapshots). A re-run with FILE continues here.
"""

from __future__ import annotations

import os
import re
import zlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any
from uuid import UUID, uuid4

import psycopg

from ledger import commands as c
from ledger.application import TaskLedger
from ledger.errors import IllegalTransitionError, TaskDroppedError
from projections.runner import LOCK_SPACE
from taskledger.tools import archived
from taskledger.tools.archive_file import ArchiveReport, ArchiveWriter, check_archive
from taskledger.tools.chain import Link
from taskledger.tools.archive_settle import Options, Outcome, Refused, settle, wait_projected
from taskledger.tools.progress import bar
from taskledger.tools.store import Decoder, ToolError, connect, open_ledger, read_rows, where

ENDED = ("SUCCEEDED", "FAILED", "CANCELLED", "ABORTED")
AGE = re.compile(r"^(\d{1,6})([smhdw])$")
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
ACTOR = c.Caller("taskledger-archive", "", "native")
Say = Callable[[str], None]


@dataclass(frozen=True)
class Policy:
    """Which tasks go: the namespaces (exact names, a prefix, or all) and how long ago they ended."""

    ended_before: timedelta
    namespaces: tuple[str, ...] = ()
    prefix: str | None = None

    def describe(self) -> dict[str, Any]:
        scope: dict[str, Any] = ({"namespaces": list(self.namespaces)} if self.namespaces else
                                 {"namespace_prefix": self.prefix} if self.prefix is not None else
                                 {"all_namespaces": True})
        return {**scope, "ended_before_seconds": int(self.ended_before.total_seconds())}


def parse_age(text: str) -> timedelta:
    """`30d`, `12h`, `90m`, `45s`, `2w`: how long ago a task must have ended."""
    match = AGE.match(text)
    if not match:
        raise ValueError(f"{text!r} is not an age like 30d, 12h, 90m, 45s or 2w (a whole number and a unit)")
    return timedelta(seconds=int(match.group(1)) * UNITS[match.group(2)])


def candidates(conn: psycopg.Connection[Any], policy: Policy, now: datetime) -> list[tuple[UUID, str, int, bool]]:
    """(id, namespace, version, dropped) of every task the policy selects, in id order."""
    where_ns, params = _scope(policy)
    rows = conn.execute(
        f"""SELECT id, namespace, version, dropped FROM tasks
            WHERE {where_ns} AND (dropped OR state = ANY(%s)) AND updated_at < %s
              AND NOT (NOT dropped AND state = 'FAILED' AND json_typeof(doc -> 'schedule') = 'object')
            ORDER BY id""", (*params, list(ENDED), now - policy.ended_before)).fetchall()
    return [(r[0], r[1], int(r[2]), bool(r[3])) for r in rows]


def _scope(policy: Policy) -> tuple[str, tuple[Any, ...]]:
    if policy.namespaces:
        return "namespace = ANY(%s)", (list(policy.namespaces),)
    if policy.prefix is not None:
        escaped = policy.prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        return "namespace LIKE %s", (escaped + "%",)
    return "TRUE", ()


def dry_run(url: str, policy: Policy, now: datetime) -> Outcome:
    """How many tasks and events the policy would archive; changes nothing."""
    with connect(url) as conn:
        chosen = candidates(conn, policy, now)
    outcome = Outcome(tasks=len(chosen), events=sum(v + (0 if d else 1) for _, _, v, d in chosen),
                      dropped_first=sum(1 for *_, d in chosen if not d))
    for _, namespace, _, _ in chosen:
        outcome.by_namespace[namespace] = outcome.by_namespace.get(namespace, 0) + 1
    return outcome


def archive(url: str, policy: Policy, output: str, options: Options, say: Say, now: datetime) -> Outcome:
    """Archives what the policy selects into `output`, or continues the archive `output` already holds."""
    app = open_ledger(url)
    try:
        with exclusive(url):
            with connect(url, autocommit=True) as conn:
                archived.create_table(conn)
            if os.path.exists(output):
                return _continue(url, policy, output, options, say, now)
            return _fresh(url, app, policy, output, options, now)
    finally:
        app.close()


def _continue(url: str, policy: Policy, output: str, options: Options, say: Say, now: datetime) -> Outcome:
    report = check_archive(output)
    if not report.ok:
        first = report.findings[0]
        raise ToolError(f"{output} exists and is not a complete archive ({first.kind}: {first.detail}); "
                        f"choose another --output, or check it with `taskledger verify --archive {output}`")
    say(f"{output} holds an archive of {report.tasks} tasks; finishing it")
    heads = list(report.heads.values())
    wait_projected(url, max((h.last_position for h in heads), default=0), options.wait)
    outcome = settle(url, output, report.sha256, heads, options)
    outcome.sha256, outcome.continued = report.sha256, True
    with connect(url) as conn:
        outcome.more = len(candidates(conn, policy, now))
    return outcome


def _fresh(url: str, app: TaskLedger, policy: Policy, output: str, options: Options, now: datetime) -> Outcome:
    with connect(url) as conn:
        chosen = candidates(conn, policy, now)
    if not chosen:
        return Outcome()
    decoder = Decoder(app.mapper)
    wait_projected(url, _last_position(url, [task_id for task_id, *_ in chosen]), options.wait)
    _check_heads(url, decoder, [task_id for task_id, *_ in chosen])
    dropped = _drop(app, [task_id for task_id, _, _, was_dropped in chosen if not was_dropped], options)
    ids = [task_id for task_id, *_ in chosen if task_id not in dropped.refused]
    if not ids:
        return Outcome()
    wait_projected(url, _last_position(url, ids), options.wait)
    header = {"created_at": now.isoformat(), "source": where(url), "policy": policy.describe(),
              "prune_events": options.prune_events}
    with connect(url) as conn:  # the heads the task view recorded, now that the drops are applied
        recorded = _view_heads(conn, ids)
    report = _write(url, decoder, output, header, ids, {task_id: ns for task_id, ns, *_ in chosen}, options,
                    recorded)
    outcome = settle(url, output, report.sha256, list(report.heads.values()), options)
    outcome.dropped_first, outcome.sha256 = dropped.count, report.sha256
    return outcome


def _last_position(url: str, ids: list[UUID]) -> int:
    with connect(url) as conn:
        top = conn.execute("SELECT coalesce(max(notification_id), 0) FROM taskledger_events "
                           "WHERE originator_id = ANY(%s)", (ids,)).fetchone()
    return int(top[0]) if top else 0


def _view_heads(conn: psycopg.Connection[Any], ids: list[UUID]) -> dict[str, tuple[int, str]]:
    return {str(i): (int(v), h) for i, v, h in conn.execute(
        "SELECT id, version, doc ->> 'chain_hash' FROM tasks WHERE id = ANY(%s)", (ids,))}


def _check_heads(url: str, decoder: Decoder, ids: list[UUID]) -> None:
    """Each task's last stored event still hashes to the head the task view recorded. Checked before the drop:
    the drop's event would link to an edited last event and so make the edit invisible to every chain check."""
    with connect(url) as conn:
        recorded = _view_heads(conn, ids)
        last = read_rows(conn, "stream", "(originator_id, originator_version) IN (SELECT originator_id, "
                         "max(originator_version) FROM taskledger_events WHERE originator_id = ANY(%s) "
                         "GROUP BY originator_id)", (ids,))
        for row in last:
            stored = (row.originator_version, Link.of(decoder.stored_form(row)).hash)
            if recorded.get(str(row.originator_id)) != stored:
                raise Refused(f"task {row.originator_id}: its last stored event (v{row.originator_version}, "
                              f"position {row.position}) does not hash to the chain head the task view recorded; "
                              f"an event was changed in the store. Nothing was archived; run `taskledger verify`")


@dataclass
class _Dropped:
    count: int = 0
    refused: set[UUID] = field(default_factory=set)


def _drop(app: TaskLedger, ids: Sequence[UUID], options: Options) -> _Dropped:
    """Drops every task not dropped yet, so its stream takes no further event; one that moved on is left."""
    done = _Dropped()
    caller = c.Caller(ACTOR.actor, f"archive-{uuid4()}", ACTOR.facade)
    with bar(len(ids), "drop before archiving", unit="task", enabled=options.progress and bool(ids)) as shown:
        for task_id in ids:
            try:
                app.drop_task(c.DropTask(task_id), caller)
                done.count += 1
            except TaskDroppedError:
                pass  # dropped meanwhile: just as final
            except IllegalTransitionError:
                done.refused.add(task_id)  # resumed meanwhile: no longer ended, not archived
            shown.update()
    return done


def _write(url: str, decoder: Decoder, output: str, header: dict[str, Any], ids: list[UUID],
           namespaces: dict[UUID, str], options: Options, recorded: dict[str, tuple[int, str]]) -> ArchiveReport:
    """Writes FILE.partial, verifies it by reading it back, then renames it to FILE; returns what was read."""
    partial = f"{output}.partial"
    try:
        out = open(partial, "w", encoding="utf-8", newline="\n")
    except OSError as exc:
        raise ToolError(f"cannot write {partial}: {exc.strerror}; choose another --output") from None
    with out, connect(url) as conn:
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        conn.read_only = True
        writer = ArchiveWriter(out, decoder, header, namespaces)
        total = conn.execute("SELECT count(*) FROM taskledger_events WHERE originator_id = ANY(%s)",
                             (ids,)).fetchone()
        with bar(int(total[0]) if total else 0, "write archive", enabled=options.progress) as shown:
            for row in read_rows(conn, "log", "originator_id = ANY(%s)", (ids,)):
                writer.event(row)
                shown.update()
        writer.finish()
    report = _read_back(partial, decoder, ids, recorded)
    os.replace(partial, output)
    _fsync_directory(output)
    return report


def _read_back(partial: str, decoder: Decoder, ids: list[UUID], recorded: dict[str, tuple[int, str]]) -> ArchiveReport:
    """The written file verified as `verify --archive` does, and its heads against the task view's."""
    report = check_archive(partial, decoder)
    if not report.ok or report.tasks != len(ids):
        first = report.findings[0] if report.findings else None
        detail = f"task {first.task_id} v{first.version}: {first.detail}" if first else f"{report.tasks} tasks"
        raise Refused(f"the archive written to {partial} does not verify ({detail}); nothing was removed. "
                      f"Run `taskledger verify` on the database")
    for task_id, head in report.heads.items():
        if recorded.get(task_id) != (head.version, head.chain_hash):
            raise Refused(f"task {task_id}: its stored events end at v{head.version} with a hash the task view did "
                          f"not record (v{recorded.get(task_id, (0, ''))[0]}); an event was changed in the store. "
                          f"Nothing was removed; run `taskledger verify`")
    return report


def _fsync_directory(path: str) -> None:
    fd = os.open(os.path.dirname(os.path.abspath(path)), os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def exclusive(url: str) -> Iterator[None]:
    """One archive run per database at a time (released if the process dies)."""
    with connect(url, autocommit=True) as conn:
        key = (LOCK_SPACE << 32) | zlib.crc32(b"archive")
        got = conn.execute("SELECT pg_try_advisory_lock(%s::bigint)", (key,)).fetchone()
        if not (got and got[0]):
            raise ToolError("another `taskledger archive` is running on this database; let it finish")
        yield


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def describe(outcome: Outcome, prune: bool, *, dry: bool, output: str | None = None) -> Iterator[str]:
    """The summary lines a run prints on stdout."""
    spread = ", ".join(f"{ns} {n}" for ns, n in sorted(outcome.by_namespace.items())) or "none"
    if dry:
        yield f"would archive {outcome.tasks} tasks ({outcome.events} events); by namespace: {spread}"
        if outcome.dropped_first:
            yield f"{outcome.dropped_first} of them are not dropped yet: each would get a Dropped event first"
        yield ("their events would be deleted from the event store (--prune-events)" if prune else
               "their events would stay in the event store (add --prune-events to delete them)")
        return
    if not outcome.tasks:
        yield "nothing to archive: no task matches the policy" + (f"; {output} was not written" if output else "")
        return
    verb = "holds" if outcome.continued else "archived"
    yield (f"{output} {verb} {outcome.tasks} tasks ({outcome.events} events), sha256 {outcome.sha256}; "
           f"by namespace: {spread}")
    yield (f"removed {outcome.removed} tasks from the read tables"
           + (f" ({outcome.dropped_first} dropped first)" if outcome.dropped_first else "")
           + (f"; pruned {outcome.pruned_events} events from the event store" if prune else
              "; their events stay in the event store"))
    if outcome.more:
        yield (f"{outcome.more} more tasks match the policy; {output} already holds an archive: "
               f"run again with another --output")
