"""Where the ledger keeps aggregates: a per-process cache of the latest known state, snapshots, one-trip appends.

A write takes a copy of the cached aggregate (not yet checked against the store), acts on it and
appends its events guarded by the expected version. If another process wrote first, the append
reports the aggregate stale: the cache catches up from the store and the command runs again. An
answer that wrote nothing (a refusal, a directive) is only given from a state checked against the
store. Cold loads read the latest usable snapshot and the events after it.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.persistence import IntegrityError, StoredEvent

DEFAULT_CACHE_SIZE = 2000
# Writes between snapshots of a stream: a cold load replays at most this many events.
DEFAULT_SNAPSHOT_INTERVAL = 50


@dataclass
class Append:
    """One aggregate's new events (its expected version is the first one's minus one) and optional snapshot."""

    events: Sequence[StoredEvent]
    snapshot: StoredEvent | None = None


@dataclass
class Appended:
    """Which aggregates were written (their events' positions), and which were stale (not written)."""

    positions: dict[UUID, list[int]] = field(default_factory=dict)
    stale: set[UUID] = field(default_factory=set)


@dataclass
class Stream:
    """What a read found of one aggregate: its latest snapshot after the known version, and the events after."""

    snapshot: StoredEvent | None = None
    events: list[StoredEvent] = field(default_factory=list)


@runtime_checkable
class StreamStore(Protocol):
    """What the ledger needs of its event store beyond eventsourcing's recorder interface."""

    def append(self, batch: Sequence[Append]) -> Appended: ...

    def read_streams(self, known: Mapping[UUID, int], snapshots: bool = True) -> dict[UUID, Stream]: ...

    def positions_of(self, versions: Mapping[UUID, int]) -> dict[UUID, int]: ...


class GenericStreams:
    """StreamStore over any eventsourcing recorder (in-memory for the domain tests): one call per aggregate."""

    def __init__(self, app: Application[UUID]) -> None:
        self.app = app

    def append(self, batch: Sequence[Append]) -> Appended:
        result = Appended()
        for item in batch:
            originator_id: UUID = item.events[0].originator_id  # type: ignore[assignment]
            try:
                ids = self.app.recorder.insert_events(list(item.events))
            except IntegrityError:
                result.stale.add(originator_id)
                continue
            result.positions[originator_id] = list(ids or [])
            if item.snapshot is not None and self.app.snapshots is not None:
                self.app.snapshots.recorder.insert_events([item.snapshot])
        return result

    def positions_of(self, versions: Mapping[UUID, int]) -> dict[UUID, int]:
        """The log position of each aggregate's event at the given version (a scan: for small stores)."""
        found: dict[UUID, int] = {}
        after = 0
        while len(found) < len(versions):
            page = self.app.recorder.select_notifications(start=after, limit=1000, inclusive_of_start=False)
            if not page:
                break
            for n in page:
                if versions.get(n.originator_id) == n.originator_version:  # type: ignore[call-overload,arg-type]
                    found[n.originator_id] = n.id  # type: ignore[index]
            after = page[-1].id
        return found

    def read_streams(self, known: Mapping[UUID, int], snapshots: bool = True) -> dict[UUID, Stream]:
        found = {}
        for originator_id, version in known.items():
            snapshot = None
            if snapshots and self.app.snapshots is not None:
                latest = self.app.snapshots.recorder.select_events(originator_id, desc=True, limit=1)
                snapshot = latest[0] if latest and latest[0].originator_version > version else None
            after = snapshot.originator_version if snapshot else version
            events = list(self.app.recorder.select_events(originator_id, gt=after))
            if snapshot is not None or events:
                found[originator_id] = Stream(snapshot, events)
        return found


class AggregateCache:
    """The latest known state of recently used aggregates; entries are never mutated, only replaced."""

    def __init__(self, maxsize: int) -> None:
        self.maxsize = maxsize
        self._entries: OrderedDict[UUID, Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: UUID) -> Any | None:
        with self._lock:
            value = self._entries.get(key)
            if value is not None:
                self._entries.move_to_end(key)
            return value

    def put(self, key: UUID, value: Any) -> None:
        if self.maxsize <= 0:
            return
        with self._lock:
            current = self._entries.get(key)
            if current is not None and current.version > value.version:
                return  # a slower thread must not put an older state back
            self._entries[key] = value
            self._entries.move_to_end(key)
            while len(self._entries) > self.maxsize:
                self._entries.popitem(last=False)

    def discard(self, key: UUID) -> None:
        with self._lock:
            self._entries.pop(key, None)

    def __len__(self) -> int:
        return len(self._entries)


def clone(aggregate: Any) -> Any:
    """A copy to act on: the cached original stays as it was whatever the command does."""
    copied = object.__new__(type(aggregate))
    copied.__dict__.update(aggregate.__dict__)
    copied.__dict__["_pending_events"] = []
    state = aggregate.__dict__.get("state")
    if state is not None:
        copied.__dict__["state"] = state.copy()
    return copied


def project(aggregate: Any, events: Iterable[Any]) -> Any:
    """The aggregate after `events` (applied to a copy; `aggregate` may be None for a new stream)."""
    current = None if aggregate is None else clone(aggregate)
    for event in events:
        current = event.mutate(current)
    return current
