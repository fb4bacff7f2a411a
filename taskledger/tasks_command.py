"""`taskledger tasks …`: the operator's view of tasks and actions on them, through the API of a running service.

`list` and `watch` show a filtered list (`GET /tasks`), `show` one task and its recent timeline, and `pause`,
`resume`, `cancel`, `abort` and `drop` act on tasks named by id, one request each. It needs no database, only
the service (`--url`, `--user`/`--token`, or TASKLEDGER_URL, TASKLEDGER_USER, TASKLEDGER_PASSWORD,
TASKLEDGER_TOKEN); docs/tooling.md, *Operator CLI*, describes outputs and exit codes.

Tables go through `rich`: coloured, with a header rule, on a terminal; plain aligned columns (no escape codes,
no box drawing, never wrapped) otherwise, so they can be grepped. JSON outputs are the API's own objects.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import signal
import sys
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TextIO

from taskledger.bulk_command import FILTERS, STATES
from taskledger.commandline import Handler, add_command, seconds
from taskledger.config import Settings
from taskledger.remote import DEFAULT_URL, add_connection_arguments

if TYPE_CHECKING:
    from rich.console import Console, RenderableType
    from rich.table import Table
    from rich.text import Text

    from taskledger.client import Ledger
    from taskledger.client.errors import ClientError

SORTS = tuple(f"{p}{s}" for s in ("created_at", "updated_at", "name", "state") for p in ("", "-"))
MAX_LIMIT = 500  # GET /tasks answers at most this many tasks a page
ALL_PAGE = 500  # the page size `--all` asks for unless --limit says otherwise
NAME_WIDTH = 40  # a name longer than this is cut in tables (the JSON outputs have it whole)
DATA_WIDTH = 100  # an event's data in `show` is cut here
WIDE = 100_000  # the width a table gets when stdout is not a terminal: never wrapped, never cut by rich
STATE_STYLES = {"QUEUED": "cyan", "RUNNING": "bold green", "PAUSED": "yellow", "CANCELLING": "magenta",
                "SUCCEEDED": "green", "FAILED": "bold red", "CANCELLED": "dim", "ABORTED": "red"}
# Action: (help, what a success says, has --reason)
ACTIONS: dict[str, tuple[str, str, bool]] = {
    "pause": ("pause tasks (a running one stops at its worker's next heartbeat)", "paused", True),
    "resume": ("put paused or failed tasks back in the queue", "resumed, queued again", False),
    "cancel": ("cancel tasks (a running one is CANCELLING until its worker stops)", "cancelled", True),
    "abort": ("end tasks at once, whatever their worker does", "aborted", True),
}
EXAMPLE = ("taskledger tasks list --state RUNNING --namespace etl\n"
           "  taskledger tasks show 6f1c2a9e-… --events 50\n"
           "  taskledger tasks pause 6f1c2a9e-… 0b7e2c1a-… --reason 'disk full'\n"
           "  taskledger tasks watch --state RUNNING --interval 2")


class Unusable(Exception):
    """The command cannot run as asked (no credentials, options that do not go together): exit code 2."""


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = add_command(subparsers, "tasks", "list, show, watch, pause, resume, cancel, abort or drop tasks "
                         "(through the API)", None, EXAMPLE)
    commands = parser.add_subparsers(dest="tasks_command", required=True, metavar="COMMAND")

    listing = add_command(commands, "list", "the tasks a filter selects, one page or all of them",
                          _handled(cmd_list), "taskledger tasks list --state RUNNING --label team:data --output "
                          "jsonl --all")
    _add_filters(listing)
    _add_paging(listing)
    listing.add_argument("--output", choices=("table", "json", "jsonl"), default="table",
                         help="table (default): aligned columns, coloured on a terminal; json: the API's page "
                              "exactly; jsonl: one task per line")
    listing.add_argument("--all", action="store_true", help="follow the cursor to the last page (table, jsonl)")
    listing.add_argument("--cursor", help="start at this page (the `next_cursor` of the previous one)")
    add_connection_arguments(listing)

    show = add_command(commands, "show", "one task and the last events of its timeline", _handled(cmd_show),
                       "taskledger tasks show 6f1c2a9e-4c44-4f39-a4f5-2d1e3c9d7f10 --events 50 --output json")
    show.add_argument("id", help="the task's id")
    show.add_argument("--events", type=_count, default=20, metavar="N",
                      help="how many of its last events to show (default 20; 0: none)")
    show.add_argument("--output", choices=("table", "json"), default="table",
                      help='table (default), or json: {"task": …, "events": […]} as the API answers them')
    add_connection_arguments(show)

    for action, (help_text, _done, has_reason) in ACTIONS.items():
        acting = add_command(commands, action, help_text, _handled(cmd_action),
                             f"taskledger tasks {action} 6f1c2a9e-… 0b7e2c1a-…" + (" --reason 'bad deploy'"
                                                                                   if has_reason else ""))
        acting.add_argument("ids", nargs="+", metavar="ID", help="the tasks' ids (one request each)")
        if has_reason:
            acting.add_argument("--reason", help="recorded with the event")
        add_connection_arguments(acting)
    drop = add_command(commands, "drop", "drop tasks (their history stays readable)", _handled(cmd_action),
                       "taskledger tasks drop 6f1c2a9e-… --force")
    drop.add_argument("ids", nargs="+", metavar="ID", help="the tasks' ids (one request each)")
    drop.add_argument("--force", action="store_true", help="drop tasks that have not ended too")
    add_connection_arguments(drop)

    watch = add_command(commands, "watch", "a filtered list, refreshed until Ctrl-C", _handled(cmd_watch),
                        "taskledger tasks watch --state RUNNING --namespace etl --interval 2")
    _add_filters(watch)
    _add_paging(watch)
    watch.add_argument("--interval", type=seconds, default=2.0, help="seconds between refreshes (default 2)")
    watch.add_argument("--count", type=_count, default=0, metavar="N",
                       help="stop after N refreshes (default: run until Ctrl-C)")
    add_connection_arguments(watch)


def _add_filters(parser: argparse.ArgumentParser) -> None:
    selection = parser.add_argument_group("filter (as GET /tasks; all must match)")
    selection.add_argument("--state", action="append", type=str.upper, choices=STATES,
                           help="repeatable: any of them")
    selection.add_argument("--label", action="append", metavar="KEY[:VALUE]", help="repeatable: all of them")
    for name in FILTERS:
        timed = name.endswith(("_after", "_before"))
        selection.add_argument(f"--{name.replace('_', '-')}", dest=name, metavar="TIME" if timed else "VALUE",
                               help="ISO-8601 with a UTC offset" if timed else None)


def _add_paging(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--limit", type=_page_size, default=None, metavar="N",
                        help=f"tasks per page, 1 to {MAX_LIMIT} (default: the service's, 50; with --all "
                             f"{ALL_PAGE})")
    parser.add_argument("--sort", choices=SORTS, default=None, metavar="FIELD",
                        help="created_at (the service's default), updated_at, name or state; a leading - "
                             "(--sort=-updated_at) for descending")


def _count(text: str) -> int:
    if not (text.isascii() and text.isdigit()) or int(text) > 100_000:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number from 0 to 100000")
    return int(text)


def _page_size(text: str) -> int:
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= MAX_LIMIT:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number from 1 to {MAX_LIMIT}")
    return int(text)


# ------------------------------------------------------------------------------------------ running
def _handled(command: Callable[[argparse.Namespace, Ledger], int]) -> Handler:
    """The command with its connection, and every failure as one line on stderr with its exit code."""

    def handle(args: argparse.Namespace, settings: Settings) -> int:
        from taskledger.client.errors import ClientError

        name = f"taskledger tasks {args.tasks_command}"
        try:
            with connect(args) as ledger:
                return command(args, ledger)
        except Unusable as exc:
            print(f"{name}: {exc}", file=sys.stderr)
            return 2
        except ClientError as exc:
            line, code = explain(exc, getattr(args, "url", None))
            print(f"{name}: {line}", file=sys.stderr)
            return code
        except BrokenPipeError:  # `| head`: the reader has all it wants; nothing more to write, no traceback
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 0

    return handle


def connect(args: argparse.Namespace) -> Ledger:
    """The client, from the options, else the environment: an option given beats any variable."""
    from taskledger.client import Ledger

    env = os.environ
    url = (args.url or env.get("TASKLEDGER_URL") or DEFAULT_URL).rstrip("/")
    options: dict[str, Any] = {"timeout": 30.0, "retries": 3, "retry_deadline": 15.0}
    token = args.token or (None if args.user else env.get("TASKLEDGER_TOKEN"))
    if token:
        return Ledger(url, token=token, **options)
    user = args.user or env.get("TASKLEDGER_USER")
    if not user:
        raise Unusable("who are you? give --user (with TASKLEDGER_PASSWORD) or --token, or set TASKLEDGER_USER or "
                       "TASKLEDGER_TOKEN; `taskledger users add NAME --role operator` makes a user")
    password = env.get("TASKLEDGER_PASSWORD")
    if password is None and sys.stdin.isatty():
        password = getpass.getpass(f"password of {user} at {url}: ")
    if password is None:
        raise Unusable(f"no password for {user}: set TASKLEDGER_PASSWORD (or use --token)")
    return Ledger(url, (user, password), **options)


def explain(exc: ClientError, url: str | None) -> tuple[str, int]:
    """What went wrong and what to do next, and the exit code: 1 the service refused, 2 it could not answer."""
    from taskledger.client.errors import ConnectionFailedError, ProblemError

    if isinstance(exc, ConnectionFailedError):
        target = url or os.environ.get("TASKLEDGER_URL") or DEFAULT_URL
        return (f"cannot reach {target.rstrip('/')} ({_reason(exc)}); is the service running? Start it with "
                f"`taskledger serve`, or give its address with --url or TASKLEDGER_URL"), 2
    if isinstance(exc, ProblemError):
        if exc.status == 401:
            return (f"{refusal(exc).rstrip('.')}; check --user and TASKLEDGER_PASSWORD (or --token, "
                    f"TASKLEDGER_TOKEN)"), 1
        if exc.status == 403:
            return (f"{refusal(exc).rstrip('.')}; this needs an operator or admin account "
                    f"(`taskledger users add NAME --role operator`)"), 1
        if exc.status >= 500:
            request = f" (request {exc.request_id} in its log)" if exc.request_id else ""
            return f"the service failed: {refusal(exc)}{request}; try again later", 2
        return refusal(exc), 1
    return str(exc), 2


def refusal(exc: Any) -> str:
    """`409 illegal-transition: task … is RUNNING: cannot resume; …` (with the fields a 422 names)."""
    fields = "; ".join(f"{e.field}: {e.rule}" for e in exc.errors if e.rule not in exc.detail)
    return f"{exc.status} {exc.code}: {exc.detail}" + (f" [{fields}]" if fields else "")


def _reason(exc: BaseException) -> str:
    """`Connection refused`, not urllib3's repr of the connection object."""
    return str(getattr(exc, "reason", "") or type(exc).__name__)


def is_task_id(text: str) -> bool:
    """Task ids are UUIDs: anything else is refused here rather than sent (the API would answer 404 for the
    route, not the task)."""
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


def not_a_task_id(text: str) -> str:
    return f"{text!r} is not a task id (a UUID, as the ID column of `taskledger tasks list` shows)"


# ------------------------------------------------------------------------------------------- list
def query(args: argparse.Namespace) -> list[tuple[str, str]]:
    """The query string of GET /tasks the filter options stand for."""
    from taskledger.client.ledger import filter_params

    return filter_params(state=args.state, label=args.label, **{name: getattr(args, name) for name in FILTERS})


def pages(ledger: Ledger, params: list[tuple[str, str]], *, follow: bool) -> Iterator[dict[str, Any]]:
    """The pages of GET /tasks exactly as answered; with `follow`, every page to the last."""
    cursor_at = next((i for i, (k, _) in enumerate(params) if k == "cursor"), None)
    while True:
        page: dict[str, Any] = ledger.http.request("GET", "/tasks", params=params, wait_for_writes=True).body
        yield page
        if not follow or not page.get("next_cursor") or not page.get("items"):
            return
        step = ("cursor", str(page["next_cursor"]))
        if cursor_at is None:
            cursor_at = len(params)
            params = [*params, step]
        else:
            params = [*params[:cursor_at], step, *params[cursor_at + 1:]]


def _list_params(args: argparse.Namespace, *, follow: bool) -> list[tuple[str, str]]:
    params = query(args)
    if args.sort:
        params.append(("sort", args.sort))
    limit = args.limit or (ALL_PAGE if follow else None)
    if limit:
        params.append(("limit", str(limit)))
    if getattr(args, "cursor", None):
        params.append(("cursor", args.cursor))
    return params


def cmd_list(args: argparse.Namespace, ledger: Ledger) -> int:
    if args.all and args.output == "json":
        raise Unusable("--output json is one page exactly as the API answers it; for every page use "
                       "--output jsonl --all (one task per line) or follow next_cursor with --cursor")
    params = _list_params(args, follow=args.all)
    if args.output == "json":
        print(json.dumps(next(pages(ledger, params, follow=False)), indent=2))
        return 0
    if args.output == "jsonl":
        for page in pages(ledger, params, follow=args.all):
            for task in page["items"]:
                sys.stdout.write(json.dumps(task) + "\n")
            sys.stdout.flush()
        return 0
    items: list[dict[str, Any]] = []
    last: dict[str, Any] = {}
    for last in pages(ledger, params, follow=args.all):
        items += last["items"]
    out = Output(sys.stdout)
    out.show(tasks_table(items, out.tty))
    sys.stdout.flush()
    print(_summary(items, last, paged=not args.all), file=sys.stderr)
    return 0


def _summary(items: list[dict[str, Any]], page: dict[str, Any], *, paged: bool) -> str:
    if not paged:
        return f"{len(items)} task{'' if len(items) == 1 else 's'}"
    total = page.get("total", len(items))
    about = "about " if page.get("total_is_estimate") else ""
    line = f"{len(items)} of {about}{total} task{'' if total == 1 else 's'}"
    if page.get("next_cursor"):
        line += f"; more with --all, or the next page with --cursor {page['next_cursor']}"
    return line


# ------------------------------------------------------------------------------------------- show
def cmd_show(args: argparse.Namespace, ledger: Ledger) -> int:
    if not is_task_id(args.id):
        print(f"taskledger tasks show: {not_a_task_id(args.id)}", file=sys.stderr)
        return 1
    task: dict[str, Any] = dict(ledger.get(args.id))
    events = last_events(ledger, str(task["id"]), int(task.get("version") or 0), args.events)
    if args.output == "json":
        print(json.dumps({"task": task, "events": events}, indent=2))
        return 0
    out = Output(sys.stdout)
    out.show(task_details(task, out.tty))
    if events:
        total = max(int(task.get("version") or 0), int(events[-1]["version"]))
        sys.stdout.write(f"\nthe last {len(events)} of {total} events:\n" if len(events) < total
                         else f"\nall {total} events:\n")
        out.show(events_table(events, out.tty))
    return 0


def last_events(ledger: Ledger, task_id: str, version: int, count: int) -> list[dict[str, Any]]:
    """The last `count` events of the timeline: from `version - count` on (the timeline pages oldest first),
    reading on past `version` should the task have changed since it was read."""
    if count <= 0:
        return []
    kept: deque[dict[str, Any]] = deque(maxlen=count)
    after, size = max(0, version - count), min(count, 1000)
    while True:
        page = ledger.events(task_id, after_version=after, limit=size)
        kept.extend(page["events"])
        if len(page["events"]) < size:
            return list(kept)
        after = int(page["next_after_version"])


# ---------------------------------------------------------------------------------------- actions
def cmd_action(args: argparse.Namespace, ledger: Ledger) -> int:
    """One request per id, in the order given: a line on stdout per success, on stderr per refusal. A refusal
    of who the caller is (401, 403) or an unreachable service stops at once: every other id would meet it."""
    from taskledger.client.errors import ConnectionFailedError, ProblemError

    worst = 0
    for task_id in args.ids:
        if not is_task_id(task_id):
            print(f"{task_id}: {not_a_task_id(task_id)}", file=sys.stderr)
            worst = max(worst, 1)
            continue
        try:
            done = act(ledger, args.tasks_command, task_id, args)
        except ProblemError as exc:
            if exc.status in (401, 403):
                raise
            may = (f"; it may have been recorded: check with `taskledger tasks show {task_id}`"
                   if exc.status >= 500 else "")
            print(f"{task_id}: {refusal(exc)}{may}", file=sys.stderr)
            worst = max(worst, 2 if exc.status >= 500 else 1)
            continue
        except ConnectionFailedError as exc:
            line, _ = explain(exc, args.url)
            print(f"{task_id}: {line}", file=sys.stderr)
            return 2
        print(f"{task_id}: {done}", flush=True)
    return worst


def act(ledger: Ledger, action: str, task_id: str, args: argparse.Namespace) -> str:
    """Sends one action; what it did, e.g. `paused (version 4)`."""
    if action == "drop":
        ledger.drop(task_id, force=args.force)
        return "dropped"
    if action == "resume":
        receipt = ledger.resume(task_id)
    else:
        receipt = getattr(ledger, action)(task_id, reason=args.reason)
    done = ACTIONS[action][1]
    if action == "cancel" and _recorded(ledger, task_id, receipt.version) == "CancelRequested":
        done = "cancelling: its worker is told to stop at its next heartbeat"
    return f"{done} (version {receipt.version})"


def _recorded(ledger: Ledger, task_id: str, version: int) -> str | None:
    """The type of the event at `version` (a cancel records `Cancelled` or, for a running task,
    `CancelRequested`); None if it cannot be read now (the action is done either way)."""
    from taskledger.client.errors import ClientError

    try:
        found = ledger.events(task_id, after_version=version - 1, limit=1)["events"]
    except ClientError:
        return None
    return str(found[0]["type"]) if found else None


# ------------------------------------------------------------------------------------------ watch
def cmd_watch(args: argparse.Namespace, ledger: Ledger) -> int:
    """On a terminal a live table redrawn in place; otherwise the table again every interval, after a blank
    line. Ctrl-C (or `--count` refreshes) ends it with exit code 0."""
    params = _list_params(args, follow=False)
    out = Output(sys.stdout)
    shown = 0
    # Ctrl-C ends it even when started from a shell that ignores SIGINT for its background jobs (Python then
    # installs no KeyboardInterrupt handler of its own).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        if out.tty:
            from rich.live import Live

            with Live(console=out.console, auto_refresh=False, transient=False) as live:
                while True:
                    live.update(_watch_view(ledger, params, args, out), refresh=True)
                    shown += 1
                    if args.count and shown >= args.count:
                        return 0
                    time.sleep(args.interval)
        while True:
            view = _watch_view(ledger, params, args, out)
            if shown:
                sys.stdout.write("\n")
            out.show(view)
            sys.stdout.flush()
            shown += 1
            if args.count and shown >= args.count:
                return 0
            time.sleep(args.interval)
    except KeyboardInterrupt:
        return 0


def _watch_view(ledger: Ledger, params: list[tuple[str, str]], args: argparse.Namespace,
                out: Output) -> RenderableType:
    from rich.console import Group
    from rich.text import Text

    page = next(pages(ledger, params, follow=False))
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    selection = " ".join(f"{k}={v}" for k, v in query(args)) or "all tasks"
    head = f"{now}  {_summary(page['items'], page, paged=True).split(';')[0]}  ({selection})"
    if out.tty:
        head += f"  every {args.interval:g}s, Ctrl-C to stop"
    return Group(Text(head, style="bold" if out.tty else ""), tasks_table(page["items"], out.tty))


# ------------------------------------------------------------------------------------------ tables
class Output:
    """A rich console on a stream: the terminal's width and colours on a terminal; otherwise no escape codes, no
    box drawing, and lines as long as they need to be (trailing blanks cut)."""

    def __init__(self, stream: TextIO) -> None:
        from rich.console import Console

        self.stream = stream
        self.tty = stream.isatty()
        self.console: Console
        if self.tty:
            self.console = Console(file=stream, highlight=False, emoji=False, markup=False)
        else:
            self.console = Console(file=stream, force_terminal=False, color_system=None, no_color=True,
                                   highlight=False, emoji=False, markup=False, width=WIDE, soft_wrap=False)

    def show(self, renderable: RenderableType) -> None:
        if self.tty:
            self.console.print(renderable)
            return
        with self.console.capture() as captured:
            self.console.print(renderable)
        self.stream.write("".join(line.rstrip() + "\n" for line in captured.get().splitlines()))


def _table(tty: bool) -> Table:
    from rich.table import Table

    return Table(box=None, show_edge=False, pad_edge=False, header_style="bold" if tty else "", expand=False)


def tasks_table(items: Sequence[dict[str, Any]], tty: bool, now: datetime | None = None) -> Table:
    """ID, state, progress and age are never cut; on a narrow terminal namespace, name and worker give way
    (cut with an ellipsis, never wrapped)."""
    from rich.text import Text

    now = now or datetime.now(UTC)
    table = _table(tty)
    table.add_column("ID", no_wrap=True)
    table.add_column("STATE", no_wrap=True)
    table.add_column("NAMESPACE", max_width=30)
    table.add_column("NAME")
    table.add_column("PROGRESS", justify="right", no_wrap=True)
    table.add_column("WORKER", max_width=30)
    table.add_column("UPDATED", no_wrap=True)
    for task in items:
        table.add_row(Text(str(task.get("id"))), _state(task.get("state"), tty), _flexible(task.get("namespace")),
                      _flexible(_cut(_text(task.get("name")), NAME_WIDTH)), Text(_progress(task.get("progress"))),
                      _flexible(task.get("worker")), Text(_age(task.get("updated_at") or task.get("created_at"), now)))
    return table


def task_details(task: dict[str, Any], tty: bool) -> Table:
    from rich.table import Table
    from rich.text import Text

    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold" if tty else "", no_wrap=True)
    grid.add_column()
    retries = f"{task.get('retries', 0)} of {task.get('max_retries', 0)}"
    rows: list[tuple[str, Text | str | None]] = [
        ("id", str(task.get("id"))),
        ("name", _text(task.get("name"))),
        ("namespace", f"{_text(task.get('namespace'))} (facade {_text(task.get('facade'))})"),
        ("type", _text(task.get("type"))),
        ("state", _state(task.get("state"), tty).append(" (dropped)" if task.get("dropped") else "")),
        ("progress", _progress(task.get("progress")) + (f"  {task['message']}" if task.get("message") else "")),
        ("worker", f"{task['worker']} (lease {task.get('lease_epoch')})" if task.get("worker") else "-"),
        ("last heartbeat", _when(task["last_heartbeat"]) if task.get("last_heartbeat") else None),
        ("retries", retries),
        ("submitter", _text(task.get("submitter"))),
        ("labels", ", ".join(f"{k}={v}" for k, v in (task.get("labels") or {}).items()) or "-"),
        ("steps", ", ".join(f"{s.get('name')} {s.get('status')}" for s in (task.get("steps") or [])[:20])
         + (f", … {len(task['steps']) - 20} more" if len(task.get("steps") or []) > 20 else "") or None),
        ("created", _when(task.get("created_at"))),
        ("started", _when(task["started_at"]) if task.get("started_at") else None),
        ("updated", _when(task.get("updated_at"))),
        ("ended", _when(task["ended_at"]) if task.get("ended_at") else None),
        ("error", _cut(str(task["error"]), 500) if task.get("error") else None),
        ("result", _cut(_compact(task["result"]), 500) if task.get("result") is not None else None),
        ("schedule", _cut(_compact(task["schedule"]), 500) if task.get("schedule") else None),
        ("version", str(task.get("version"))),
    ]
    for key, value in rows:
        if value is not None:
            grid.add_row(Text(key), value if isinstance(value, Text) else Text(value))
    return grid


def events_table(events: Sequence[dict[str, Any]], tty: bool) -> Table:
    from rich.text import Text

    table = _table(tty)
    table.add_column("VERSION", justify="right", no_wrap=True)
    table.add_column("TIME (UTC)", no_wrap=True)
    table.add_column("TYPE", no_wrap=True)
    table.add_column("ACTOR", max_width=30)
    table.add_column("DATA")
    for event in events:
        data = event.get("data") or {}
        shown = " ".join(f"{k}={_value(v)}" for k, v in data.items() if v is not None and k != "idempotency")
        table.add_row(Text(str(event.get("version"))), Text(_time(event.get("time"))), Text(str(event.get("type"))),
                      _flexible(event.get("actor")), _flexible(_cut(shown, DATA_WIDTH)))
    return table


def _state(state: Any, tty: bool) -> Text:
    from rich.text import Text

    text = _text(state)
    return Text(text, style=STATE_STYLES.get(text, "") if tty else "")


def _flexible(value: Any) -> Text:
    """A cell that a narrow terminal may cut (with an ellipsis), never wrap onto a second line."""
    from rich.text import Text

    return Text(" ".join(_text(value).split()), no_wrap=True, overflow="ellipsis")


def _text(value: Any) -> str:
    return "-" if value is None or value == "" else str(value)


def _cut(text: str, width: int) -> str:
    text = " ".join(text.split())  # one line: a newline in a name would break the row
    return text if len(text) <= width else text[:width - 1] + "…"


def _progress(value: Any) -> str:
    try:
        return f"{int(float(value))}%"
    except (TypeError, ValueError):
        return "-"


def _time(value: Any) -> str:
    """An ISO-8601 time as `2025-05-01 12:00:03` (UTC)."""
    if not value:
        return "-"
    try:
        return datetime.fromisoformat(str(value)).astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
    except ValueError:
        return str(value)


def _age(value: Any, now: datetime) -> str:
    """How long ago: `12s ago`, `5m ago`, `3h ago`, `2d ago`."""
    try:
        then = datetime.fromisoformat(str(value))
    except (TypeError, ValueError):
        return "-"
    elapsed = max(0, int((now - then).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if elapsed >= size:
            return f"{elapsed // size}{unit} ago"
    return f"{elapsed}s ago"


def _when(value: Any) -> str:
    return f"{_time(value)} UTC" if value else "-"


def _compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _value(value: Any) -> str:
    return value if isinstance(value, str) and value and not any(c.isspace() for c in value) else _compact(value)
