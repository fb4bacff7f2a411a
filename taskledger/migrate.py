"""`taskledger migrate`: creates every table, idempotently. API workers never create tables."""

from __future__ import annotations

import logging

from eventsourcing.persistence import InfrastructureFactory
from eventsourcing.utils import Environment

from ledger.application import TaskLedger
from projections.registry import PROJECTIONS
from taskledger import accounts
from taskledger.config import eventsourcing_env
from taskledger.database import ensure_database

log = logging.getLogger(__name__)


def migrate(database_url: str) -> None:
    ensure_database(database_url)
    env = eventsourcing_env(database_url, create_table=True, pool_size=1)
    TaskLedger(env).close()
    for name, (_, view_class) in PROJECTIONS.items():
        factory = InfrastructureFactory.construct(Environment(name, env))
        factory.tracking_recorder(view_class)
        factory.close()
    accounts.create_tables(database_url)
    _create_archive_record(database_url)
    log.info("schema is up to date")


def _create_archive_record(database_url: str) -> None:
    """`archived_tasks`, what `taskledger archive` removed (docs/retention.md): made here too, so that verify and
    rebuild find it on every migrated database (archive also makes it on one migrated before it existed)."""
    import psycopg

    from projections.schema import ARCHIVED_DDL

    with psycopg.connect(database_url, autocommit=True) as conn:
        for statement in ARCHIVED_DDL:
            conn.execute(statement)
