"""The tools' subcommands: `register(subparsers)` adds audit, replay, verify, export, import, rebuild
and archive to the `taskledger` CLI; `main()` runs them alone (`python -m taskledger.tools.commands`).

Exit codes: 0 done (verify: all consistent), 1 verify (of a database or an archive file), audit or rebuild found
a problem in the data,
2 the command could not run (bad arguments, unknown task, unreachable database, bad import file).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any

from taskledger.commandline import Handler, add_command, seconds
from taskledger.config import Settings

CANNOT_RUN = 2


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    audit = _add(subparsers, "audit", "the timeline of one task: every event, who, how, and what changed",
                 cmd_audit, "taskledger audit 0b7e2c1a-4c44-4f39-a4f5-2d1e3c9d7f10\n"
                 "  taskledger audit --namespace openlookeng:default 20250501_120000_00001_abcde --json | jq .")
    _task_arguments(audit)
    audit.add_argument("--json", action="store_true", help="one JSON object per event (JSON Lines)")
    replay = _add(subparsers, "replay", "the task as it was at a version or an instant (native API shape)",
                  cmd_replay, "taskledger replay 0b7e2c1a-4c44-4f39-a4f5-2d1e3c9d7f10 --at 2025-05-01T12:00:00Z\n"
                  "  taskledger replay 0b7e2c1a-4c44-4f39-a4f5-2d1e3c9d7f10 --version 3")
    _task_arguments(replay)
    _replay_point(replay)
    verify = _add(subparsers, "verify", "check every hash chain and compare every projection with a replay",
                  cmd_verify, "taskledger verify            # exit 0: consistent; 1: problems listed")
    verify.add_argument("--json", action="store_true", help="one JSON report on stdout")
    verify.add_argument("--skip-projections", action="store_true",
                        help="do not replay the projections into a scratch schema (no CREATE privilege needed)")
    verify.add_argument("--archive", metavar="FILE",
                        help="check an archive file of `taskledger archive` instead, offline (no database)")
    _quiet(verify)
    export = _add(subparsers, "export", "write every event as JSON Lines, in log order", cmd_export,
                  "taskledger export --out ledger-2025-05-01.jsonl")
    export.add_argument("--out", default="-", metavar="FILE", help="file to write (default: standard output)")
    _quiet(export)
    load = _add(subparsers, "import", "load an export into an empty database, positions preserved", cmd_import,
                "TASKLEDGER_DATABASE_URL=postgresql://u:p@new-db/taskledger taskledger import ledger.jsonl")
    load.add_argument("file", metavar="FILE", help="an export file, or - for standard input")
    _quiet(load)
    _register_rebuild(subparsers)
    _register_archive(subparsers)


def _register_rebuild(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = _add(subparsers, "rebuild", "rebuild read tables blue/green: build fresh ones from position 0, "
                  "verify, switch atomically", cmd_rebuild,
                  "taskledger rebuild --dry-run        # what it would do: tables, positions, events to apply\n"
                  "  taskledger rebuild                  # every projection; killed midway, the next run resumes\n"
                  "  taskledger rebuild task_view --drop-retired")
    parser.add_argument("projections", nargs="*", metavar="PROJECTION",
                        help="projections to rebuild: task_view, run_history (default: all)")
    parser.add_argument("--dry-run", action="store_true", help="report what would be done; change nothing")
    parser.add_argument("--accept-differences", action="store_true",
                        help="switch even if the rebuilt tables differ from the live ones (the live ones are wrong: "
                             "a fixed or changed projection, rows edited by hand); the differences are listed")
    parser.add_argument("--drop-retired", action="store_true",
                        help="after the switch, drop the old tables instead of keeping them for a rollback")
    parser.add_argument("--restart", action="store_true",
                        help="discard an unfinished earlier rebuild instead of resuming it")
    parser.add_argument("--handover-timeout", type=seconds, default=30.0, metavar="SECONDS",
                        help="how long to wait for the live runners to hand their lead over (default 30)")
    parser.add_argument("--batch-size", type=_batch_size, default=2000, metavar="EVENTS",
                        help="events applied per transaction (default 2000; a killed run loses at most one batch)")
    _quiet(parser)


def _register_archive(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = _add(subparsers, "archive", "move ended tasks older than an age to a verifiable JSON Lines file and "
                  "out of the read tables", cmd_archive,
                  "taskledger archive --namespace etl --ended-before 30d --output etl-2026-11.jsonl\n"
                  "  taskledger archive --all-namespaces --ended-before 90d --dry-run\n"
                  "  taskledger verify --archive etl-2026-11.jsonl   # offline")
    scope = parser.add_mutually_exclusive_group(required=True)
    scope.add_argument("--namespace", action="append", metavar="NS", help="this namespace (repeatable)")
    scope.add_argument("--namespace-prefix", metavar="PREFIX", help="every namespace starting with PREFIX")
    scope.add_argument("--all-namespaces", action="store_true", help="every namespace")
    parser.add_argument("--ended-before", type=_age, required=True, metavar="AGE",
                        help="tasks whose last event is older than AGE: 30d, 12h, 90m, 0s, 2w")
    parser.add_argument("--output", metavar="FILE", help="the archive file to write (required unless --dry-run); "
                        "an existing archive FILE is finished, not overwritten")
    parser.add_argument("--prune-events", action="store_true",
                        help="also delete the archived tasks' events from the event store (irreversible but for "
                             "the file; see docs/retention.md)")
    parser.add_argument("--dry-run", action="store_true", help="print how many tasks and events would go")
    parser.add_argument("--batch-size", type=_batch_size, default=500, metavar="TASKS",
                        help="tasks removed per transaction (default 500)")
    parser.add_argument("--wait", type=seconds, default=60.0, metavar="SECONDS",
                        help="how long to wait for the projections to apply the archived tasks' last events (default 60)")
    _quiet(parser)


def _age(text: str) -> Any:
    from taskledger.tools.archive import parse_age

    try:
        return parse_age(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _batch_size(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 100_000:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of events from 1 to 100000")
    return int(text)


def _add(subparsers: argparse._SubParsersAction, name: str, help_text: str,  # type: ignore[type-arg]
         handler: Handler, example: str) -> argparse.ArgumentParser:
    return add_command(subparsers, name, help_text, _reporting(name, handler), example)


def _task_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("task", metavar="TASK", help="the task's id (a UUID), or its external id with --namespace")
    parser.add_argument("--namespace", metavar="NS", help="TASK is an external id in this namespace "
                        "(openLooKeng task id, HugeGraph number)")


def _replay_point(parser: argparse.ArgumentParser) -> None:
    point = parser.add_mutually_exclusive_group(required=True)
    point.add_argument("--at", type=parse_time, metavar="TIME", help="an ISO-8601 time with a UTC offset")
    point.add_argument("--version", type=parse_version, metavar="N", help="a version (event count) of the task")


def parse_time(text: str) -> datetime:
    """An ISO-8601 instant with a UTC offset (`Z` allowed)."""
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO-8601 time, e.g. 2025-05-01T12:00:00Z") from None
    if parsed.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r} has no UTC offset; add one, e.g. {text}Z or {text}+02:00")
    return parsed.astimezone(timezone.utc)


def parse_version(text: str) -> int:
    if not text.isascii() or not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a version number (1 or more)")
    return int(text)


def _quiet(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quiet", action="store_true", help="no progress bar on standard error")


def _reporting(name: str, handler: Handler) -> Handler:
    """Turns every expected failure into one clear line on stderr and exit code 2."""
    def run(args: argparse.Namespace, settings: Settings) -> int:
        import psycopg

        from ledger.errors import LedgerError
        from taskledger.preflight import DatabaseUnavailableError, cause
        from taskledger.tools.store import ToolError

        try:
            return handler(args, settings)
        except (ToolError, LedgerError, DatabaseUnavailableError) as exc:
            print(f"taskledger {name}: {exc}", file=sys.stderr)
        except psycopg.OperationalError as exc:
            print(f"taskledger {name}: lost the connection to PostgreSQL ({cause(exc)}); run the command again",
                  file=sys.stderr)
        except BrokenPipeError:  # `taskledger export | head`: the reader left; say nothing more
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 1
        return CANNOT_RUN
    return run


def _database(settings: Settings, migrated: bool = True) -> str:
    """The database URL, checked: it answers and (unless `migrated` is False) holds taskledger's tables."""
    from taskledger.preflight import ready_database

    url, _server = ready_database(settings, migrated=migrated)  # an embedded one stops when its last user exits
    return url


def cmd_audit(args: argparse.Namespace, settings: Settings) -> int:
    from taskledger.tools.audit import human, json_lines, timeline
    from taskledger.tools.store import task_id_of

    url = _database(settings)
    found = timeline(url, task_id_of(url, args.task, args.namespace))
    for line in (json_lines(found) if args.json else human(found)):
        print(line)
    if args.json:
        for f in found.findings:
            print(f"taskledger audit: hash chain broken at v{f.version}: {f.kind}: {f.detail}", file=sys.stderr)
    return 1 if found.findings else 0


def cmd_replay(args: argparse.Namespace, settings: Settings) -> int:
    from taskledger.tools.replay import replay
    from taskledger.tools.store import task_id_of

    url = _database(settings)
    doc = replay(url, task_id_of(url, args.task, args.namespace), version=args.version, at=args.at)
    print(json.dumps(doc, indent=2, ensure_ascii=False))
    return 0


def cmd_verify(args: argparse.Namespace, settings: Settings) -> int:
    from taskledger.tools.verify import render, verify

    if args.archive:
        return _verify_archive(args)
    report = verify(_database(settings), projections=not args.skip_projections, progress=not args.quiet)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2, default=str))
    else:
        for line in render(report):
            print(line)
    return 0 if report.ok else 1


def _verify_archive(args: argparse.Namespace) -> int:
    from taskledger.tools.archive_file import check_archive, render_archive

    found = check_archive(args.archive)
    if args.json:
        print(json.dumps(found.to_dict(), indent=2, default=str))
    else:
        for line in render_archive(found):
            print(line)
    return 0 if found.ok else 1


def cmd_archive(args: argparse.Namespace, settings: Settings) -> int:
    from taskledger.tools import archive as ar

    if not args.dry_run and not args.output:
        print("taskledger archive: --output FILE is required (or give --dry-run to only count)", file=sys.stderr)
        return CANNOT_RUN
    policy = ar.Policy(args.ended_before, tuple(args.namespace or ()), args.namespace_prefix)
    url, now = _database(settings), ar.utc_now()
    if args.dry_run:
        for line in ar.describe(ar.dry_run(url, policy, now), args.prune_events, dry=True):
            print(line)
        return 0
    options = ar.Options(prune_events=args.prune_events, batch_size=args.batch_size, wait=args.wait,
                         progress=not args.quiet)
    try:
        done = ar.archive(url, policy, args.output, options,
                          lambda m: print(f"taskledger archive: {m}", file=sys.stderr), now)
    except ar.Refused as exc:
        print(f"taskledger archive: {exc}", file=sys.stderr)
        return 1
    for line in ar.describe(done, args.prune_events, dry=False, output=args.output):
        print(line)
    return 0


def cmd_export(args: argparse.Namespace, settings: Settings) -> int:
    from taskledger.tools.export import export_events

    url = _database(settings)
    if args.out == "-":
        count = export_events(url, sys.stdout, progress=not args.quiet)
    else:
        with _open_output(args.out) as out:
            count = export_events(url, out, progress=not args.quiet)
    print(f"exported {count} events", file=sys.stderr)
    return 0


def cmd_import(args: argparse.Namespace, settings: Settings) -> int:
    from taskledger.tools.export import import_events
    from taskledger.tools.store import where

    url = _database(settings, migrated=False)  # import migrates (an empty database is what it wants)
    source: Any = sys.stdin if args.file == "-" else _open_input(args.file)
    with source:
        done = import_events(url, source, progress=not args.quiet)
    print(f"imported {done.events} events (positions {done.first}..{done.last}) into {where(url)}; the "
          f"projections build the read tables when the service or `taskledger project` runs; then run "
          f"`taskledger verify`", file=sys.stderr)
    return 0


def cmd_rebuild(args: argparse.Namespace, settings: Settings) -> int:
    from projections.registry import PROJECTIONS
    from taskledger.tools import rebuild as rb

    unknown = [n for n in args.projections if n not in PROJECTIONS]
    if unknown:
        print(f"taskledger rebuild: unknown projection {unknown[0]!r}; known: {', '.join(PROJECTIONS)}",
              file=sys.stderr)
        return CANNOT_RUN
    names = list(dict.fromkeys(args.projections)) or list(PROJECTIONS)
    url = _database(settings)
    if args.dry_run:
        for line in rb.render(rb.plan(url, names)):
            print(line)
        return 0
    options = rb.Options(accept_differences=args.accept_differences, drop_retired=args.drop_retired,
                         restart=args.restart, handover_timeout=args.handover_timeout, progress=not args.quiet,
                         batch_size=args.batch_size)
    try:
        done = rb.rebuild(url, names, options)
    except (rb.Refused, rb.Unappliable) as exc:
        print(f"taskledger rebuild: {exc}", file=sys.stderr)
        for line in getattr(exc, "details", []):
            print(f"  {line}", file=sys.stderr)
        return 1
    for switched in done:
        for line in rb.describe(switched):
            print(line)
    return 0


def _open_input(path: str) -> Any:
    from taskledger.tools.store import ToolError

    try:
        return open(path, encoding="utf-8")
    except OSError as exc:
        raise ToolError(f"cannot read {path}: {exc.strerror}") from None


def _open_output(path: str) -> Any:
    from taskledger.tools.store import ToolError

    try:
        return open(path, "w", encoding="utf-8")
    except OSError as exc:
        raise ToolError(f"cannot write {path}: {exc.strerror}") from None


def main(argv: Sequence[str] | None = None) -> int:
    """The tools alone, for `python -m taskledger.tools.commands` and the scripts' tests."""
    from taskledger.cli import OneLineParser, run

    parser = OneLineParser(prog="taskledger", description="taskledger's audit and operations tools.")
    register(parser.add_subparsers(dest="command", required=True, metavar="COMMAND"))
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
