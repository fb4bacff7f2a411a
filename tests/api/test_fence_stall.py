"""A transaction left open while it holds a log position stalls every reader: the API says which one."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import psycopg
import pytest
from falcon import testing

from api.app import create_app
from api.resources import ops
from ledger import commands as c
from ledger.application import TaskLedger
from projections.queries import PostgresTaskView
from projections.runner import start_projections
from taskledger.accounts import PostgresAccounts
from taskledger.config import IDLE_IN_TRANSACTION_TIMEOUT, eventsourcing_env, service_conninfo
from tests.api.conftest import basic

WHO = c.Caller("stall-test", "req")


@dataclass
class Service:
    url: str
    ledger: TaskLedger
    view: PostgresTaskView
    client: testing.TestClient
    auth: dict[str, str]


@pytest.fixture
def service(new_database: Callable[[], str]) -> Iterator[Service]:
    url = new_database()
    ledger = TaskLedger(eventsourcing_env(url))
    view = PostgresTaskView(service_conninfo(url))
    view.open()
    accounts = PostgresAccounts(url)
    accounts.open()
    accounts.create_user("stall-admin", "stall-admin-pw", "admin")
    stopping = threading.Event()
    runners = start_projections(eventsourcing_env(url), url, stopping)
    client = testing.TestClient(create_app(ledger, view, accounts, min_position_wait=0.5))
    yield Service(url, ledger, view, client, basic("stall-admin", "stall-admin-pw"))
    stopping.set()
    for runner in runners:
        runner.join(timeout=10)
    accounts.close()
    view.close()
    ledger.close()


def _hold_a_position(url: str) -> tuple[psycopg.Connection[tuple[object, ...]], int, int]:
    """A session that took a log position and then sat idle in its transaction (a stuck client)."""
    conn = psycopg.connect(url)
    row = conn.execute("INSERT INTO taskledger_events (originator_id, originator_version, topic, state) "
                       "VALUES (%s, 1, 'tests:Held', '{}') RETURNING notification_id, pg_backend_pid()",
                       (uuid.uuid4(),)).fetchone()
    assert row is not None
    return conn, int(row[0]), int(row[1])  # type: ignore[call-overload]


def test_projections_readiness_and_metrics_name_the_transaction_a_gap_waits_for(
        service: Service, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ops, "STALL_SECONDS", 0.2)
    held, gap, pid = _hold_a_position(service.url)
    try:
        written = service.ledger.create_task(c.CreateTask(namespace="stall", name="behind the gap"), WHO)
        assert written.position > gap
        time.sleep(0.5)

        status = {p["name"]: p for p in service.client.simulate_get(
            "/ledger/v1/projections", headers=service.auth).json["projections"]}
        assert {p["held_at"] for p in status.values()} == {gap}
        assert {p["held_by"]["pid"] for p in status.values()} == {pid}
        assert all(p["position"] < gap for p in status.values())

        ready = service.client.simulate_get("/readyz")
        assert ready.status_code == 503
        assert any(f"waits at position {gap} for transaction of pid {pid}" in r for r in ready.json["reasons"])

        metrics = service.client.simulate_get("/metrics", headers=service.auth).text
        held_seconds = [float(line.rsplit(" ", 1)[1]) for line in metrics.splitlines()
                        if line.startswith("taskledger_projection_held_seconds{")]
        assert len(held_seconds) == 2 and min(held_seconds) > 0
    finally:
        held.rollback()  # the stuck client gives up: its position becomes a gap for good
        held.close()

    assert service.view.wait_for(written.position, 10), "the readers did not pass the gap once it was released"
    after = service.client.simulate_get("/ledger/v1/projections", headers=service.auth).json["projections"]
    assert [p["held_at"] for p in after] == [None, None]
    assert service.client.simulate_get("/readyz").status_code == 200


def test_every_service_session_ends_a_transaction_left_idle() -> None:
    expected = f"options='-c idle_in_transaction_session_timeout={IDLE_IN_TRANSACTION_TIMEOUT * 1000}'"
    assert expected in service_conninfo("postgresql://u@h:5432/db")
    assert eventsourcing_env("postgresql://u@h:5432/db")["POSTGRES_IDLE_IN_TRANSACTION_SESSION_TIMEOUT"] == str(
        IDLE_IN_TRANSACTION_TIMEOUT)


def test_the_ledger_and_the_view_sessions_carry_the_timeout(service: Service) -> None:
    with service.ledger.recorder.datastore.get_connection() as conn:  # type: ignore[attr-defined]
        ledger_setting = conn.execute("SHOW idle_in_transaction_session_timeout").fetchone()
    view_setting = service.view._all("SHOW idle_in_transaction_session_timeout")[0]
    assert list(ledger_setting.values()) == [f"{IDLE_IN_TRANSACTION_TIMEOUT}s"]
    assert list(view_setting.values()) == [f"{IDLE_IN_TRANSACTION_TIMEOUT}s"]
