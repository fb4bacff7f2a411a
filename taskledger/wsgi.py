"""WSGI entry point: gunicorn calls `create_app()` once in every worker, after the fork."""

from __future__ import annotations

import os

import falcon

from api.app import create_app as create_api
from api.auth import LoginLimiter
from ledger.application import TaskLedger
from projections.queries import PostgresTaskQueries
from taskledger.accounts import PostgresAccounts
from taskledger.calendar import CronCalendar
from taskledger.config import eventsourcing_env, load_settings, service_conninfo


def create_app() -> falcon.App:
    settings = load_settings()
    if not settings.database_url:
        raise SystemExit("TASKLEDGER_DATABASE_URL is not set: start the service with `taskledger serve`, "
                         "or set it to your PostgreSQL URL")
    url = settings.database_url
    # Pools keep one connection open and grow to TASKLEDGER_POOL_SIZE while requests need them (with
    # gevent a worker serves many requests at once); docs/architecture.md has the connection budget.
    ledger = TaskLedger(eventsourcing_env(url, pool_size=1, overflow=settings.pool_size - 1), calendar=CronCalendar())
    view = PostgresTaskQueries(service_conninfo(url), max_size=settings.pool_size)
    view.open()
    accounts = PostgresAccounts(service_conninfo(url), max_size=2)
    accounts.open()
    return create_api(ledger, view, accounts, min_position_wait=settings.min_position_wait,
                      lag_budget_events=settings.lag_budget_events,
                      multiprocess_metrics=bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR")),
                      limiter=LoginLimiter(trusted_proxies=settings.trusted_proxies))
