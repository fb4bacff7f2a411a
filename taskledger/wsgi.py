"""WSGI entry point: gunicorn calls `create_app()` once in every worker, after the fork."""

from __future__ import annotations

import os
import sys

import falcon

from api.app import create_app as create_api
from api.auth import LoginLimiter
from ledger.application import TaskLedger
from projections import replica
from projections.queries import PostgresTaskView, TaskView
from taskledger.accounts import PostgresAccounts
from taskledger.calendar import CronCalendar
from taskledger.config import ConfigError, eventsourcing_env, load_settings, require_database_url, service_conninfo
from taskledger.preflight import DatabaseUnavailableError, check_database

# A worker exiting with this code makes gunicorn's master halt ("App failed to load") instead of forking
# another worker that fails the same way, again and again.
APP_LOAD_ERROR = 4


def create_app() -> falcon.App:
    os.environ.setdefault("PGAPPNAME", "taskledger-api")  # what pg_stat_activity calls the workers' connections
    try:
        settings = require_database_url(load_settings())  # ops/gunicorn.conf.py checked all but the URL's syntax
        url = str(settings.database_url)
        check_database(url)
    except (ConfigError, DatabaseUnavailableError) as error:
        print(f"taskledger: {error}", file=sys.stderr, flush=True)
        raise SystemExit(APP_LOAD_ERROR) from None
    # Pools keep one connection open and grow to TASKLEDGER_POOL_SIZE while requests need them (with
    # gevent a worker serves many requests at once); docs/architecture.md has the connection budget.
    ledger = TaskLedger(eventsourcing_env(url, pool_size=1, overflow=settings.pool_size - 1), calendar=CronCalendar())
    view = PostgresTaskView(service_conninfo(url), max_size=settings.pool_size)
    view.open()
    accounts = PostgresAccounts(service_conninfo(url), pool=view.pool)  # the reads' pool (taskledger/budget.py)
    accounts.open()  # on the primary, always: a token revoked a moment ago must stop working at once
    reads: TaskView = view
    if settings.read_database_url:
        reads = replica.ReplicaRoutedView(view, replica_view(settings.read_database_url, settings.pool_size))
    return create_api(ledger, reads, accounts, min_position_wait=settings.min_position_wait,
                      lag_budget_events=settings.lag_budget_events,
                      multiprocess_metrics=bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR")),
                      limiter=LoginLimiter(trusted_proxies=settings.trusted_proxies))


def replica_view(read_url: str, pool_size: int) -> PostgresTaskView:
    """The read pool on the replica (docs/replicas.md), opened without waiting: a replica down at start fails
    GETs over to the primary instead of failing the worker."""
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    conninfo = service_conninfo(read_url)
    if "application_name" not in conninfo_to_dict(conninfo):
        name = os.environ.get("PGAPPNAME", "taskledger-api")
        conninfo = make_conninfo(conninfo, application_name=f"{name}/replica")
    view = PostgresTaskView(conninfo, max_size=pool_size, connect_wait=replica.CONNECT_WAIT)
    view.pool.open(wait=False)
    return view
