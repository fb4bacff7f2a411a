"""The switch: the live projection's lead taken over, and the tables swapped in one transaction.

Readers name the read tables without a schema (search_path `public`). In one transaction the live
tables and their tracking table move to a retired schema and the rebuilt ones into `public`; the
renames hold ACCESS EXCLUSIVE locks until the commit, so a reader waits for that instant and then
resolves the name again (PostgreSQL re-looks a relation up after waiting for its lock, and
re-plans prepared statements whose tables changed): it never sees a missing table.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from datetime import datetime, timezone
from typing import Any

import psycopg
from psycopg import sql

from projections.runner import release_lead, request_lead
from taskledger.tools.rebuild.tables import LIVE_SCHEMA, RETIRED_PREFIX, ProjectionTables, tables_in
from taskledger.tools.store import ToolError, connect

SWITCH_LOCK_TIMEOUT_MS = 2000
SWITCH_ATTEMPTS = 5


@contextmanager
def leads(url: str, names: Sequence[str], timeout: float) -> Iterator[None]:
    """Holds the leader lock of each projection: their live runners have handed over and wait."""
    held: list[str] = []
    with connect(url, autocommit=True) as conn:
        try:
            for name in names:
                _request(conn, name, timeout)
                held.append(name)
            yield
        finally:
            with suppress(psycopg.Error):  # a lost connection has released them already
                for name in held:
                    release_lead(conn, name)


def _request(conn: psycopg.Connection[Any], name: str, timeout: float) -> None:
    try:
        request_lead(conn, name, timeout)
    except psycopg.errors.LockNotAvailable:
        raise ToolError(
            f"the live runner of {name} did not hand over its lead within {timeout:g}s (a `taskledger project` "
            f"or `serve` from before rebuilds existed, or a stuck one); stop it for the switch, or retry: the "
            f"rebuilt tables are kept and the next run resumes") from None


def retired_schema(conn: psycopg.Connection[Any], name: str) -> str:
    """A new schema name for the live tables of a projection that is being replaced."""
    base = f"{RETIRED_PREFIX}{name}_{datetime.now(timezone.utc):%Y%m%d_%H%M%S}"
    candidate, n = base, 1
    while conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (candidate,)).fetchone():
        n += 1
        candidate = f"{base}_{n}"
    return candidate


def switch(url: str, builds: Sequence[ProjectionTables]) -> dict[str, str]:
    """Swaps every rebuilt projection into `public` at once; returns where each one's old tables went."""
    with connect(url) as conn:
        for attempt in range(1, SWITCH_ATTEMPTS + 1):
            try:
                with conn.transaction():
                    conn.execute(f"SET LOCAL lock_timeout = {SWITCH_LOCK_TIMEOUT_MS}")
                    return {build.name: _swap(conn, build) for build in builds}
            except psycopg.errors.LockNotAvailable:
                if attempt == SWITCH_ATTEMPTS:
                    raise ToolError(f"could not lock the live tables for the switch in {SWITCH_ATTEMPTS} tries "
                                    f"(a long query or transaction holds them); nothing was switched; run the "
                                    f"command again") from None
                time.sleep(0.2 * attempt)
    raise AssertionError("unreachable")


def _swap(conn: psycopg.Connection[Any], build: ProjectionTables) -> str:
    retired = retired_schema(conn, build.name)
    conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(retired)))
    live = set(tables_in(conn, LIVE_SCHEMA))
    for table in tables_in(conn, build.schema):
        if table in live:
            copy_privileges(conn, table, build.schema)
            conn.execute(sql.SQL("ALTER TABLE {} SET SCHEMA {}").format(
                sql.Identifier(LIVE_SCHEMA, table), sql.Identifier(retired)))
        conn.execute(sql.SQL("ALTER TABLE {} SET SCHEMA {}").format(
            sql.Identifier(build.schema, table), sql.Identifier(LIVE_SCHEMA)))
    conn.execute(sql.SQL("DROP SCHEMA {}").format(sql.Identifier(build.schema)))
    return retired


def copy_privileges(conn: psycopg.Connection[Any], table: str, schema: str) -> None:
    """The rebuilt table gets the live one's owner and grants, so every role reads and writes it as before."""
    live = sql.Identifier(LIVE_SCHEMA, table)
    new = sql.Identifier(schema, table)
    owners = conn.execute("SELECT (SELECT relowner FROM pg_class WHERE oid = %s::regclass)::regrole::text, "
                          "(SELECT relowner FROM pg_class WHERE oid = %s::regclass)::regrole::text",
                          (live.as_string(conn), new.as_string(conn))).fetchone()
    if owners and owners[0] != owners[1]:
        conn.execute(sql.SQL("ALTER TABLE {} OWNER TO {}").format(new, sql.SQL(owners[0])))
    grants = conn.execute(
        "SELECT CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE a.grantee::regrole::text END, a.privilege_type, "
        "a.is_grantable FROM pg_class c, aclexplode(c.relacl) a WHERE c.oid = %s::regclass",
        (live.as_string(conn),)).fetchall()
    for grantee, privilege, grantable in grants:
        conn.execute(sql.SQL("GRANT {} ON {} TO {}{}").format(
            sql.SQL(privilege), new, sql.SQL(grantee), sql.SQL(" WITH GRANT OPTION" if grantable else "")))


def drop_retired(url: str, names: Sequence[str]) -> list[str]:
    """Drops every retired schema of these projections (the old tables kept for a rollback)."""
    with connect(url, autocommit=True) as conn:
        schemas = [str(r[0]) for name in names for r in conn.execute(
            "SELECT nspname FROM pg_namespace WHERE nspname ~ %s ORDER BY nspname",
            (retired_pattern(name),)).fetchall()]
        for schema in schemas:
            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))
    return schemas



def retired_pattern(name: str) -> str:
    """A regular expression for the retired schemas of a projection (names made by `retired_schema`)."""
    return f"^{RETIRED_PREFIX}{name}_[0-9]{{8}}_[0-9]{{6}}(_[0-9]+)?$"
