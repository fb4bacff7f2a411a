"""`taskledger audit TASK`: one task's timeline — every event with who, through which API, in
which request, and what it changed — read from the event store, so dropped tasks answer too."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from ledger.domain import is_task_event, next_state
from ledger.history import describe_event
from ledger.state import TaskState
from taskledger.tools.chain import Finding, Head, Link, check_chain
from taskledger.tools.store import Decoder, StoredRow, ToolError, connect, open_ledger, read_rows, where

# Change with every event; the header line of each entry shows them (version, time) or the footer does.
BOOKKEEPING = ("version", "updated_at", "chain_hash")


@dataclass(frozen=True)
class Entry:
    """One event as the audit shows it: the described event and the state fields it changed."""

    event: dict[str, Any]
    changes: dict[str, dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        return {**self.event, "changes": self.changes}


@dataclass(frozen=True)
class Timeline:
    task_id: UUID
    entries: list[Entry]
    state: dict[str, Any]
    findings: list[Finding]


def timeline(url: str, task_id: UUID) -> Timeline:
    """Every event of a task, oldest first, with the state diff each one caused and the chain's verdict."""
    app = open_ledger(url)
    try:
        with connect(url) as conn:
            rows = list(read_rows(conn, "stream", "originator_id = %s", (task_id,)))
            head = _head(conn, task_id)
        if not rows:
            raise ToolError(f"no task {task_id} in {where(url)}")
        return _build(Decoder(app.mapper), task_id, rows, head)
    finally:
        app.close()


def _build(decoder: Decoder, task_id: UUID, rows: list[StoredRow], head: Head | None) -> Timeline:
    entries: list[Entry] = []
    links: list[Link] = []
    state: TaskState | None = None
    for row in rows:
        try:
            event, written = decoder.event(row), decoder.stored_form(row)
        except ValueError as exc:
            raise ToolError(f"version {row.originator_version} of task {task_id} cannot be decoded ({exc}); "
                            f"run `taskledger verify`") from None
        if not is_task_event(event):
            raise ToolError(f"{task_id} is not a task (its events are {type(event).__qualname__})")
        before = None if state is None else state.to_dict()
        try:
            state = next_state(state, event)
            changes = diff(before, state.to_dict())
        except ValueError:
            changes = {}  # a gap in the stream: the chain findings below say which version is missing
        entries.append(Entry(describe_event(event, row.position), changes))
        links.append(Link.of(written))
    findings = check_chain(str(task_id), links, head)
    return Timeline(task_id, entries, {} if state is None else state.to_dict(), findings)


def diff(before: dict[str, Any] | None, after: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The state fields an event changed (a creation changes every field that is set)."""
    old = before or {}
    return {name: {"before": old.get(name), "after": value} for name, value in after.items()
            if name not in BOOKKEEPING and (name not in old or old[name] != value)
            and (before is not None or value not in (None, "", [], {}))}


def _head(conn: Any, task_id: UUID) -> Head | None:
    row = conn.execute("SELECT version, doc->>'chain_hash' FROM tasks WHERE id = %s", (task_id,)).fetchone()
    return None if row is None else Head(int(row[0]), str(row[1] or ""))


# ------------------------------------------------------------------------ rendering
def json_lines(found: Timeline) -> Iterator[str]:
    for entry in found.entries:
        yield json.dumps(entry.to_dict(), ensure_ascii=False, default=str)


def human(found: Timeline) -> Iterator[str]:
    """A header, one block per event with aligned columns, and the hash chain's verdict."""
    s = found.state
    dropped = "  (dropped)" if s.get("dropped") else ""
    yield (f"task {found.task_id}  {s.get('name')!r}  namespace {s.get('namespace')}  facade {s.get('facade')}  "
           f"{len(found.entries)} events  now {s.get('state')}{dropped}")
    widths = {key: max(len(str(e.event[key])) for e in found.entries)
              for key in ("version", "type", "actor", "facade")}
    for entry in found.entries:
        yield ""
        yield from _block(entry, widths)
    yield ""
    yield from _verdict(found)


def _block(entry: Entry, widths: dict[str, int]) -> Iterator[str]:
    e = entry.event
    yield (f"v{e['version']:<{widths['version']}}  {e['time']}  {e['type']:<{widths['type']}}  "
           f"actor {e['actor']:<{widths['actor']}}  facade {e['facade']:<{widths['facade']}}  "
           f"request {e['request_id']}  position {e.get('position')}")
    yield from _fields("data", {k: _show(v) for k, v in e["data"].items()})
    if e["version"] == 1 and e["type"] == "Created":
        yield from _fields("initial", {k: _show(c["after"]) for k, c in entry.changes.items()})
        return
    yield from _fields("changed", {k: f"{_show(c['before'])} → {_show(c['after'])}"
                                   for k, c in entry.changes.items()})


def _fields(label: str, values: dict[str, str]) -> Iterator[str]:
    for index, (name, text) in enumerate(values.items()):
        yield f"    {label if index == 0 else '':<8} {name}: {text}"


def _show(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


def _verdict(found: Timeline) -> Iterator[str]:
    if not found.findings:
        last = found.entries[-1].event
        yield f"hash chain: intact over {len(found.entries)} events (head {last['hash']})"
        return
    yield f"hash chain: BROKEN ({len(found.findings)} problems; `taskledger verify` checks every task)"
    for f in found.findings:
        yield f"    v{f.version}  {f.kind}: {f.detail}"
