"""`taskledger verify`: every stream's hash chain, the task view against the aggregate's replay,
and every projection's tables against a fresh replay of the real projection code.

All reads come from one REPEATABLE READ snapshot, so a running service does not make verify see
a half-applied state: each projection is compared at the position it had reached in that snapshot.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import groupby
from typing import Any
from uuid import UUID, uuid4

import psycopg
from eventsourcing.domain import EventSourcingError, OriginatorVersionError
from eventsourcing.utils import TopicError
from psycopg import sql
from psycopg.rows import dict_row

from ledger.domain import is_task_event
from taskledger.tools.archived import archived_positions, is_archived
from taskledger.tools.chain import Finding, Head, Link, check_chain
from taskledger.tools.progress import bar
from taskledger.tools.scratch import ScratchProjections, diff_table, field_differences
from taskledger.tools.snapshots import check_snapshots
from taskledger.tools.store import (
    Decoder,
    StoredRow,
    connect,
    count_rows,
    open_ledger,
    read_rows,
    tracked_positions,
)

UNREADABLE = (EventSourcingError, TopicError, ValueError, TypeError, KeyError, IndexError, AttributeError)
TASK_VIEW = "task_view"
REPLAY_BATCH = 1000


@dataclass
class Report:
    """What verify looked at and every problem it found."""

    streams: int = 0
    events: int = 0
    snapshots: int = 0
    positions: dict[str, int] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.findings

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "streams": self.streams, "events": self.events, "snapshots": self.snapshots,
                "positions": self.positions,
                "findings": [f.to_dict() for f in self.findings]}


@dataclass(frozen=True)
class ViewRow:
    id: UUID
    version: int
    dropped: bool
    doc: dict[str, Any]


def render(report: Report) -> Iterator[str]:
    """The human report: one aligned line per problem, then a one-line verdict."""
    widths = {"check": max([5, *(len(f.check) for f in report.findings)]),
              "kind": max([4, *(len(f.kind) for f in report.findings)])}
    for f in report.findings:
        version = "" if f.version is None else f"v{f.version}"
        yield (f"{f.check:<{widths['check']}}  task {f.task_id or '-':<36}  {version:<6}  "
               f"{f.kind:<{widths['kind']}}  {f.detail}")
    positions = ", ".join(f"{name} at {p}" for name, p in report.positions.items())
    verdict = "consistent" if report.ok else f"{len(report.findings)} problems"
    yield (f"verify: {verdict} — {report.streams} streams, {report.events} events, {report.snapshots} snapshots; "
           f"projections compared: {positions}")


def verify(url: str, *, projections: bool = True, progress: bool = True) -> Report:
    """Checks the whole database; the report lists every problem (an empty list means all is well)."""
    app = open_ledger(url)
    decoder = Decoder(app.mapper)
    report = Report()
    try:
        with connect(url) as snapshot:
            snapshot.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
            snapshot.read_only = True
            report.positions = tracked_positions(snapshot)
            archived = archived_positions(snapshot)  # archived, not pruned: no rows on purpose (retention.md)
            check_streams(snapshot, decoder, report, progress, archived)
            report.snapshots, found = check_snapshots(snapshot, decoder, progress)
            report.findings += found
            if projections:
                compare_projections(url, snapshot, decoder, report, progress, archived)
    finally:
        app.close()
    return report


# ------------------------------------------------------------- chains and the task view
def check_streams(conn: psycopg.Connection[Any], decoder: Decoder, report: Report, progress: bool,
                  archived: dict[UUID, int] | None = None) -> None:
    """One pass in stream order, merged with the task view's rows in id order."""
    view_position = report.positions.get(TASK_VIEW, 0)
    views = _view_rows(conn)
    pending = next(views, None)
    with bar(count_rows(conn), "verify chains", enabled=progress) as shown:
        for task_id, grouped in groupby(read_rows(conn, "stream"), key=lambda r: r.originator_id):
            while pending is not None and pending.id < task_id:
                report.findings.append(_orphan(pending))
                pending = next(views, None)
            view = pending if pending is not None and pending.id == task_id else None
            if view is not None:
                pending = next(views, None)
            rows = list(grouped)
            gone = is_archived(archived or {}, task_id, rows[0].position)  # its chain is checked, no row expected
            report.findings += check_stream(decoder, rows, view, -1 if gone else view_position)
            report.streams += 1
            report.events += len(rows)
            shown.update(len(rows))
    while pending is not None:
        report.findings.append(_orphan(pending))
        pending = next(views, None)


def check_stream(decoder: Decoder, rows: list[StoredRow], view: ViewRow | None,
                 view_position: int) -> list[Finding]:
    """The chain of one stream, then its task-view row against the aggregate replayed to the row's version."""
    task_id = str(rows[0].originator_id)
    findings: list[Finding] = []
    events: list[tuple[StoredRow, Any]] = []
    links: list[Link] = []
    unreadable: list[int] = []
    for row in rows:
        try:
            written, event = decoder.stored_form(row), decoder.event(row)
        except UNREADABLE as exc:
            unreadable.append(row.originator_version)
            findings.append(Finding("chain", task_id, row.originator_version, "undecodable", str(exc)[:300]))
            continue
        events.append((row, event))
        if "prev_hash" in vars(written):
            links.append(Link.of(written))
    if not events or not is_task_event(events[0][1]):
        return findings  # the ledger's own bookkeeping (id sequences): no chain, no view row
    head = None if view is None else Head(view.version, str(view.doc.get("chain_hash", "")))
    findings += check_chain(task_id, links, head, unreadable)
    return findings + check_view_row(task_id, events, view, view_position)


def check_view_row(task_id: str, events: list[tuple[StoredRow, Any]], view: ViewRow | None,
                   view_position: int) -> list[Finding]:
    if view is None:
        created = events[0][0].position
        if created <= view_position:
            return [Finding(TASK_VIEW, task_id, None, "missing",
                            f"the task view has applied position {view_position} but has no row for this task "
                            f"(its first event is at position {created})")]
        return []
    findings = []
    later = [row for row, _ in events if row.originator_version > view.version and row.position <= view_position]
    if later:
        findings.append(Finding(TASK_VIEW, task_id, view.version, "behind",
                                f"the row is at version {view.version}, but the view has applied position "
                                f"{later[0].position} (version {later[0].originator_version})"))
    return findings + _compare_doc(task_id, [e for _, e in events], view)


def _compare_doc(task_id: str, events: list[Any], view: ViewRow) -> list[Finding]:
    """The row (document, version and dropped columns) against the aggregate replayed to its version."""
    replayed = _replay(task_id, events, view.version)
    if replayed is None or isinstance(replayed, Finding):
        return [] if replayed is None else [replayed]
    live = {**view.doc, "column version": view.version, "column dropped": view.dropped}
    want = {**replayed, "column version": replayed["version"], "column dropped": replayed["dropped"]}
    if live == want:
        return []
    return [Finding(TASK_VIEW, task_id, view.version, "differs", f"the row differs from the aggregate "
                    f"replayed to version {view.version}: {field_differences(live, want)}")]


def _replay(task_id: str, events: list[Any], version: int) -> dict[str, Any] | Finding | None:
    """The aggregate's own replay up to a version; None when that version is not stored (reported as deleted)."""
    task: Any = None
    try:
        for event in events:
            if event.originator_version > version:
                break
            task = event.mutate(task)
    except OriginatorVersionError as exc:
        return Finding(TASK_VIEW, task_id, version, "unreplayable", f"the stream cannot be replayed to version "
                       f"{version}: it holds version {exc.args[0]} where version {exc.args[1]} was expected")
    except UNREADABLE as exc:
        return Finding(TASK_VIEW, task_id, version, "unreplayable",
                       f"the stream cannot be replayed to version {version}: {type(exc).__name__}: {exc}")
    if task is None or task.version != version:
        return None
    state: dict[str, Any] = task.state.to_dict()
    return state


def _orphan(view: ViewRow) -> Finding:
    return Finding(TASK_VIEW, str(view.id), view.version, "orphan",
                   "the task view has a row for a task that has no events")


def _view_rows(conn: psycopg.Connection[Any]) -> Iterator[ViewRow]:
    with conn.cursor(name=f"tl_view_{uuid4().hex[:12]}", row_factory=dict_row) as cursor:
        cursor.itersize = 1000
        cursor.execute("SELECT id, version, dropped, doc FROM tasks ORDER BY id")
        for row in cursor:
            yield ViewRow(row["id"], row["version"], row["dropped"], row["doc"])


# ------------------------------------------------------------------ every projection
def compare_projections(url: str, snapshot: psycopg.Connection[Any], decoder: Decoder, report: Report,
                        progress: bool, archived: dict[UUID, int] | None = None) -> None:
    """Replays the real projection classes into a scratch schema up to each one's live position, then diffs."""
    scratch = ScratchProjections(url, list(report.positions))
    try:
        broken = _feed(scratch, snapshot, decoder, report, progress, archived or {})
        with connect(url) as fresh:
            for name, tables in scratch.tables.items():
                for table in tables if name not in broken else ():
                    report.findings += [
                        Finding(name, _task_of(d.key), None, d.kind,
                                f"{table} {_key_text(d.key)}: {d.detail}")
                        for d in diff_table(snapshot, fresh, scratch.schema, table)]
    finally:
        scratch.drop()


def _feed(scratch: ScratchProjections, snapshot: psycopg.Connection[Any], decoder: Decoder, report: Report,
          progress: bool, archived: dict[UUID, int]) -> set[str]:
    """Feeds every event up to each projection's position; a projection that cannot apply one is dropped."""
    broken: set[str] = set()
    upto = max(report.positions.values(), default=0)
    condition = "notification_id <= %s"
    pending: dict[str, list[tuple[StoredRow, Any]]] = {name: [] for name in report.positions}

    def flush(name: str) -> None:
        batch, pending[name] = pending[name], []
        if name in broken or not batch:
            return
        try:
            scratch.apply_batch(name, [(row.position, event) for row, event in batch], batch[-1][0].position)
        except (*UNREADABLE, psycopg.Error):
            broken.add(name)
            row, exc = _first_failure(scratch, name, batch)
            report.findings.append(Finding(name, str(row.originator_id), row.originator_version, "unreplayable",
                                           f"the projection cannot apply position {row.position} "
                                           f"({type(exc).__name__}: {exc}); its tables were not compared"))

    with bar(count_rows(snapshot, condition, (upto,)), "replay projections", enabled=progress) as shown:
        for row in read_rows(snapshot, "log", condition, (upto,)):
            shown.update()
            if is_archived(archived, row.originator_id, row.position):
                continue  # archived: the live tables no longer hold it, by design
            try:
                event = decoder.event(row)
            except UNREADABLE:
                continue  # reported by the chain check; the live projection could not have applied it either
            for name, position in report.positions.items():
                if name in broken or row.position > position or not scratch.wants(name, row.topic):
                    continue
                pending[name].append((row, event))
                if len(pending[name]) >= REPLAY_BATCH:
                    flush(name)
        for name in report.positions:
            flush(name)
    return broken


def _first_failure(scratch: ScratchProjections, name: str, batch: list[tuple[StoredRow, Any]]) -> tuple[StoredRow, Exception]:
    """The event of a failed batch the projection cannot apply, each tried alone (and rolled back)."""
    view = scratch.views[name]
    for end, (row, _) in enumerate(batch, 1):
        try:
            with scratch.datastore.transaction(commit=False) as curs:
                view.write(curs, [(r.position, e) for r, e in batch[:end]])
        except (*UNREADABLE, psycopg.Error) as exc:
            return row, exc
    return batch[-1][0], RuntimeError("the batch failed but no single event did")


def _task_of(key: dict[str, Any]) -> str | None:
    first = next(iter(key.values()), None)
    return str(first) if isinstance(first, UUID) else None


def _key_text(key: dict[str, Any]) -> str:
    return "(" + ", ".join(f"{k}={v}" for k, v in key.items()) + ")"
