"""Helpers the Pandora facade tests share (this module holds no tests): a plain-HTTP client of the facade."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

import requests

from ledger.application import TaskLedger
from ledger.commands import Caller, RecordOccurrences
from tests.facades.conftest import USERS

BASE = "/api/v1/export"
NAMESPACE = "pandora:default"
CRONTAB = {"type": "crontab", "crontab": "*/5 * * * * ?"}
TASK_KEYS = {"id", "name", "description", "operations", "spl", "owner", "interval", "status", "count",
             "updateTime", "createTime", "lastRunTime"}


def unique(label: str = "t") -> str:
    """A name prefix no other test uses (every test shares the namespace pandora:default)."""
    return f"{label}-{uuid.uuid4().hex[:10]}-"


class Pandora:
    """The facade (and the native API) over real HTTP, as one user.

    Like a client mixing both APIs, it remembers the highest `Ledger-Position` it wrote and reads with
    `Ledger-Min-Position`, since a native write answers before the read models show it.
    """

    def __init__(self, server: str, role: str = "admin", written: list[int] | None = None) -> None:
        self.server = server
        self.auth = USERS[role]
        self.written = written if written is not None else [0]

    def as_role(self, role: str) -> Pandora:
        return Pandora(self.server, role, self.written)

    def saw(self, position: int) -> None:
        self.written[0] = max(self.written[0], position)

    def call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("auth", self.auth)
        kwargs["headers"] = {"Ledger-Min-Position": str(self.written[0]), **kwargs.get("headers", {})}
        resp = requests.request(method, self.server + path, timeout=30, **kwargs)
        if "Ledger-Position" in resp.headers:
            self.saw(int(resp.headers["Ledger-Position"]))
        return resp

    def create(self, body: Any) -> requests.Response:
        return self.call("POST", f"{BASE}/task", json=body)

    def create_task(self, name: str, interval: dict[str, Any] | None = None, spl: str = "* | head 10") -> str:
        resp = self.create({"name": name, "spl": spl, "interval": interval or CRONTAB})
        assert resp.status_code == 200, resp.text
        return str(resp.json()["id"])

    def update(self, task_id: str, body: Any) -> requests.Response:
        return self.call("PUT", f"{BASE}/task/{task_id}", json=body)

    def delete(self, task_id: str) -> requests.Response:
        return self.call("DELETE", f"{BASE}/task/{task_id}")

    def set_status(self, ids: list[str], status: str) -> requests.Response:
        return self.call("PUT", f"{BASE}/tasks/status", json={"tasks": ids, "status": status})

    def list_page(self, **params: Any) -> requests.Response:
        return self.call("GET", f"{BASE}/task/list", params=params)

    def history(self, task_id: str, **params: Any) -> requests.Response:
        return self.call("GET", f"{BASE}/task/{task_id}/history", params=params)

    def listed(self, prefix: str, **params: Any) -> list[dict[str, Any]]:
        resp = self.list_page(prefix=prefix, pageSize=1000, **params)
        assert resp.status_code == 200, resp.text
        return list(resp.json()["tasks"])

    def task(self, task_id: str, prefix: str) -> dict[str, Any]:
        [found] = [t for t in self.listed(prefix) if t["id"] == task_id]
        return found

    def native(self, task_id: str) -> requests.Response:
        return self.call("GET", f"/ledger/v1/tasks/{task_id}")


# Once a year, on 1 January at midnight UTC: a test decides exactly which occurrence is due.
YEARLY = {"type": "crontab", "crontab": "0 0 0 1 1 ?"}
SCHEDULER = Caller("test-scheduler", "test", "native")


def new_year(years_ahead: int) -> datetime:
    return datetime(datetime.now(timezone.utc).year + years_ahead, 1, 1, tzinfo=timezone.utc)


def millis(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


class Runs:
    """Runs of yearly export tasks: triggered as the scheduler would, worked on by a worker over the native API.

    Every task it creates is deleted afterwards, so no run of one test waits to be claimed by another.
    """

    def __init__(self, pandora: Pandora, ledger_app: TaskLedger) -> None:
        self.pandora, self.ledger_app = pandora, ledger_app
        self.worker = pandora.as_role("worker")
        self.created: list[str] = []

    def task(self, name: str) -> str:
        self.created.append(self.pandora.create_task(name, YEARLY))
        return self.created[-1]

    def trigger(self, task_id: str, years_ahead: int = 1) -> datetime:
        """Records the occurrence of 1 January `years_ahead` years from now, seen one second after it."""
        due = new_year(years_ahead)
        cmd = RecordOccurrences(uuid.UUID(task_id), due + timedelta(seconds=1), timedelta(hours=1))
        self.pandora.saw(self.ledger_app.record_occurrences(cmd, SCHEDULER).position)
        return due

    def claim(self, task_id: str) -> int:
        """A worker claims the namespace's waiting run (it must be this task's); the lease epoch."""
        body = {"worker": "exporter-1", "namespace": NAMESPACE, "type": "export"}
        resp = self.worker.call("POST", "/ledger/v1/claims", json=body)
        assert resp.status_code == 200, resp.text
        assert resp.json()["task_id"] == task_id
        return int(resp.json()["lease_epoch"])

    def end(self, task_id: str, epoch: int, action: str, **body: Any) -> None:
        resp = self.worker.call("POST", f"/ledger/v1/tasks/{task_id}/{action}", json={"lease_epoch": epoch, **body})
        assert resp.status_code == 200, resp.text

    def heartbeat(self, task_id: str, epoch: int) -> str:
        resp = self.worker.call("POST", f"/ledger/v1/tasks/{task_id}/heartbeat", json={"lease_epoch": epoch})
        assert resp.status_code == 200, resp.text
        return str(resp.json()["directive"])

    def clean_up(self) -> None:
        for task_id in self.created:
            self.pandora.delete(task_id)
