"""Support for the HugeGraph facade tests: one graph over real HTTP, and tasks put in any state natively.

(Only helpers and fixtures live here; the test modules import them.)
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import pytest
import requests

from ledger import commands as c
from ledger.application import TaskLedger
from projections.queries import PostgresTaskView
from tests.facades.conftest import USERS

NATIVE = c.Caller("hg-native-tester", "hg-test", "native")
ERROR_KEYS = {"exception", "message", "cause"}
LAYOUTS = ("graphspace", "legacy")


@dataclass
class Graph:
    """A HugeGraph graph served by the facade, in one URL layout (a graphspace, or the legacy `/graphs/{g}`)."""

    base: str
    name: str
    graphspace: str | None
    ledger: TaskLedger
    view: PostgresTaskView

    @property
    def namespace(self) -> str:
        return f"hugegraph:{self.graphspace or 'DEFAULT'}/{self.name}"

    @property
    def url(self) -> str:
        if self.graphspace is None:
            return f"{self.base}/graphs/{self.name}"
        return f"{self.base}/graphspaces/{self.graphspace}/graphs/{self.name}"

    def call(self, method: str, path: str = "/tasks", role: str | None = "admin", **kwargs: Any) -> requests.Response:
        auth = USERS[role] if role else None
        return requests.request(method, self.url + path, auth=auth, timeout=15, **kwargs)

    def tasks(self, **params: Any) -> list[dict[str, Any]]:
        answer = self.call("GET", params=params)
        assert answer.status_code == 200, answer.text
        listed: list[dict[str, Any]] = answer.json()["tasks"]
        return listed

    def create(self, name: str = "job", type: str = "generic", **fields: Any) -> int:
        """A task created natively in this graph's namespace; its HugeGraph id."""
        written = self.ledger.create_task(c.CreateTask(self.namespace, name, type, **fields), NATIVE)
        assert self.view.wait_for(written.position, 30), "projections lag"
        return int(self.ledger.task_as_of(written.task_id).external_ids["hugegraph"])

    def task_id(self, number: int) -> UUID:
        doc = self.view.find_external(self.namespace, str(number))
        assert doc is not None, number
        return UUID(doc["id"])

    def in_state(self, state: str, **fields: Any) -> int:
        """A native task driven into a ledger state (QUEUED, RUNNING, PAUSED, CANCELLING, SUCCEEDED, ...)."""
        number = self.create(**fields)
        task = self.task_id(number)
        for step in PATHS[state]:
            written = step(self.ledger, task)
            assert self.view.wait_for(written.position, 30), "projections lag"
        return number


Step = Callable[[TaskLedger, UUID], c.Written]


def _start(ledger: TaskLedger, task: UUID) -> c.Written:
    return ledger.start_task(c.StartTask(task, "hg-worker-1"), NATIVE)


def _complete(ledger: TaskLedger, task: UUID) -> c.Written:
    return ledger.complete_task(c.CompleteTask(task, 1, {"vertices": 42}), NATIVE)


def _fail(ledger: TaskLedger, task: UUID) -> c.Written:
    return ledger.fail_task(c.FailTask(task, 1, "java.lang.ArithmeticException: / by zero", retry=False), NATIVE)


def _pause(ledger: TaskLedger, task: UUID) -> c.Written:
    return ledger.pause_task(c.PauseTask(task), NATIVE)


def _cancel(ledger: TaskLedger, task: UUID) -> c.Written:
    return ledger.cancel_task(c.CancelTask(task), NATIVE)


def _abort(ledger: TaskLedger, task: UUID) -> c.Written:
    return ledger.abort_task(c.AbortTask(task), NATIVE)


PATHS: dict[str, list[Step]] = {
    "QUEUED": [], "RUNNING": [_start], "PAUSED": [_pause], "CANCELLING": [_start, _cancel],
    "SUCCEEDED": [_start, _complete], "FAILED": [_start, _fail], "CANCELLED": [_cancel], "ABORTED": [_abort],
}


def make_graph(server: str, ledger: TaskLedger, view: PostgresTaskView, name: str, layout: str) -> Graph:
    graphspace = f"space_{uuid.uuid4().hex[:6]}" if layout == "graphspace" else None
    return Graph(server, name, graphspace, ledger, view)


@pytest.fixture(params=LAYOUTS)
def graph(request: pytest.FixtureRequest, server: str, ledger_app: TaskLedger, queries: PostgresTaskView,
          namespace: str) -> Graph:
    """A graph no other test uses (named after the `namespace` fixture), once per URL layout."""
    return make_graph(server, ledger_app, queries, namespace, request.param)


@pytest.fixture
def space_graph(server: str, ledger_app: TaskLedger, queries: PostgresTaskView, namespace: str) -> Graph:
    """A graph no other test uses, in its own graphspace (for tests that need one layout only)."""
    return make_graph(server, ledger_app, queries, namespace, "graphspace")


def assert_error(answer: requests.Response, status: int, exception: str, message: str | None = None) -> None:
    """A HugeGraph error body: `{"exception": "class …", "message": …, "cause": ""}`."""
    assert answer.status_code == status, answer.text
    assert answer.headers["Content-Type"].startswith("application/json")
    body = answer.json()
    assert set(body) == ERROR_KEYS, body
    assert body["exception"] == f"class {exception}" and body["cause"] == ""
    if message is not None:
        assert body["message"] == message, body
    assert "Traceback" not in answer.text
