"""Slow and hostile clients against `taskledger serve` in its default all-in-one mode (issue 9.3).

Each of the four attacks runs with 16 attacking clients while a well-behaved client reads and creates
tasks on new connections; it must keep >= 99 % success with p99 < 1 s. The longer measurement, with the
gthread worker class as the baseline, is `python -m bench.slow_clients`.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bench.attacks import ATTACKS, Target, prepare, run_attack
from bench.services import Process, free_port, start_service

pytestmark = pytest.mark.e2e

SECONDS = 6.0


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory,
            new_database: Callable[[], str]) -> Iterator[tuple[Target, str, str]]:
    home, database_url = tmp_path_factory.mktemp("slow-clients"), new_database()
    port, password = free_port(), secrets.token_urlsafe(12)
    process: Process = start_service(home, port, database_url, password, {}, home)
    try:
        process.wait_http_ok(f"http://127.0.0.1:{port}/readyz", timeout=120)
        target = Target("127.0.0.1", port, ("admin", password))
        task_id, presto_task = prepare(target)
        yield target, task_id, presto_task
    finally:
        process.stop()


@pytest.mark.parametrize("attack", ATTACKS)
def test_a_well_behaved_client_is_served_during_the_attack(service: tuple[Target, str, str], attack: str) -> None:
    target, task_id, presto_task = service
    outcome = run_attack(target, attack, task_id, presto_task, SECONDS)
    print(f"{attack}: {outcome.line()}")
    assert outcome.requests >= 20, outcome.line()
    assert outcome.success >= 0.99, outcome.line()
    assert outcome.p99 < 1.0, outcome.line()

