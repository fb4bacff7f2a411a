"""Helpers of the Kylin facade tests (no tests here): Kylin requests over HTTP, tasks driven to any state."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any
from uuid import UUID

import pytest
import requests

from ledger import state as st
from ledger.application import TaskLedger
from ledger.commands import (
    AbortTask,
    CancelTask,
    Caller,
    CompleteTask,
    CreateTask,
    FailTask,
    PauseTask,
    StartTask,
    Written,
)
from projections.queries import PostgresTaskView
from taskledger.config import eventsourcing_env
from tests.facades.conftest import USERS

V2_MEDIA = "application/vnd.apache.kylin-v2+json"
V2 = {"Accept": V2_MEDIA}
JOBS = "/kylin/api/jobs"
NATIVE = Caller("kylin-tests", "req-kylin-tests", "native")
ERROR_KEYS = {"code", "data", "msg", "stacktrace", "exception", "url"}


class KylinHttp:
    """Plain HTTP as Kylin clients send it: v2 (Accept header, envelope) or v1 (bare JSON)."""

    def __init__(self, base: str) -> None:
        self.base = base

    def request(self, method: str, path: str, *, v2: bool = True, role: str | None = "admin",
                **kwargs: Any) -> requests.Response:
        headers = dict(V2 if v2 else {})
        headers.update(kwargs.pop("headers", {}))
        kwargs.setdefault("auth", USERS[role] if role else None)
        return requests.request(method, self.base + path, headers=headers, timeout=30, **kwargs)

    def data(self, method: str, path: str, **kwargs: Any) -> Any:
        """The v2 envelope's data, after checking the envelope itself."""
        response = self.request(method, path, **kwargs)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["code"] == "000" and body["msg"] == "", body
        return body["data"]

    def jobs(self, role: str = "viewer", **params: Any) -> dict[str, Any]:
        """A v2 list, by a user who builds nothing (a submitter's builds naming no project are in all its lists)."""
        params.setdefault("timeFilter", 4)
        data: dict[str, Any] = self.data("GET", JOBS, params=params, role=role)
        return data


def assert_kylin_error(response: requests.Response, status: int, *fragments: str) -> dict[str, Any]:
    """The answer is Kylin's error body with this status, its message naming every fragment."""
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert set(body) == ERROR_KEYS, body
    assert body["code"] == "999" and body["data"] is None and body["stacktrace"] == ""
    assert body["msg"] == body["exception"] and isinstance(body["exception"], str)
    assert body["url"].startswith("http://127.0.0.1:")
    for fragment in fragments:
        assert fragment in body["exception"], body
    return body


class Tasks:
    """Creates tasks natively (the ledger itself) and drives them to any ledger state."""

    def __init__(self, ledger: TaskLedger, view: PostgresTaskView) -> None:
        self.ledger = ledger
        self.view = view

    def settle(self, written: Written) -> None:
        assert self.view.wait_for(written.position, 10)

    def create(self, project: str, name: str = "BUILD CUBE - c - FULL_BUILD", *, namespace: str | None = None,
               steps: tuple[str, ...] = ("Step one", "Step two"), **fields: Any) -> str:
        fields.setdefault("type", "BUILD")
        command = CreateTask(namespace=namespace or f"kylin:{project}", name=name, steps=steps, **fields)
        written = self.ledger.create_task(command, NATIVE)
        self.settle(written)
        return str(written.task_id)

    def start(self, task_id: str) -> int:
        written = self.ledger.start_task(StartTask(UUID(task_id), "worker-k"), NATIVE)
        self.settle(written)
        return written.lease_epoch or 0

    def in_state(self, project: str, state: str, **fields: Any) -> str:
        """A new task of the project, driven to a ledger state through the domain's own transitions."""
        task_id = self.create(project, f"job in {state}", **fields)
        self.drive(task_id, state)
        return task_id

    def drive(self, task_id: str, state: str) -> None:
        tid = UUID(task_id)
        if state in (st.RUNNING, st.CANCELLING, st.SUCCEEDED, st.FAILED):
            epoch = self.start(task_id)
        steps: dict[str, Callable[[], Written]] = {
            st.PAUSED: lambda: self.ledger.pause_task(PauseTask(tid), NATIVE),
            st.CANCELLING: lambda: self.ledger.cancel_task(CancelTask(tid), NATIVE),
            st.SUCCEEDED: lambda: self.ledger.complete_task(CompleteTask(tid, epoch), NATIVE),
            st.FAILED: lambda: self.ledger.fail_task(FailTask(tid, epoch, "boom", retry=False), NATIVE),
            st.CANCELLED: lambda: self.ledger.cancel_task(CancelTask(tid), NATIVE),
            st.ABORTED: lambda: self.ledger.abort_task(AbortTask(tid), NATIVE),
        }
        if state in steps:
            self.settle(steps[state]())
        assert self.ledger.task_as_of(tid).state == state

    def native(self, task_id: str) -> dict[str, Any]:
        doc = self.view.get(UUID(task_id))
        assert doc is not None
        return doc


@pytest.fixture
def project() -> str:
    """A Kylin project (namespace `kylin:<project>`) no other test uses."""
    return f"p_{uuid.uuid4().hex[:12]}"


@pytest.fixture
def kylin(server: str) -> KylinHttp:
    return KylinHttp(server)


@pytest.fixture
def tasks(ledger_app: TaskLedger, queries: PostgresTaskView, projections_running: Any) -> Tasks:
    return Tasks(ledger_app, queries)


@pytest.fixture
def ledger_at(database_url: str, queries: PostgresTaskView,
              projections_running: Any) -> Iterator[Callable[[datetime], Tasks]]:
    """Tasks written by a ledger whose clock says a given instant (to test time windows)."""
    now: list[datetime] = []
    ledger = TaskLedger(eventsourcing_env(database_url, pool_size=1), clock=lambda: now[-1])

    def at(instant: datetime) -> Tasks:
        now.append(instant)
        return Tasks(ledger, queries)

    yield at
    ledger.close()


def port_of(server: str) -> int:
    return int(server.rsplit(":", 1)[1])
