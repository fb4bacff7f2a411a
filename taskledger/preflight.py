"""The database a command works on, checked before it opens a pool: a failure is one line saying what to do.

Only `taskledger serve` makes a new embedded PostgreSQL; every other command refuses a data directory
without one, so a command run from the wrong directory cannot quietly work on a new, empty cluster.
"""

from __future__ import annotations

import re
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict

from projections.queries import SERVER_FULL
from projections.registry import PROJECTIONS
from projections.tables import EVENTS_TABLE, tracking_table
from taskledger.budget import Budget
from taskledger.config import ConfigError, Settings
from taskledger.database import ForeignServerError, embedded_url, start_embedded

# Seconds a command waits for PostgreSQL to accept a connection before it says it cannot reach it.
CONNECT_TIMEOUT = 5
# What `taskledger migrate` creates; a database without one of them is not (fully) migrated.
MIGRATED_TABLES = (EVENTS_TABLE, *(tracking_table(name) for name in PROJECTIONS),
                   "users", "api_tokens", "credentials_version")
LOGIN_REFUSED = re.compile(r"password authentication failed|role \".*\" does not exist|no pg_hba\.conf entry|"
                           r"permission denied for database")


class DatabaseUnavailableError(Exception):
    """The database cannot be used; the message names the setting to check, the cause and what to do."""


def open_database(settings: Settings, *, create: bool = False) -> tuple[str, Any]:
    """The configured database URL, or the embedded PostgreSQL under the data directory (started if it is not
    running). Without `create`, a data directory that has none is refused instead of given a new one."""
    if settings.database_url:
        return settings.database_url, None
    if not create and not (settings.pgdata / "PG_VERSION").is_file():
        raise ConfigError(f"no taskledger database in {settings.pgdata}: set TASKLEDGER_HOME to the directory "
                          f"`taskledger serve` uses, or TASKLEDGER_DATABASE_URL to your PostgreSQL")
    make_home(settings)
    try:
        server = start_embedded(settings.pgdata)
    except ForeignServerError as error:
        raise ConfigError(f"{error}, or set TASKLEDGER_HOME to another directory") from None
    return embedded_url(server), server


def make_home(settings: Settings) -> None:
    try:
        settings.home.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"TASKLEDGER_HOME={str(settings.home)!r}: cannot create it ({exc.strerror}); point it "
                          f"at a directory you can write") from None


def ready_database(settings: Settings, *, migrated: bool = True) -> tuple[str, Any]:
    """`open_database` and `check_database`: what every command but `serve` starts with."""
    url, server = open_database(settings)
    check_database(url, migrated=migrated, setting=setting_of(settings))
    return url, server


def setting_of(settings: Settings) -> str:
    """The variable that chose the database, for messages."""
    return "TASKLEDGER_DATABASE_URL" if settings.database_url else "TASKLEDGER_HOME"


def check_database(url: str, *, migrated: bool = True, setting: str = "TASKLEDGER_DATABASE_URL") -> None:
    """PostgreSQL answers within CONNECT_TIMEOUT and, if `migrated`, the database holds every table
    `taskledger migrate` creates; without `migrated` the database may also not exist yet (migrate makes it)."""
    try:
        with psycopg.connect(url, connect_timeout=CONNECT_TIMEOUT, autocommit=True) as conn:
            missing = [row[0] for row in conn.execute(
                "SELECT name FROM unnest(%s::text[]) WITH ORDINALITY AS t(name, n) WHERE to_regclass(name) IS NULL "
                "ORDER BY n", (list(MIGRATED_TABLES) if migrated else [],))]
    except psycopg.OperationalError as exc:
        if not migrated and _missing_database(exc):
            return
        raise unavailable(url, exc, setting) from None
    if missing:
        raise DatabaseUnavailableError(f"{where(url)} is not migrated (no table {missing[0]}): run "
                                       f"`taskledger migrate` with the same {setting}")


def connection_room(url: str) -> int:
    """Connections the server accepts beyond the ones open now (max_connections less the reserved ones)."""
    with psycopg.connect(url, connect_timeout=CONNECT_TIMEOUT, autocommit=True) as conn:
        row = conn.execute(
            "SELECT current_setting('max_connections')::int - current_setting('superuser_reserved_connections')::int"
            " - (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend')").fetchone()
    return int(row[0]) if row else 0


def check_budget(url: str, budget: Budget, setting: str, headroom: int) -> str | None:
    """Refuses (DatabaseUnavailableError) a server with no room for the budget's idle connections; answers a
    warning when its peak does not fit with `headroom` to spare, else None."""
    room = connection_room(url) + 1  # this check's own connection is closed again
    if budget.idle > room:
        raise DatabaseUnavailableError(
            f"PostgreSQL at {where(url)} has room for {room} more connections, and serve needs {budget.idle} to "
            f"start ({budget.peak} at most: {budget.formula}): set TASKLEDGER_WORKERS or TASKLEDGER_POOL_SIZE "
            f"lower, or raise the server's max_connections ({setting} names the server)")
    if budget.peak + headroom > room:
        return (f"PostgreSQL at {where(url)} has room for {room} more connections; serve may use {budget.peak} "
                f"({budget.formula}), leaving fewer than {headroom} for everyone else: requests may answer 503 "
                f"under load. Lower TASKLEDGER_WORKERS or TASKLEDGER_POOL_SIZE, or raise max_connections")
    return None


def where(url: str) -> str:
    """host:port/database of a URL (or socket directory/database), without credentials, for messages."""
    info = conninfo_to_dict(url)
    host, database = str(info.get("host", "localhost")), info.get("dbname", "postgres")
    if host.startswith("/"):
        return f"{database} (the embedded PostgreSQL, socket in {host})"
    return f"{host}:{info.get('port', '5432')}/{database}"


def unavailable(url: str, exc: psycopg.OperationalError,
                setting: str = "TASKLEDGER_DATABASE_URL") -> DatabaseUnavailableError:
    """What a failed connection means for the operator: a missing database, a refused login, a full server, or
    no server."""
    detail = cause(exc)
    if _missing_database(exc):
        return DatabaseUnavailableError(f"database {where(url)} does not exist: run `taskledger migrate` first, "
                                        f"or fix {setting}")
    if LOGIN_REFUSED.search(detail):
        return DatabaseUnavailableError(f"PostgreSQL at {where(url)} refused the login ({detail}): fix the user "
                                        f"or password in {setting}")
    if SERVER_FULL.search(detail):
        return DatabaseUnavailableError(f"PostgreSQL at {where(url)} has no connection to spare ({detail}): try "
                                        f"again when fewer clients are connected, or raise its max_connections")
    return DatabaseUnavailableError(f"cannot reach PostgreSQL at {where(url)}; is the service running, and is "
                                    f"{setting} right? ({detail})")


def cause(exc: BaseException) -> str:
    """The server's or libpq's reason in one line, without the `connection to server … failed:` preamble."""
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    if not lines:
        return type(exc).__name__
    # With several addresses to try (localhost: ::1 and 127.0.0.1), libpq lists a failure per address.
    first = next((line for line in lines if " failed: " in line), lines[0])
    reason = first.rpartition(" failed: ")[2] if " failed: " in first else first
    return re.sub(r"^(FATAL|ERROR):\s*", "", reason)


def _missing_database(exc: psycopg.OperationalError) -> bool:
    return re.search(r"database \".*\" does not exist", str(exc)) is not None
