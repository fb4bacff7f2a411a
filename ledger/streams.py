"""StreamApplication: an eventsourcing Application with the ledger's write discipline.

Load (cached copy or latest snapshot + newer events) → act on a copy → one guarded append that
also carries the snapshot when one is due → answer from the state the write produced. See
`ledger.store` for why a cached copy may be acted on before it is checked.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application, Repository

from ledger.domain import StaleSnapshotError
from ledger.errors import ConcurrentWriteError, LedgerError
from ledger.store import (
    DEFAULT_CACHE_SIZE,
    DEFAULT_SNAPSHOT_INTERVAL,
    AggregateCache,
    Append,
    Appended,
    GenericStreams,
    Stream,
    StreamStore,
    clone,
    project,
)

WRITE_ATTEMPTS = 3
Action = Callable[[Any], Any]


@dataclass
class Acted:
    """What one action did: the aggregate's version after it, what it returned, the positions written so far."""

    aggregate: Any
    version: int
    extra: Any
    positions: list[int]

    @property
    def position(self) -> int | None:
        """The log position of the last event this action (or one before it in the same write) recorded."""
        return self.positions[-1] if self.positions else None


class BoundedSet:
    """The most recently added keys, at most `maxsize` of them."""

    def __init__(self, maxsize: int) -> None:
        self.maxsize = max(maxsize, 1)
        self._keys: OrderedDict[UUID, None] = OrderedDict()
        self._lock = threading.Lock()

    def add(self, key: UUID) -> None:
        with self._lock:
            self._keys[key] = None
            self._keys.move_to_end(key)
            while len(self._keys) > self.maxsize:
                self._keys.popitem(last=False)

    def discard(self, key: UUID) -> None:
        with self._lock:
            self._keys.pop(key, None)

    def __contains__(self, key: object) -> bool:
        return key in self._keys


class StreamApplication(Application[UUID]):
    """Writes through guarded appends and a cache of never-mutated aggregates; history through the repository."""

    is_snapshotting_enabled = True

    def __init__(self, env: dict[str, str] | None = None, *, cache_size: int = DEFAULT_CACHE_SIZE,
                 snapshot_interval: int = DEFAULT_SNAPSHOT_INTERVAL) -> None:
        super().__init__(env)
        self.cache = AggregateCache(cache_size)
        self.snapshot_interval = snapshot_interval
        self.streams: StreamStore = self.recorder if isinstance(self.recorder, StreamStore) else GenericStreams(self)
        # Streams loaded with a long tail of events after their latest snapshot: the next write snapshots them.
        self._snapshot_due = BoundedSet(cache_size)

    def construct_repository(self) -> Repository[UUID]:
        """The library's repository, for history only (`as_of`): uncached, from the latest snapshot at or before."""
        return Repository(event_store=self.events, snapshot_store=self.snapshots)

    def close(self) -> None:
        closing = getattr(self.recorder, "close", None)
        if closing is not None:
            closing()
        super().close()

    # ------------------------------------------------------------------ reads
    def fetch(self, ids: Iterable[UUID]) -> dict[UUID, Any]:
        """The latest state of each aggregate as the store has it now (absent ids: no such aggregate)."""
        bases = {i: self.cache.get(i) for i in dict.fromkeys(ids)}
        streams = self.streams.read_streams({i: (b.version if b is not None else 0) for i, b in bases.items()})
        found: dict[UUID, Any] = {}
        for aggregate_id, base in bases.items():
            latest = self._caught_up(aggregate_id, base, streams.get(aggregate_id))
            if latest is not None:
                found[aggregate_id] = latest
        return found

    def _caught_up(self, aggregate_id: UUID, base: Any, stream: Stream | None) -> Any:
        if stream is None:
            return base
        start = base
        if stream.snapshot is not None:
            try:
                start = self.mapper.to_domain_event(stream.snapshot).mutate(None)  # type: ignore[attr-defined]
            except StaleSnapshotError:
                stream = self.streams.read_streams({aggregate_id: 0}, snapshots=False)[aggregate_id]
                start = None
        latest = project(start, (self.mapper.to_domain_event(e) for e in stream.events))
        if latest is not None:
            if len(stream.events) >= self.snapshot_interval:
                self._snapshot_due.add(aggregate_id)
            self.cache.put(aggregate_id, latest)
        return latest

    def history(self, aggregate_id: UUID, version: int | None = None) -> Any:
        """The aggregate exactly as it was at a version (or now), snapshots used where they are trusted."""
        try:
            return self.repository.get(aggregate_id, version=version)
        except StaleSnapshotError:
            events = self.events.get(aggregate_id, lte=version)
            found = project(None, events)
            if found is None:
                raise AggregateNotFoundError(aggregate_id) from None
            return found

    # ----------------------------------------------------------------- writes
    def act(self, aggregate_id: UUID, action: Action, *, retry: bool = True,
            missing: Callable[[UUID], Exception], kind: type[Any] = object) -> Acted:
        """Runs `action` on the latest aggregate and appends what it recorded; conflicts are run again. An
        aggregate that is not of `kind` (an id sequence named where a task is meant) is `missing`."""
        done = self.act_many([(aggregate_id, action)], retry=retry, missing=missing, kind=kind)[0]
        if isinstance(done, BaseException):
            raise done
        return done

    def act_many(self, items: Sequence[tuple[UUID, Action]], *, retry: bool = True,
                 missing: Callable[[UUID], Exception], kind: type[Any] = object) -> list[Acted | LedgerError]:
        """Every item in as few appends as possible (one when nothing conflicts); each item answers alone."""
        groups: dict[UUID, _Group] = {}
        for index, (aggregate_id, action) in enumerate(items):
            group = groups.get(aggregate_id)
            if group is None:
                group = groups[aggregate_id] = _Group(aggregate_id, self.cache.get(aggregate_id))
            group.indices.append(index)
            group.actions.append(action)
        results: list[Acted | LedgerError | None] = [None] * len(items)
        todo = list(groups.values())  # in input order: the log keeps the order the items came in
        while todo:
            self._load_cold([g for g in todo if g.base is None and not g.verified])
            for g in todo:
                g.run = self._run(g.base if isinstance(g.base, kind) else None, g.actions, g.id, missing)
            writes = [g for g in todo if (g.verified or not g.run.unsure) and g.run.aggregate is not None
                      and g.run.events]
            appended = self.streams.append([self._append_of(g.run) for g in writes]) if writes else Appended()
            again = []
            for g in todo:
                run = g.run
                if not g.verified and run.unsure or g.id in appended.stale:
                    again.append(g)
                    continue
                positions = appended.positions.get(g.id, [])
                if positions:
                    self.cache.put(g.id, run.aggregate)
                    self._snapshot_due.discard(g.id)
                for k, outcome in zip(g.indices, run.outcomes(positions)):
                    results[k] = outcome
            todo = []
            for g in again:
                if g.verified:  # a real conflict: another writer appended first
                    g.conflicts += 1
                    if g.conflicts >= (WRITE_ATTEMPTS if retry else 1):
                        for k in g.indices:
                            results[k] = ConcurrentWriteError(g.id)
                        continue
                todo.append(g)
            if todo:
                latest = self.fetch([g.id for g in todo])
                for g in todo:
                    g.base, g.verified = latest.get(g.id), True
        return [r for r in results if r is not None]

    def _load_cold(self, groups: list[_Group]) -> None:
        if groups:
            found = self.fetch([g.id for g in groups])
            for g in groups:
                g.base, g.verified = found.get(g.id), True

    def _run(self, base: Any, actions: list[Action], aggregate_id: UUID,
             missing: Callable[[UUID], Exception]) -> _Run:
        run = _Run(None if base is None else clone(base))
        for action in actions:
            if run.aggregate is None:
                run.add(missing(aggregate_id), 0)
                continue
            before = len(run.aggregate.pending_events)
            try:
                extra = action(run.aggregate)
            except LedgerError as error:
                if len(run.aggregate.pending_events) != before:
                    raise RuntimeError(f"{type(error).__name__} after recording events: a command must "
                                       f"check before it records") from error
                run.add(error, before)
                continue
            run.add(extra, len(run.aggregate.pending_events))
        if run.aggregate is not None:
            run.events = run.aggregate.collect_events()
        return run

    def _append_of(self, run: _Run | Pending) -> Append:
        aggregate = run.aggregate
        stored = [self.mapper.to_stored_event(e) for e in run.events]
        first = run.events[0].originator_version
        crossed = aggregate.version // self.snapshot_interval > (first - 1) // self.snapshot_interval
        snapshot = None
        if self.snapshots is not None and (crossed or aggregate.id in self._snapshot_due):
            snapshot = self.mapper.to_stored_event(type(aggregate).Snapshot.take(aggregate))
        return Append(stored, snapshot)


class _Group:
    """The items of one batch on one aggregate, and where they stand."""

    __slots__ = ("id", "base", "verified", "conflicts", "indices", "actions", "run")

    def __init__(self, aggregate_id: UUID, base: Any) -> None:
        self.id, self.base = aggregate_id, base
        self.verified = False
        self.conflicts = 0
        self.indices: list[int] = []
        self.actions: list[Action] = []
        self.run: _Run = _Run(None)


class Pending:
    """A new aggregate and the events that create it, to append."""

    def __init__(self, aggregate: Any) -> None:
        self.aggregate = aggregate
        self.events: list[Any] = aggregate.collect_events()


class _Run:
    """One aggregate's actions of one attempt: each outcome, and how many events had been recorded after it."""

    def __init__(self, aggregate: Any) -> None:
        self.aggregate = aggregate
        self.marks: list[tuple[Any, int]] = []
        self.events: list[Any] = []

    def add(self, outcome: Any, recorded: int) -> None:
        self.marks.append((outcome, recorded))

    @property
    def unsure(self) -> bool:
        """Whether an answer rests on the state alone (a refusal, or nothing written): check it first."""
        written_before = 0
        for outcome, recorded in self.marks:
            if isinstance(outcome, BaseException) or recorded == written_before:
                return True
            written_before = recorded
        return False

    def outcomes(self, positions: list[int]) -> list[Acted | LedgerError]:
        done: list[Acted | LedgerError] = []
        total = len(self.events)
        for outcome, recorded in self.marks:
            if isinstance(outcome, LedgerError):
                done.append(outcome)
            elif isinstance(outcome, BaseException):
                raise outcome
            else:
                version = self.aggregate.version - (total - recorded)
                done.append(Acted(self.aggregate, version, outcome, positions[:recorded]))
        return done
