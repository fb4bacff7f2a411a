"""Fixtures for the tools: databases with a driven workload and caught-up projections, and the CLI."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from uuid import UUID

import pytest

from ledger.application import TaskLedger
from taskledger.config import eventsourcing_env, load_settings
from taskledger.tools.commands import register
from tests.projections.helpers import drive, project_to_head


@dataclass(frozen=True)
class Workload:
    url: str
    task_ids: list[UUID]


@pytest.fixture
def workload(new_database: Callable[[], str]) -> Callable[[int, int], Workload]:
    """A fresh database with `n` tasks driven through random lives, fully projected."""
    def make(n: int = 12, seed: int = 5) -> Workload:
        url = new_database()
        app = TaskLedger(eventsourcing_env(url, pool_size=1))
        try:
            ids = drive(app, n_tasks=n, seed=seed)
        finally:
            app.close()
        project_to_head(url)
        return Workload(url, ids)
    return make


CLI = Callable[..., int]


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., int]]:
    """Runs a tool subcommand through `register` on our own parser, against a given database URL."""
    def run(url: str, *argv: str) -> int:
        monkeypatch.setenv("TASKLEDGER_DATABASE_URL", url)
        parser = argparse.ArgumentParser(prog="taskledger")
        register(parser.add_subparsers(dest="command", required=True))
        args = parser.parse_args(list(argv))
        code: int = args.handler(args, load_settings())
        return code
    yield run
