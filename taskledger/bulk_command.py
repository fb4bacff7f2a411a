"""`taskledger bulk ACTION [filter]`: an operator's action on every task a filter selects, through the API.

First a dry run (how many, by state); on a terminal a confirmation; then the run part by part with a
progress bar on stderr. A part refused by the network is sent again (safe: a task already changed refuses
the same action); if the command stops anyway it prints how to go on (`--resume CURSOR`).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from taskledger.commandline import add_command
from taskledger.config import Settings
from taskledger.remote import RemoteError, Service, add_connection_arguments

ACTIONS = ("pause", "resume", "cancel", "abort", "drop")
STATES = ("QUEUED", "RUNNING", "PAUSED", "CANCELLING", "SUCCEEDED", "FAILED", "CANCELLED", "ABORTED")
# Filter options and the GET /tasks parameter each one is.
FILTERS = ("namespace", "namespace_prefix", "facade", "type", "name_prefix", "name_contains", "worker", "submitter",
           "error_contains", "created_after", "created_before", "updated_after", "updated_before")
EXAMPLE = ("taskledger bulk cancel --namespace kylin:sales --state QUEUED --reason 'bad deploy' --max 20000\n"
           "  taskledger bulk resume --label window:2025-05-01 --dry-run\n"
           "  taskledger bulk drop --namespace-prefix tmp- --state SUCCEEDED --yes --json")


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = add_command(subparsers, "bulk", "pause, resume, cancel, abort or drop every task a filter selects "
                         "(through the API; dry run first)", cmd_bulk, EXAMPLE)
    parser.add_argument("action", choices=ACTIONS)
    selection = parser.add_argument_group("selection (as GET /tasks; all must match)")
    selection.add_argument("--state", action="append", choices=STATES, help="repeatable: any of them")
    selection.add_argument("--label", action="append", metavar="KEY[:VALUE]", help="repeatable: all of them")
    for name in FILTERS:
        selection.add_argument(f"--{name.replace('_', '-')}", dest=name, metavar="VALUE")
    run = parser.add_argument_group("run")
    run.add_argument("--dry-run", action="store_true", help="count and show the selection, change nothing")
    run.add_argument("--max", type=int, default=None,
                     help="the most tasks the selection may hold (the service's default: 1000)")
    run.add_argument("--reason", help="recorded with pause, cancel and abort")
    run.add_argument("--force", action="store_true", help="drop: tasks that have not ended too")
    run.add_argument("--yes", action="store_true", help="do not ask for confirmation on a terminal")
    run.add_argument("--resume", metavar="CURSOR", help="go on with an interrupted run (same action and filter)")
    run.add_argument("--json", action="store_true", help="the last answer as JSON on stdout")
    run.add_argument("--quiet", action="store_true", help="no progress bar")
    add_connection_arguments(parser)


def cmd_bulk(args: argparse.Namespace, settings: Settings) -> int:
    try:
        return _bulk(args, Service.from_args(args))
    except RemoteError as exc:
        print(f"taskledger bulk: {exc}", file=sys.stderr)
        return 1 if exc.status is not None and 400 <= exc.status < 500 else 2


def selection(args: argparse.Namespace) -> list[tuple[str, str]]:
    """The query string of GET /tasks the options stand for."""
    params = [("state", s) for s in args.state or ()] + [("label", label) for label in args.label or ()]
    return params + [(name, getattr(args, name)) for name in FILTERS if getattr(args, name) is not None]


def _body(args: argparse.Namespace) -> dict[str, Any]:
    body: dict[str, Any] = {}
    if args.max is not None:
        body["max"] = args.max
    if args.reason is not None:
        body["reason"] = args.reason
    if args.force:
        body["force"] = True
    return body


def _bulk(args: argparse.Namespace, service: Service) -> int:
    params = selection(args)
    path = f"/bulk/{args.action}"
    body = _body(args)
    total = None
    if args.resume is None:
        dry = service.post(path, {**body, "dry_run": True}, params)
        if args.dry_run:
            return _show_dry_run(dry, args)
        if dry["would_act"] == 0:
            print(f"nothing to {args.action}: {dry['matched']} tasks match, none in a state that accepts it",
                  file=sys.stderr)
            return 0 if not args.json else _print_json(dry)
        if not dry["within_max"]:
            print(f"taskledger bulk: {dry['matched']} tasks match, more than max={dry['max']}; give --max "
                  f"{dry['matched']} (or more) to {args.action} them, or narrow the filter", file=sys.stderr)
            return 1
        if not args.yes and sys.stdin.isatty() and not _confirmed(args.action, dry):
            print("nothing changed", file=sys.stderr)
            return 1
        total = dry["matched"]
    return _run(args, service, path, params, body, total)


def _run(args: argparse.Namespace, service: Service, path: str, params: list[tuple[str, str]],
         body: dict[str, Any], total: int | None) -> int:
    from taskledger.tools.progress import bar

    cursor = args.resume
    answer: dict[str, Any] = {}
    with bar(total, f"{args.action}", unit="task", enabled=not args.quiet and sys.stderr.isatty()) as progress:
        while True:
            try:
                answer = service.post(path, {**body, **({"cursor": cursor} if cursor else {})}, params)
            except (RemoteError, KeyboardInterrupt) as exc:
                if cursor:
                    print(f"\ntaskledger bulk: stopped ({exc or 'interrupted'}); go on with the same command and "
                          f"--resume {cursor}", file=sys.stderr)
                raise
            if progress.total is None:
                progress.total = answer["matched"]
            progress.update(answer["part"]["acted"] + answer["part"]["skipped"])
            progress.set_postfix(acted=answer["acted"], skipped=answer["skipped"])
            if answer["done"]:
                break
            cursor = answer["cursor"]
    if args.json:
        return _print_json(answer)
    print(f"{args.action}: {answer['acted']} changed, {answer['skipped']} left alone of {answer['matched']} "
          f"(bulk request id {answer['bulk_id']})")
    for item in answer["skipped_items"][:10]:
        print(f"  left alone {item['task_id']}: {item['reason']}")
    return 0


def _show_dry_run(dry: dict[str, Any], args: argparse.Namespace) -> int:
    if args.json:
        return _print_json(dry)
    states = ", ".join(f"{state} {n}" for state, n in dry["by_state"].items()) or "none"
    more = "+" if dry["matched_is_lower_bound"] else ""
    print(f"{dry['matched']}{more} tasks match ({states}); {args.action} would change {dry['would_act']}, "
          f"leave {dry['would_skip']} alone")
    if not dry["within_max"]:
        print(f"a run needs --max {dry['matched']} (or more): max is {dry['max']}")
    for task in dry["items"][:20]:
        print(f"  {task['id']}  {task['state']:<10}  {task['namespace']}  {task['name']}")
    if dry["would_act"] > 20:
        print(f"  … and {dry['would_act'] - 20} more")
    return 0


def _confirmed(action: str, dry: dict[str, Any]) -> bool:
    print(f"{action} {dry['would_act']} tasks ({dry['matched']} match)? [y/N] ", end="", file=sys.stderr, flush=True)
    return sys.stdin.readline().strip().lower() in ("y", "yes")


def _print_json(answer: dict[str, Any]) -> int:
    print(json.dumps(answer, indent=2))
    return 0
