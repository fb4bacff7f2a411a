"""`taskledger budget`: the PostgreSQL connections a deployment of separate processes holds, per role."""

from __future__ import annotations

import argparse

from taskledger import budget
from taskledger.commandline import add_command
from taskledger.config import Settings

# PostgreSQL's default superuser_reserved_connections: slots max_connections keeps for superusers only.
SUPERUSER_RESERVED = 3


def register(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = add_command(commands, "budget", "print the PostgreSQL connections each role holds, idle and at most, "
                         "and the max_connections they need", cmd_budget,
                         "taskledger budget --api-machines 2 --workers 4 --projection-replicas 2 --schedulers 2 "
                         "--watchdogs 2")
    parser.add_argument("--api-machines", type=_count, default=1, help="machines running the API (default 1)")
    parser.add_argument("--workers", type=_count, help="gunicorn workers per machine (default TASKLEDGER_WORKERS)")
    parser.add_argument("--pool-size", type=_count, help="each worker's pool size (default TASKLEDGER_POOL_SIZE, "
                        "or with --workers the default for that many workers)")
    for option, command in (("--projection-replicas", "project"), ("--schedulers", "schedule"),
                            ("--watchdogs", "watchdog")):
        parser.add_argument(option, type=_count, default=1, help=f"`taskledger {command}` processes (default 1)")


def _count(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 1000:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number from 1 to 1000")
    return int(text)


def cmd_budget(args: argparse.Namespace, settings: Settings) -> int:
    workers = args.workers or settings.serving.workers
    pool_size = args.pool_size or (budget.default_pool_size(workers) if args.workers else settings.pool_size)
    roles = budget.per_role(args.api_machines, workers, pool_size, args.projection_replicas, args.schedulers,
                            args.watchdogs)
    print(f"{'role':<10} {'idle':>5} {'peak':>5}  how")
    for name, held in roles.items():
        print(f"{name:<10} {held.idle:>5} {held.peak:>5}  {held.formula}")
    idle, peak = sum(b.idle for b in roles.values()), sum(b.peak for b in roles.values())
    print(f"{'total':<10} {idle:>5} {peak:>5}")
    wanted = peak + budget.HEADROOM + SUPERUSER_RESERVED
    print(f"max_connections: at least {wanted} (peak {peak} + {budget.HEADROOM} for psql and taskledger tools + "
          f"{SUPERUSER_RESERVED} superuser_reserved_connections)")
    return 0
