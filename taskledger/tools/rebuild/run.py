"""`taskledger rebuild`: fresh read tables built from position 0 beside the live ones, verified, switched.

1. build   the real projection classes fill `taskledger_rebuild_<name>` from the log in batches;
           the live tables keep serving. A killed run resumes after the last committed batch.
2. verify  against a REPEATABLE READ snapshot of the live tables, the rebuild fed exactly to the
           snapshot's position (every row compared), still without pausing anything.
3. switch  the live runner hands its lead over; the live and rebuilt tables are both brought to
           the head; rows written since the snapshot are compared; one transaction swaps the
           schemas; the lead is released and the runner continues from the new tracking position.
"""

from __future__ import annotations

import sys
import time
import zlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql

from projections.runner import LOCK_SPACE, lead_held
from taskledger.tools.progress import bar
from taskledger.tools.rebuild.compare import Differences, compare
from taskledger.tools.rebuild.feed import BATCH, Target, Unappliable, feed, head, pending
from taskledger.tools.rebuild.switch import drop_retired, leads, switch
from taskledger.tools.rebuild.tables import (
    LIVE_SCHEMA,
    ProjectionTables,
    open_rebuild,
    projection_tables,
    tables_in,
)
from taskledger.tools.store import Decoder, ToolError, connect, open_ledger, tracked_positions

NEAR_HEAD = 200  # events left when the unpaused catch-up stops and the switch (paused) takes the rest
MAX_PASSES = 20
SNAPSHOT_TRIES = 5
PUBLIC_ONLY = f"-c search_path={LIVE_SCHEMA}"

Say = Callable[[str], None]


@dataclass(frozen=True)
class Options:
    accept_differences: bool = False
    drop_retired: bool = False
    restart: bool = False
    handover_timeout: float = 30.0
    progress: bool = True
    batch_size: int = BATCH


@dataclass
class Switched:
    """A projection whose rebuilt tables are now the live ones."""

    name: str
    position: int
    rows: dict[str, int]
    retired: str
    differing: int = 0
    dropped: list[str] = field(default_factory=list)


class Refused(Exception):
    """The rebuild found a problem in the data (differences, an event it cannot apply); nothing was switched."""

    def __init__(self, message: str, details: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.details = list(details)


def _stderr(message: str) -> None:
    print(f"taskledger rebuild: {message}", file=sys.stderr, flush=True)


def rebuild(url: str, names: Sequence[str], options: Options = Options(), say: Say = _stderr) -> list[Switched]:
    app = open_ledger(url)
    builds: list[ProjectionTables] = []
    try:
        with exclusive(url, names):
            for name in names:
                builds.append(open_rebuild(url, name, options.restart, say))
            return _run(url, Decoder(app.mapper), builds, options, say)
    finally:
        for build in builds:
            build.close()
        app.close()


@contextmanager
def exclusive(url: str, names: Sequence[str]) -> Iterator[None]:
    """One rebuild per projection at a time (held for the whole run, released if the process dies)."""
    with connect(url, autocommit=True) as conn:
        for name in names:
            key = (LOCK_SPACE << 32) | zlib.crc32(f"rebuild:{name}".encode())
            got = conn.execute("SELECT pg_try_advisory_lock(%s::bigint)", (key,)).fetchone()
            if not (got and got[0]):
                raise ToolError(f"another rebuild of {name} is running; let it finish (or stop it: the next "
                                f"run resumes its work)")
        yield


def _run(url: str, decoder: Decoder, builds: list[ProjectionTables], options: Options, say: Say) -> list[Switched]:
    catch_up(url, decoder, builds, options.progress, options.batch_size)
    checked, found = verify_snapshot(url, decoder, builds, say)
    _judge(found, options, say)
    catch_up(url, decoder, builds, options.progress, options.batch_size)
    at, final, retired = switch_over(url, decoder, builds, checked, options, say)
    done = [Switched(b.name, at, _rows(url, b.name), retired[b.name],
                     sum(d[b.name].total for d in (found, final) if b.name in d)) for b in builds]
    for switched in done if options.drop_retired else ():
        switched.dropped = drop_retired(url, [switched.name])
    return done


def switch_over(url: str, decoder: Decoder, builds: list[ProjectionTables], checked: dict[str, int],
                options: Options, say: Say) -> tuple[int, dict[str, Differences], dict[str, str]]:
    """With the live runners' lead: both sides to the head, the recent rows compared, the tables swapped."""
    with leads(url, [b.name for b in builds], options.handover_timeout):
        say("the live runners handed their lead over; bringing both sides to the head")
        live = [ProjectionTables(url, b.name, LIVE_SCHEMA, create=False) for b in builds]
        try:
            with connect(url) as conn:
                at = head(url)
                todo = pending(conn, [Target(t, at) for t in [*live, *builds]])
            with bar(todo, "switch", enabled=options.progress and todo > NEAR_HEAD) as shown:
                feed(url, decoder, [Target(b, at) for b in builds], shown, options.batch_size)
                _feed_live(url, decoder, [Target(t, at) for t in live], shown, options, say)
            final = verify_recent(url, builds, checked)
            _judge(final, options, say)
            return at, final, switch(url, builds)
        finally:
            for tables in live:
                tables.close()


def _feed_live(url: str, decoder: Decoder, targets: list[Target], shown: Any, options: Options, say: Say) -> None:
    """The live tables to the same position, as their runner would; broken live tables only block the compare."""
    try:
        feed(url, decoder, targets, shown, options.batch_size)
    except Unappliable as exc:
        if not options.accept_differences:
            raise Refused(f"the live tables cannot be brought to the head to be compared: {exc}; nothing was "
                          f"switched. If the live tables are the broken ones, switch with "
                          f"--accept-differences") from None
        say(f"the live tables cannot be brought to the head ({exc}); they are compared as they are")


def catch_up(url: str, decoder: Decoder, builds: Sequence[ProjectionTables], progress: bool,
             batch: int = BATCH) -> None:
    """Feeds the rebuild to the head while writes go on, until only a few events are left."""
    label = "rebuild " + ", ".join(b.name for b in builds)
    with connect(url, autocommit=True) as conn, ExitStack() as stack:
        shown: Any = None
        for _ in range(MAX_PASSES):
            targets = [Target(b, head(url)) for b in builds]
            todo = pending(conn, targets)
            if not todo:
                return
            if shown is None:
                shown = stack.enter_context(bar(todo, label, enabled=progress))
            else:
                shown.total = shown.n + todo
                shown.refresh()
            feed(url, decoder, targets, shown, batch)
            if todo <= NEAR_HEAD:
                return


def verify_snapshot(url: str, decoder: Decoder, builds: Sequence[ProjectionTables],
                    say: Say) -> tuple[dict[str, int], dict[str, Differences]]:
    """Every row of each rebuild against a snapshot of the live tables at the live position.

    Returns the position each projection was compared at, and what differed. A rebuild that is already
    past the live position (the live runner lags or is stopped) is compared in full at the switch instead.
    """
    for attempt in range(SNAPSHOT_TRIES):
        with connect(url, options=PUBLIC_ONLY) as live:
            live.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
            live.read_only = True
            at = tracked_positions(live)
            ready = [b for b in builds if b.fed <= at[b.name]]
            catching_up = any(lead_held(live, b.name) for b in builds if b not in ready)
            if catching_up and attempt < SNAPSHOT_TRIES - 1:
                time.sleep(0.3)
                continue
            with bar(None, "verify", enabled=False) as silent:
                feed(url, decoder, [Target(b, at[b.name]) for b in ready], silent)
            with connect(url) as fresh:
                found = {b.name: compare(live, fresh, b.name, b.schema, tables_in(fresh, b.schema), None)
                         for b in ready}
            for b in ready:
                say(f"{b.name}: compared every row with the live tables at position {at[b.name]}: "
                    f"{_verdict(found[b.name])}")
            return {b.name: at[b.name] for b in ready}, found
    raise AssertionError("unreachable")


def verify_recent(url: str, builds: Sequence[ProjectionTables], checked: dict[str, int]) -> dict[str, Differences]:
    """At the head, with the live projection paused: rows written since the snapshot (or every row if none)."""
    with connect(url, options=PUBLIC_ONLY) as live, connect(url) as fresh:
        return {b.name: compare(live, fresh, b.name, b.schema, tables_in(fresh, b.schema), checked.get(b.name))
                for b in builds}


def _judge(found: dict[str, Differences], options: Options, say: Say) -> None:
    different = {name: d for name, d in found.items() if not d.ok}
    if not different:
        return
    details = [f"{name}: {line}" for name, d in different.items() for line in d.lines()]
    if not options.accept_differences:
        raise Refused("the rebuilt tables differ from the live ones at the same position; nothing was switched "
                      "and the rebuilt tables are kept (the next run resumes). If the live tables are the wrong "
                      "ones (a fixed projection bug, a changed projection, tampered rows), switch anyway with "
                      "--accept-differences", details)
    for line in details:
        say(line)
    say("switching anyway (--accept-differences)")


def _verdict(found: Differences) -> str:
    return "equal" if found.ok else f"{found.total} rows differ"


def _rows(url: str, name: str) -> dict[str, int]:
    with connect(url) as conn:
        counts = {}
        for table in projection_tables(url, name)[:-1]:
            query = sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(LIVE_SCHEMA, table))
            row = conn.execute(query).fetchone()
            counts[table] = int(row[0]) if row else 0
        return counts


def describe(switched: Switched) -> Iterator[str]:
    rows = ", ".join(f"{LIVE_SCHEMA}.{t} {n} rows" for t, n in switched.rows.items())
    verdict = ("verified equal to the live tables at the same position" if not switched.differing
               else f"switched despite {switched.differing} differing rows (--accept-differences)")
    yield f"{switched.name}: switched at position {switched.position}; {verdict}; {rows}"
    if switched.dropped:
        yield f"{switched.name}: dropped the retired tables ({', '.join(switched.dropped)})"
    else:
        yield (f"{switched.name}: the old tables are kept in schema {switched.retired} for a rollback; drop them "
               f"with `DROP SCHEMA {switched.retired} CASCADE` or the next rebuild's --drop-retired")
