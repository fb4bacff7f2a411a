"""`taskledger.client.Ledger` against the real service: every kind of endpoint, typed errors, retry rules."""

from __future__ import annotations

import subprocess
import sys
import uuid
from typing import Any

import pytest
import requests

from taskledger.client import (
    ConnectionFailedError,
    ForbiddenError,
    Heartbeat,
    IllegalTransitionError,
    InvalidRequestError,
    Ledger,
    NotFoundError,
    StaleLeaseError,
    TaskDroppedError,
    UnauthorizedError,
    VersionMismatchError,
)
from tests.client.conftest import Service

pytestmark = pytest.mark.e2e


def _namespace() -> str:
    return f"client-{uuid.uuid4().hex[:8]}"


def _count_requests(ledger: Ledger) -> list[str]:
    """Every request the ledger's session sends, as `METHOD path` (retries included)."""
    sent: list[str] = []

    def hook(response: requests.Response, *args: Any, **kwargs: Any) -> None:
        sent.append(f"{response.request.method} {response.request.path_url}")

    ledger.http.session.hooks["response"].append(hook)
    return sent


def test_importing_the_client_imports_no_server_package() -> None:
    code = ("import sys, taskledger.client; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "{'falcon', 'psycopg', 'psycopg_pool', 'eventsourcing', 'gunicorn', 'marshmallow', 'ledger', 'api', "
            "'projections', 'eventstore'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "[]"


def test_create_read_list_update_and_read_your_writes(service: Service) -> None:
    ns = _namespace()
    with service.ledger() as ledger:
        made = [ledger.create(ns, f"job-{i}", labels={"team": "data", "env": "prod" if i % 2 else "dev"},
                              steps=["extract", "load"]) for i in range(7)]
        # No Ledger-Min-Position by hand: the client sends its last write's position, so the list sees all.
        page = ledger.list(namespace=ns, label={"team": "data", "env": "prod"}, sort="name")
        assert [t["name"] for t in page.items] == ["job-1", "job-3", "job-5"]
        assert (page.total, page.total_is_estimate) == (3, False)
        assert [t["id"] for t in ledger.iter_tasks(namespace=ns, page_size=2, sort="created_at")] == \
            [t["id"] for t in made]
        assert ledger.list(namespace=ns, name_contains="OB-6").items[0]["id"] == made[6]["id"]
        task = made[0]
        updated = ledger.update(task["id"], if_match=task["version"], name="renamed")
        assert (updated["name"], updated["version"]) == ("renamed", task["version"] + 1)
        with pytest.raises(VersionMismatchError) as stale:
            ledger.update(task["id"], if_match=task["version"], name="again")
        assert stale.value.status == 412 and stale.value.code == "version-mismatch"
        assert ledger.get(task["id"])["name"] == "renamed"
        assert ledger.get(task["id"], as_of=1)["name"] == "job-0"


def test_a_create_retried_with_its_idempotency_key_answers_the_first_task(service: Service) -> None:
    ns = _namespace()
    with service.ledger() as ledger:
        first = ledger.create(ns, "once", idempotency_key="k-1")
        again = ledger.create(ns, "once", idempotency_key="k-1")
        assert again["id"] == first["id"]
        assert ledger.list(namespace=ns).total == 1


def test_refusals_are_typed_and_name_the_field(service: Service) -> None:
    ns = _namespace()
    with service.ledger() as ledger:
        with pytest.raises(InvalidRequestError) as bad:
            ledger.create(ns, "x", heartbeat_timeout=-1)
        assert bad.value.status == 422
        assert [e.field for e in bad.value.errors] == ["heartbeat_timeout"]
        assert "heartbeat_timeout" in str(bad.value)
        with pytest.raises(NotFoundError):
            ledger.get(str(uuid.uuid4()))
        task = ledger.create(ns, "y")
        with pytest.raises(IllegalTransitionError) as refused:
            ledger.resume(task["id"])
        assert refused.value.code == "illegal-transition" and refused.value.status == 409
        ledger.drop(task["id"], force=True)
        with pytest.raises(TaskDroppedError):
            ledger.get(task["id"])
        assert [e["type"] for e in ledger.iter_events(task["id"])] == ["Created", "Dropped"]
    with Ledger(service.url, ("admin", "wrong password")) as wrong, pytest.raises(UnauthorizedError):
        wrong.list(limit=1)
    with service.ledger("worker") as worker, pytest.raises(ForbiddenError):
        worker.create(ns, "not a worker's job")


def test_a_stale_lease_is_refused_once_and_never_retried(service: Service) -> None:
    ns = _namespace()
    with service.ledger() as admin, service.ledger("worker") as worker:
        task = admin.create(ns, "fenced")
        claimed = worker.claim("w-a", namespace=ns)
        assert claimed is not None and claimed.task["id"] == task["id"]
        sent = _count_requests(worker)
        with pytest.raises(StaleLeaseError) as stale:
            worker.complete(task["id"], (claimed.receipt.lease_epoch or 0) + 1, {"x": 1})
        assert stale.value.code == "stale-lease"
        assert len(sent) == 1, sent
        receipt = worker.complete(task["id"], claimed.receipt.lease_epoch or 0, {"x": 1})
        admin.observe(receipt.position)  # another client's write: the admin's reads wait for it
        assert admin.get(task["id"])["state"] == "SUCCEEDED"
        assert receipt.version == admin.get(task["id"])["version"]


def test_claims_heartbeats_progress_steps_output_and_runs(service: Service) -> None:
    ns = _namespace()
    with service.ledger() as admin, service.ledger("worker") as worker:
        task = admin.create(ns, "work", steps=["one"], heartbeat_timeout=30)
        assert worker.claim("w-b", namespace=f"{ns}-none") is None
        claimed = worker.claim("w-b", namespace=ns)
        assert claimed is not None
        epoch = claimed.receipt.lease_epoch or 0
        assert worker.heartbeat(task["id"], epoch, progress=10).directive == "continue"
        worker.progress(task["id"], epoch, 50, "half")
        worker.step(task["id"], 0, epoch, status="SUCCEEDED", output="done\n")
        assert worker.output(task["id"], "stdout", epoch, "hello\n").sequence == 0
        admin.observe(worker.position)
        admin.pause(task["id"], "maintenance")
        [result] = worker.heartbeats([Heartbeat(task["id"], epoch)])
        assert (result.status, result.directive) == (200, "pause")
        seen = admin.get(task["id"])
        assert (seen["state"], seen["progress"], seen["steps"][0]["status"]) == ("PAUSED", 50.0, "SUCCEEDED")
        runs = admin.runs(task["id"])
        assert [r["outcome"] for r in runs["runs"]] == ["paused"]
        feed = admin.feed(after=0, limit=5)
        assert feed["events"] and feed["next_after"] >= 1


def test_an_unreachable_service_is_a_connection_error_after_bounded_retries() -> None:
    with Ledger("http://127.0.0.1:9", ("admin", "x"), retries=2, retry_deadline=5) as ledger:
        with pytest.raises(ConnectionFailedError) as failed:
            ledger.list(limit=1)
    assert "is the service running" in str(failed.value)


def test_from_env_needs_credentials(monkeypatch: pytest.MonkeyPatch, service: Service) -> None:
    for name in ("TASKLEDGER_TOKEN", "TASKLEDGER_USER", "TASKLEDGER_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(Exception, match="TASKLEDGER_TOKEN"):
        Ledger.from_env(service.url)
    with service.ledger() as admin:
        token = admin.create_token(label="tests")
    monkeypatch.setenv("TASKLEDGER_TOKEN", token["token"])
    with Ledger.from_env(service.url) as ledger:
        assert ledger.list(limit=1).total >= 0
