"""Shared fixtures: a real PostgreSQL (the configured server or an embedded one) and fresh databases."""

from __future__ import annotations

import os
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from psycopg.conninfo import make_conninfo

from ledger.application import TaskLedger
from projections.queries import PostgresTaskView
from projections.runner import SupervisedProjection, start_projections
from taskledger.calendar import CronCalendar
from taskledger.config import eventsourcing_env
from taskledger.database import drop_database, embedded_url, start_embedded
from taskledger.migrate import migrate


@pytest.fixture(scope="session")
def pg_server_url() -> Iterator[str]:
    """URL of a PostgreSQL server's maintenance database: TASKLEDGER_TEST_DATABASE_URL or embedded."""
    url = os.environ.get("TASKLEDGER_TEST_DATABASE_URL")
    if url:
        yield url
        return
    # Not under pytest's basetemp (see tests/api/test_database_outage.py).
    with tempfile.TemporaryDirectory(prefix="taskledger-test-pg-") as base:
        server = start_embedded(Path(base) / "pgdata")
        yield embedded_url(server, "postgres")
        server.cleanup()


@pytest.fixture(scope="session")
def new_database(pg_server_url: str) -> Iterator[Callable[[], str]]:
    """Makes fresh, migrated databases; drops them all at the end of the session."""
    made: list[str] = []

    def make() -> str:
        url = make_conninfo(pg_server_url, dbname=f"tl_test_{uuid.uuid4().hex[:10]}")
        migrate(url)
        made.append(url)
        return url

    yield make
    for url in made:
        drop_database(url)


@pytest.fixture(scope="session")
def database_url(new_database: Callable[[], str]) -> str:
    """One migrated database shared by the session; tests isolate themselves by namespace."""
    return new_database()


@pytest.fixture(scope="session")
def es_env(database_url: str) -> dict[str, str]:
    return eventsourcing_env(database_url)


@pytest.fixture(scope="session")
def ledger_app(es_env: dict[str, str]) -> Iterator[TaskLedger]:
    app = TaskLedger(es_env, calendar=CronCalendar())
    yield app
    app.close()


@pytest.fixture(scope="session")
def queries(database_url: str) -> Iterator[PostgresTaskView]:
    q = PostgresTaskView(database_url)
    q.open()
    yield q
    q.close()


@pytest.fixture(scope="session")
def projections_running(es_env: dict[str, str], database_url: str) -> Iterator[list[SupervisedProjection]]:
    """The projection runners of the shared database, as threads, for the whole session."""
    stopping = threading.Event()
    threads = start_projections(es_env, database_url, stopping)
    yield threads
    stopping.set()
    for thread in threads:
        thread.join(timeout=10)


@pytest.fixture
def namespace() -> str:
    """A namespace no other test uses."""
    return f"test-{uuid.uuid4().hex[:12]}"
