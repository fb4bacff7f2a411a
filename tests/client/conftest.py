"""One real `taskledger serve` for the client tests (its own database and port), and users of each role."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bench.services import Process, free_port, start_service
from taskledger.client import Ledger


@dataclass(frozen=True)
class Service:
    url: str
    admin_password: str
    log: Path
    worker_password: str = ""
    operator_password: str = ""

    def ledger(self, user: str = "admin", **options: object) -> Ledger:
        password = {"admin": self.admin_password, "worker": self.worker_password,
                    "operator": self.operator_password}[user]
        return Ledger(self.url, (user, password), **options)  # type: ignore[arg-type]

    def env(self, user: str = "worker") -> dict[str, str]:
        password = {"admin": self.admin_password, "worker": self.worker_password,
                    "operator": self.operator_password}[user]
        return {"TASKLEDGER_URL": self.url, "TASKLEDGER_USER": user, "TASKLEDGER_PASSWORD": password}


@pytest.fixture(scope="module")  # not longer: every e2e service holds database connections
def service(tmp_path_factory: pytest.TempPathFactory, new_database: Callable[[], str]) -> Iterator[Service]:
    home, database_url = tmp_path_factory.mktemp("client-service"), new_database()
    port, password = free_port(), secrets.token_urlsafe(12)
    process: Process = start_service(home, port, database_url, password, {"TASKLEDGER_WORKERS": "2"}, home)
    try:
        url = f"http://127.0.0.1:{port}"
        process.wait_http_ok(f"{url}/readyz", timeout=120)
        worker_password, operator_password = secrets.token_urlsafe(12), secrets.token_urlsafe(12)
        with Ledger(url, ("admin", password)) as admin:
            admin.create_user("worker", worker_password, "worker")
            admin.create_user("operator", operator_password, "operator")
        yield Service(url, password, home / "taskledger-serve.log", worker_password, operator_password)
    finally:
        process.stop()
