"""Fixtures of the scheduling tests on PostgreSQL: ledgers on the fake clock, and recurring tasks cleaned up."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from uuid import UUID

import pytest

from ledger import commands as c
from ledger.application import TaskLedger
from ledger.errors import LedgerError

# The native API over the session's database, built as tests/api builds it.
from tests.api.conftest import accounts, api, app, client, credentials  # noqa: F401
from tests.scheduling.support import OPERATOR, FakeClock, scheduled_ledger


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def ledgers(es_env: dict[str, str], clock: FakeClock) -> Iterator[Callable[[], TaskLedger]]:
    """Makes TaskLedgers on the shared database that read time from the test's clock."""
    made: list[TaskLedger] = []

    def make() -> TaskLedger:
        made.append(scheduled_ledger(clock, es_env))
        return made[-1]

    yield make
    for app in made:
        app.close()


@pytest.fixture
def ended(ledger_app: TaskLedger) -> Iterator[list[UUID]]:
    """Tasks to abort after the test, so no later test's scheduler or watchdog finds them active."""
    tasks: list[UUID] = []
    yield tasks
    for task in tasks:
        try:
            ledger_app.abort_task(c.AbortTask(task, "test over"), OPERATOR)
        except LedgerError:
            pass  # already ended
