"""Configuration from the environment, read in this one place."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from psycopg.conninfo import conninfo_to_dict, make_conninfo


@dataclass(frozen=True)
class Settings:
    """Every setting taskledger reads, with its default."""

    home: Path
    port: int
    host: str
    database_url: str | None
    admin_password: str | None
    workers: int
    threads: int
    min_position_wait: float
    lag_budget_events: int
    log_level: str

    @property
    def run_dir(self) -> Path:
        return self.home / "run"

    @property
    def pgdata(self) -> Path:
        return self.home / "pgdata"

    @property
    def admin_password_file(self) -> Path:
        return self.home / "admin-password"


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    env = os.environ if environ is None else environ
    return Settings(
        home=Path(env.get("TASKLEDGER_HOME", "./var")).resolve(),
        port=int(env.get("TASKLEDGER_PORT", "8080")),
        host=env.get("TASKLEDGER_BIND", "127.0.0.1"),
        database_url=env.get("TASKLEDGER_DATABASE_URL") or None,
        admin_password=env.get("TASKLEDGER_ADMIN_PASSWORD") or None,
        workers=int(env.get("TASKLEDGER_WORKERS", str(min(8, 2 * (os.cpu_count() or 1))))),
        threads=int(env.get("TASKLEDGER_THREADS", "2")),
        min_position_wait=float(env.get("TASKLEDGER_MIN_POSITION_WAIT", "5")),
        lag_budget_events=int(env.get("TASKLEDGER_LAG_BUDGET", "1000")),
        log_level=env.get("TASKLEDGER_LOG_LEVEL", "INFO"),
    )


# Seconds a service session may sit idle inside a transaction before PostgreSQL ends it.
IDLE_IN_TRANSACTION_TIMEOUT = 10


def service_conninfo(url: str) -> str:
    """The URL with the session settings every service connection gets (kept: any options already given)."""
    given = str(conninfo_to_dict(url).get("options") or "")
    setting = f"-c idle_in_transaction_session_timeout={IDLE_IN_TRANSACTION_TIMEOUT * 1000}"
    return make_conninfo(url, options=f"{given} {setting}".strip())


def eventsourcing_env(database_url: str, *, create_table: bool = False, pool_size: int = 4) -> dict[str, str]:
    """The eventsourcing library's settings for a PostgreSQL URL (TCP or unix-socket host)."""
    info = conninfo_to_dict(database_url)
    return {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_DBNAME": str(info.get("dbname", "postgres")),
        "POSTGRES_HOST": str(info.get("host", "localhost")),
        "POSTGRES_PORT": str(info.get("port", "5432")),
        "POSTGRES_USER": str(info.get("user", "postgres")),
        "POSTGRES_PASSWORD": str(info.get("password", "")),
        "POSTGRES_POOL_SIZE": str(pool_size),
        "POSTGRES_MAX_OVERFLOW": str(pool_size),
        "POSTGRES_CONNECT_TIMEOUT": "10",
        "POSTGRES_LOCK_TIMEOUT": "10",
        # Appends without eventsourcing's table lock; readers are fenced instead (docs/architecture.md).
        "APPLICATION_RECORDER_TOPIC": "eventstore.recorder:LedgerRecorder",
        # An open transaction holding a transaction id holds every log reader back: none of ours may idle in one.
        "POSTGRES_IDLE_IN_TRANSACTION_SESSION_TIMEOUT": str(IDLE_IN_TRANSACTION_TIMEOUT),
        # No pre-ping: the recorder already retries operational errors, and a ping is a round trip per checkout.
        "POSTGRES_PRE_PING": "n",
        "CREATE_TABLE": "yes" if create_table else "no",
    }
