"""Fixtures of the native API tests: the app over the real ledger, view and accounts, and a client per role."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import falcon
import pytest
from falcon import testing

from uuid import UUID

from api.app import create_app
from api.auth import LoginLimiter
from ledger import commands as c
from ledger.application import TaskLedger
from ledger.errors import LedgerError
from projections.queries import PostgresTaskView
from taskledger.accounts import PostgresAccounts

BASE = "/ledger/v1"
ROLES = ("admin", "operator", "worker", "viewer")
PROBLEM_BASE = "https://taskledger.dev/problems/"


def basic(name: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{name}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


@pytest.fixture(scope="session")
def accounts(database_url: str) -> Iterator[PostgresAccounts]:
    store = PostgresAccounts(database_url)
    store.open()
    yield store
    store.close()


@pytest.fixture(scope="session")
def credentials(accounts: PostgresAccounts) -> dict[str, dict[str, str]]:
    """Authorization headers of one user per role (`api-admin`, `api-operator`, ...)."""
    headers = {}
    for role in ROLES:
        accounts.create_user(f"api-{role}", f"{role}-secret-pw", role)
        headers[role] = basic(f"api-{role}", f"{role}-secret-pw")
    return headers


SUITE_LIMITER = LoginLimiter(per_source=10**6, per_name=10**6)


@pytest.fixture(scope="session")
def app(ledger_app: TaskLedger, queries: PostgresTaskView, accounts: PostgresAccounts,
        projections_running: Any) -> falcon.App:
    # The whole suite is one client sending hundreds of deliberate bad credentials: the limiter's bounds
    # are raised here and tested with their defaults in test_login_limits.py.
    return create_app(ledger_app, queries, accounts, min_position_wait=5.0, limiter=SUITE_LIMITER)


class Api:
    """A test client that speaks as a role, prefixes the base path and reads its own writes."""

    def __init__(self, client: testing.TestClient, credentials: dict[str, dict[str, str]]) -> None:
        self.client = client
        self.credentials = credentials
        self.position = 0

    def request(self, method: str, path: str, *, role: str | None = "admin", headers: dict[str, str] | None = None,
                **kwargs: Any) -> testing.Result:
        sent = dict(self.credentials[role]) if role else {}
        if method == "GET" or path == "/claims" or path.startswith("/bulk/"):
            sent["Ledger-Min-Position"] = str(self.position)
        sent.update(headers or {})
        result = self.client.simulate_request(method, BASE + path, headers=sent, **kwargs)
        if "Ledger-Position" in result.headers:
            self.position = max(self.position, int(result.headers["Ledger-Position"]))
        return result

    def get(self, path: str, **kwargs: Any) -> testing.Result:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, body: Any = None, **kwargs: Any) -> testing.Result:
        return self.request("POST", path, json=body if body is not None else {}, **kwargs)

    def put(self, path: str, body: Any, **kwargs: Any) -> testing.Result:
        return self.request("PUT", path, json=body, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> testing.Result:
        return self.request("DELETE", path, **kwargs)

    def create(self, namespace: str, name: str = "job", **fields: Any) -> dict[str, Any]:
        result = self.post("/tasks", {"namespace": namespace, "name": name, **fields}, role="operator")
        assert result.status_code == 201, result.json
        task: dict[str, Any] = result.json
        return task

    def claim(self, namespace: str, worker: str = "worker-1") -> dict[str, Any]:
        result = self.post("/claims", {"worker": worker, "namespace": namespace}, role="worker")
        assert result.status_code == 200, result.text
        claimed: dict[str, Any] = result.json
        return claimed

    def running(self, namespace: str, **fields: Any) -> tuple[str, int]:
        """A task created and claimed: its id and lease epoch."""
        task_id = self.create(namespace, **fields)["id"]
        claimed = self.claim(namespace)
        assert claimed["task_id"] == task_id
        return task_id, claimed["lease_epoch"]


@pytest.fixture
def client(app: falcon.App) -> testing.TestClient:
    return testing.TestClient(app)


@pytest.fixture
def api(client: testing.TestClient, credentials: dict[str, dict[str, str]]) -> Api:
    return Api(client, credentials)


def assert_problem(result: testing.Result, status: int, code: str | None = None, field: str | None = None) -> None:
    """The answer is an RFC 9457 problem with this status (and code, and offending field)."""
    assert result.status_code == status, result.text
    assert result.headers["Content-Type"].startswith("application/problem+json")
    problem = result.json
    assert problem["status"] == status
    assert problem["type"].startswith(PROBLEM_BASE)
    assert problem["title"] and problem["detail"] and problem["instance"]
    assert "Traceback" not in result.text
    if code is not None:
        assert problem["type"] == PROBLEM_BASE + code, problem
    if field is not None:
        assert field in [e["field"] for e in problem.get("errors", [])], problem


@pytest.fixture
def ended(ledger_app: TaskLedger) -> Iterator[list[str]]:
    """Recurring tasks (ids) aborted after the test, so no later test's scheduler or watchdog finds them active."""
    tasks: list[str] = []
    yield tasks
    for task in tasks:
        try:
            ledger_app.abort_task(c.AbortTask(UUID(task), "test over"), c.Caller("api-operator", "req-test-cleanup"))
        except LedgerError:
            pass  # already ended
