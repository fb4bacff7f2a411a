"""The eventsourcing PostgreSQL factory, with every libpq parameter of TASKLEDGER_DATABASE_URL kept.

eventsourcing builds its pool from five settings (dbname, host, port, user, password); a URL's other
parameters — `target_session_attrs=read-write` above all, with a multi-host URL, but also `sslmode`,
`sslrootcert`, `application_name`, `options`, `keepalives…` — were dropped, so after a failover a pool could
connect to a read-only standby. `POSTGRES_CONNINFO_EXTRA` (set by `taskledger.config.eventsourcing_env`) is a
conninfo string of those parameters; they are added to the pool's connection arguments before it opens.
"""

from __future__ import annotations

from typing import Any

from eventsourcing.postgres import PostgresFactory
from psycopg.conninfo import conninfo_to_dict

CONNINFO_EXTRA = "POSTGRES_CONNINFO_EXTRA"


class LedgerFactory(PostgresFactory):
    def __init__(self, env: Any) -> None:
        super().__init__(env)
        extra = self.env.get(CONNINFO_EXTRA) or ""
        if extra:
            kwargs = self.datastore.pool.kwargs
            if isinstance(kwargs, dict):
                kwargs.update(conninfo_to_dict(extra))
