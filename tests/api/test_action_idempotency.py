"""POST /tasks/{id}/complete and /fail with an Idempotency-Key: a worker's retry gets the first receipt."""

from __future__ import annotations

from typing import Any
from uuid import uuid4

from falcon import testing

from ledger.application import TaskLedger
from tests.api.conftest import Api, assert_problem


def _key() -> dict[str, str]:
    return {"Idempotency-Key": f"done-{uuid4()}"}


def _events(api: Api, task_id: str) -> list[dict[str, Any]]:
    result = api.get(f"/tasks/{task_id}/events", role="viewer")
    assert result.status_code == 200, result.text
    events: list[dict[str, Any]] = result.json["events"]
    return events


def test_a_retried_complete_answers_the_first_receipt_and_records_nothing(
        api: Api, namespace: str, ledger_app: TaskLedger) -> None:
    task_id, epoch = api.running(namespace)
    key = _key()
    body = {"lease_epoch": epoch, "result": {"rows": 3}}
    first = api.post(f"/tasks/{task_id}/complete", body, role="worker", headers=key)
    assert first.status_code == 200, first.text
    head = ledger_app.head_position()

    again = api.post(f"/tasks/{task_id}/complete", body, role="worker", headers=key)

    assert again.status_code == 200, again.text
    assert again.json == first.json and set(first.json) == {"task_id", "version", "position", "lease_epoch"}
    assert again.json["lease_epoch"] == epoch
    assert (again.headers["ETag"], again.headers["Ledger-Position"]) == (
        first.headers["ETag"], first.headers["Ledger-Position"])
    assert again.headers["Idempotent-Replayed"] == "true" and "Idempotent-Replayed" not in first.headers
    assert ledger_app.head_position() == head
    timeline = _events(api, task_id)
    assert [e["type"] for e in timeline].count("Completed") == 1
    assert timeline[-1]["data"] == {"lease_epoch": epoch, "result": {"rows": 3},
                                    "idempotency_key": key["Idempotency-Key"]}


def test_a_retried_fail_after_the_requeued_task_was_claimed_again_answers_the_first_receipt(
        api: Api, namespace: str, ledger_app: TaskLedger) -> None:
    task_id, epoch = api.running(namespace, max_retries=1)
    key = _key()
    body = {"lease_epoch": epoch, "error": "disk full", "retry": True}
    first = api.post(f"/tasks/{task_id}/fail", body, role="worker", headers=key)
    assert first.status_code == 200, first.text
    reclaimed = api.claim(namespace, worker="worker-2")
    assert reclaimed["task_id"] == task_id and reclaimed["lease_epoch"] == epoch + 1
    head = ledger_app.head_position()

    again = api.post(f"/tasks/{task_id}/fail", body, role="worker", headers=key)

    assert again.status_code == 200, again.text
    assert again.json == first.json and again.headers["Idempotent-Replayed"] == "true"
    assert ledger_app.head_position() == head
    task = api.get(f"/tasks/{task_id}").json
    assert (task["state"], task["worker"], task["lease_epoch"]) == ("RUNNING", "worker-2", epoch + 1)
    assert_problem(api.post(f"/tasks/{task_id}/fail", body, role="worker"), 409, "stale-lease")


def test_the_same_key_with_another_body_is_refused_with_422_and_records_nothing(
        api: Api, namespace: str, ledger_app: TaskLedger) -> None:
    task_id, epoch = api.running(namespace)
    key = _key()
    api.post(f"/tasks/{task_id}/complete", {"lease_epoch": epoch, "result": "a"}, role="worker", headers=key)
    head = ledger_app.head_position()

    other = api.post(f"/tasks/{task_id}/complete", {"lease_epoch": epoch, "result": "b"}, role="worker", headers=key)
    fail = api.post(f"/tasks/{task_id}/fail", {"lease_epoch": epoch, "error": "x"}, role="worker", headers=key)

    assert_problem(other, 422, "idempotency-key-reused")
    assert_problem(fail, 422, "idempotency-key-reused")
    assert ledger_app.head_position() == head
    assert "Idempotent-Replayed" not in other.headers


def test_another_user_with_the_same_key_gets_its_own_refusal(api: Api, namespace: str) -> None:
    task_id, epoch = api.running(namespace)
    key = _key()
    body = {"lease_epoch": epoch, "result": None}
    assert api.post(f"/tasks/{task_id}/complete", body, role="worker", headers=key).status_code == 200

    theirs = api.post(f"/tasks/{task_id}/complete", body, role="admin", headers=key)

    assert_problem(theirs, 409, "illegal-transition")
    assert "Idempotent-Replayed" not in theirs.headers


def test_without_a_key_a_retried_complete_is_refused_as_before(api: Api, namespace: str) -> None:
    task_id, epoch = api.running(namespace)
    body = {"lease_epoch": epoch}
    assert api.post(f"/tasks/{task_id}/complete", body, role="worker").status_code == 200

    assert_problem(api.post(f"/tasks/{task_id}/complete", body, role="worker"), 409, "illegal-transition")
    # A key only on the retry finds nothing the first attempt recorded.
    assert_problem(api.post(f"/tasks/{task_id}/complete", body, role="worker", headers=_key()), 409,
                   "illegal-transition")


def test_a_malformed_key_is_a_400_naming_the_header(api: Api, namespace: str) -> None:
    task_id, epoch = api.running(namespace)
    for action, body in (("complete", {"lease_epoch": epoch}), ("fail", {"lease_epoch": epoch, "error": "x"})):
        result = api.post(f"/tasks/{task_id}/{action}", body, role="worker", headers={"Idempotency-Key": "k" * 256})
        assert_problem(result, 400, field="Idempotency-Key")
    assert api.get(f"/tasks/{task_id}").json["state"] == "RUNNING"


def test_the_openapi_document_lists_the_key_on_create_complete_and_fail_only(client: testing.TestClient) -> None:
    doc = client.simulate_get("/ledger/v1/openapi.json").json
    operations = {op["operationId"]: op for path in doc["paths"].values() for op in path.values()
                  if isinstance(op, dict) and "operationId" in op}

    keyed = {name for name, op in operations.items()
             if any(p.get("name") == "Idempotency-Key" for p in op["parameters"])}

    assert keyed == {"createTask", "completeTask", "failTask"}
    for name in keyed:
        (header,) = [p for p in operations[name]["parameters"] if p.get("name") == "Idempotency-Key"]
        assert header["in"] == "header" and not header["required"]
        assert "complete or fail" in header["description"] and "create" in header["description"]
        success = operations[name]["responses"]["201" if name == "createTask" else "200"]
        assert "Idempotent-Replayed" in success["headers"]


def test_a_fail_on_a_cancelling_task_confirms_the_cancel_and_its_retry_is_replayed(
        api: Api, namespace: str, ledger_app: TaskLedger) -> None:
    task_id, epoch = api.running(namespace, max_retries=3)
    assert api.post(f"/tasks/{task_id}/cancel", {"reason": "bad deploy"}, role="operator").status_code == 200
    key = _key()
    body = {"lease_epoch": epoch, "error": "stopped on cancel", "retry": True}
    assert_problem(api.post(f"/tasks/{task_id}/complete", {"lease_epoch": epoch}, role="worker"), 409,
                   "illegal-transition")  # the operator asked to stop: no result is recorded

    first = api.post(f"/tasks/{task_id}/fail", body, role="worker", headers=key)
    assert first.status_code == 200, first.text
    head = ledger_app.head_position()
    again = api.post(f"/tasks/{task_id}/fail", body, role="worker", headers=key)

    assert again.status_code == 200 and again.json == first.json and again.headers["Idempotent-Replayed"] == "true"
    assert ledger_app.head_position() == head
    task = api.get(f"/tasks/{task_id}").json
    assert (task["state"], task["retries"], task["worker"]) == ("CANCELLED", 0, None)  # not requeued
    timeline = _events(api, task_id)
    started = next(e for e in timeline if e["type"] == "Started")
    last = timeline[-1]
    assert (last["type"], last["actor"], last["data"]["reason"], last["data"]["lease_epoch"]) == (
        "Cancelled", started["actor"], "stopped on cancel", epoch)  # recorded by the lease's worker
    stale = {"lease_epoch": epoch + 1, "error": "x"}
    assert_problem(api.post(f"/tasks/{task_id}/fail", stale, role="worker"), 409, "stale-lease")
