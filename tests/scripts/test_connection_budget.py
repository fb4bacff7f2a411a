"""The connection budget (taskledger/budget.py): the all-in-one mode stays well under PostgreSQL's default limit,
`serve` checks the server has room, and an exhausted server is a clear answer at once, never a hang."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo

from taskledger import budget
from taskledger.preflight import DatabaseUnavailableError, check_budget, check_database, connection_room

POSTGRES_DEFAULT_MAX_CONNECTIONS = 100


@pytest.mark.parametrize("workers", range(1, 9))
def test_the_default_all_in_one_mode_stays_well_under_postgresql_s_default_limit(workers: int) -> None:
    wanted = budget.serve_budget(workers, budget.default_pool_size(workers))
    assert wanted.peak <= 0.75 * POSTGRES_DEFAULT_MAX_CONNECTIONS, wanted
    assert wanted.idle < wanted.peak


def test_the_budget_adds_up_what_each_role_holds() -> None:
    wanted = budget.serve_budget(4, 4)
    # 4 workers x (ledger 4 + reads 4 + accounts' own 1 + notifier 1), 2 projections x 6, 2 roles x 5
    assert wanted.peak == 4 * 10 + 2 * 6 + 2 * 5
    assert "4 workers" in wanted.formula


def test_serve_refuses_a_server_without_room_for_its_idle_connections(database_url: str) -> None:
    room = connection_room(database_url)
    with pytest.raises(DatabaseUnavailableError) as refused:
        check_budget(database_url, budget.Budget(room + 5, room + 50, "too much"), "TASKLEDGER_DATABASE_URL", 10)
    message = str(refused.value)
    assert "TASKLEDGER_WORKERS" in message and "max_connections" in message and "too much" in message


def test_serve_warns_when_its_peak_leaves_too_little_room(database_url: str) -> None:
    room = connection_room(database_url)
    warning = check_budget(database_url, budget.Budget(1, room, "peak"), "TASKLEDGER_DATABASE_URL", 10)
    assert warning is not None and "503" in warning and "TASKLEDGER_POOL_SIZE" in warning
    assert check_budget(database_url, budget.Budget(1, 2, "small"), "TASKLEDGER_DATABASE_URL", 10) is None


@pytest.fixture
def exhausted_url(database_url: str) -> Iterator[str]:
    """A URL whose role may hold 2 connections, both held: every new connection is refused (SQLSTATE 53300)."""
    role = f"tl_budget_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(database_url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE ROLE {} LOGIN CONNECTION LIMIT 2").format(sql.Identifier(role)))
        url = make_conninfo(database_url, user=role)
        held = [psycopg.connect(url, autocommit=True) for _ in range(2)]
        try:
            yield url
        finally:
            for conn in held:
                conn.close()
            admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", (role,))
            admin.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


def test_an_exhausted_server_is_named_as_such_at_once(exhausted_url: str) -> None:
    started = time.monotonic()
    with pytest.raises(DatabaseUnavailableError, match="no connection to spare") as refused:
        check_database(exhausted_url)
    assert "max_connections" in str(refused.value)
    assert time.monotonic() - started < 5


def test_a_command_on_an_exhausted_server_says_so_in_one_line_exit_2(exhausted_url: str) -> None:
    env = {**os.environ, "TASKLEDGER_DATABASE_URL": exhausted_url}
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "taskledger.cli", "users", "list"], env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "no connection to spare" in lines[0], done.stderr
    assert time.monotonic() - started < 15  # no pool left to time out after 30 s
