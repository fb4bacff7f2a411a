"""Helpers of the openLooKeng facade tests: a Presto-style client per role and native ledger calls.

Named like a test module so it stays within the facade's own files; it holds no tests itself.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from uuid import uuid4

import pytest
import requests

from ledger.application import TaskLedger, external_task_id
from projections.queries import PostgresTaskView
from tests.facades.conftest import USERS

DURATION = re.compile(r"^\d+\.\d{2}(ns|us|ms|s|m|h|d)$")
DATA_SIZE = re.compile(r"^\d+(\.\d{2})?(B|kB|MB|GB|TB|PB)$")
TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}[+-]\d{2}:\d{2}$")
TASK_INFO_KEYS = {"taskId", "version", "state", "self", "lastHeartbeat", "outputBuffers", "noMoreSplits",
                  "stats", "failures", "outputs"}
UPDATE: dict[str, Any] = {"session": {"queryId": "q", "user": "alice"}, "extraCredentials": {}, "fragment": None,
          "sources": [], "outputIds": {"type": "PARTITIONED", "version": 1, "noMoreBufferIds": True,
                                       "buffers": {"0": 0}}, "totalPartitions": 1}


def new_task_id() -> str:
    """A fresh dotted openLooKeng task id (`queryId.stage.partition`)."""
    return f"20140115_170528_{uuid4().int % 100000:05d}_{uuid4().hex[:5]}.1.0"


class Presto:
    """Talks to the facade as the coordinator would, as any test user."""

    def __init__(self, base: str, queries: PostgresTaskView) -> None:
        self.base, self.queries = base, queries

    def request(self, method: str, path: str, role: str | None = "admin", **kwargs: Any) -> requests.Response:
        auth = USERS[role] if role else None
        return requests.request(method, self.base + path, auth=auth, timeout=90, **kwargs)

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, body: Any = UPDATE, **kwargs: Any) -> requests.Response:
        return self.request("POST", path, json=body, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("DELETE", path, **kwargs)

    def create(self, tid: str | None = None, body: Any = UPDATE) -> dict[str, Any]:
        answer = self.post(f"/v1/task/{tid or new_task_id()}", body)
        assert answer.status_code == 200, answer.text
        info: dict[str, Any] = answer.json()
        return info

    # ---------------------------------------------------------------- native
    def native(self, method: str, path: str, body: Any = None, role: str = "admin") -> dict[str, Any]:
        """A native API call; waits until the projections show it, as the facade reads them."""
        answer = self.request(method, "/ledger/v1" + path, role=role, json=body)
        assert answer.status_code in (200, 201), answer.text
        self.queries.wait_for(int(answer.headers["Ledger-Position"]), 5)
        return answer.json() if answer.content else {}

    def running(self, tid: str | None = None) -> tuple[str, str, int]:
        """A facade-created task a worker has started: (task id, ledger id, lease epoch)."""
        tid = tid or self.create()["taskId"]
        uuid = str(external_task_id("openlookeng:default", tid))
        epoch = self.native("POST", f"/tasks/{uuid}/start", {"worker": "worker-1"}, role="worker")["lease_epoch"]
        return tid, uuid, epoch

    def append(self, uuid: str, epoch: int, data: str, buffer: str = "0", last: bool = False,
               positions: int = 0) -> None:
        self.native("POST", f"/tasks/{uuid}/outputs/{buffer}",
                    {"lease_epoch": epoch, "data": data, "last": last, "positions": positions}, role="worker")


@pytest.fixture
def presto(server: str, queries: PostgresTaskView) -> Presto:
    return Presto(server, queries)


@contextmanager
def no_event(ledger: TaskLedger) -> Iterator[None]:
    """Asserts the block appended nothing to the event log."""
    before = ledger.head_position()
    yield
    assert ledger.head_position() == before
