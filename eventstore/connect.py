"""Connections of their own (outside the datastore's pool) with the datastore's settings."""

from __future__ import annotations

import os
import select
from typing import Any

import psycopg
from eventsourcing.postgres import PostgresDatastore


def connection_kwargs(datastore: PostgresDatastore) -> dict[str, Any]:
    """What the datastore's pool connects with (host, port, database, user, password)."""
    pool_kwargs = datastore.pool.kwargs
    given = pool_kwargs() if callable(pool_kwargs) else dict(pool_kwargs or {})
    return {k: v for k, v in given.items() if k != "row_factory"}


def application_name(purpose: str) -> str:
    """`<process role>/<purpose>` (e.g. `taskledger-api/notifier`): pg_stat_activity shows whose a connection is.
    The role is libpq's PGAPPNAME, which `taskledger` sets per command and the pools' connections carry."""
    return f"{os.environ.get('PGAPPNAME') or 'taskledger'}/{purpose}"[:63]


def own_connection(datastore: PostgresDatastore, application_name: str) -> psycopg.Connection[Any]:
    """An autocommit connection to the datastore's database, not taken from its pool."""
    return psycopg.Connection.connect(autocommit=True, **{**connection_kwargs(datastore),
                                                         "application_name": application_name})


def alive(conn: psycopg.Connection[Any]) -> bool:
    """Whether an idle pooled connection is still usable, without a round trip.

    An idle connection that listens to nothing has nothing to read; a readable socket means the server
    spoke first, and on a restart what it says is "terminating connection" and then it closes. Such a
    connection is never sent a statement (a write on it would fail with an unknown outcome)."""
    if conn.closed or conn.pgconn.status != psycopg.pq.ConnStatus.OK:
        return False
    try:
        readable, _, _ = select.select([conn.pgconn.socket], [], [], 0)
    except (OSError, ValueError):
        return False
    return not readable
