"""Workers: claiming tasks (also concurrently) and heartbeats in bulk."""

from __future__ import annotations

import threading
from collections import Counter
from uuid import uuid4

from ledger.application import TaskLedger
from tests.api.conftest import Api, assert_problem


def test_concurrent_claimers_never_share_a_task_and_every_task_is_handed_out_once(
        api: Api, namespace: str, ledger_app: TaskLedger) -> None:
    tasks = {api.create(namespace, name=f"t{i}")["id"] for i in range(20)}
    handed: list[tuple[str, str]] = []
    lock = threading.Lock()

    def claimer(worker: str) -> None:
        while True:
            answer = api.post("/claims", {"worker": worker, "namespace": namespace}, role="worker")
            if answer.status_code == 204:
                return
            assert answer.status_code == 200, answer.text
            with lock:
                handed.append((answer.json["task_id"], worker))

    threads = [threading.Thread(target=claimer, args=(f"w{n}",)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    counts = Counter(task_id for task_id, _ in handed)
    assert set(counts) == tasks and set(counts.values()) == {1}
    for task_id, worker in handed:
        state = ledger_app.task_as_of(task_id)  # type: ignore[arg-type]
        assert (state.state, state.worker, state.lease_epoch, state.version) == ("RUNNING", worker, 1, 2)


def test_a_claim_hands_out_the_oldest_matching_task_and_204_when_none_is_left(api: Api, namespace: str) -> None:
    api.create(namespace, name="export", type="pandora")
    cube = api.create(namespace, name="cube", type="kylin")["id"]
    claimed = api.post("/claims", {"worker": "k1", "namespace": namespace, "type": "kylin"}, role="worker")
    assert claimed.status_code == 200 and claimed.json["task_id"] == cube
    assert claimed.headers["ETag"] == '"2"' and claimed.json["task"]["worker"] == "k1"
    none = api.post("/claims", {"worker": "k1", "namespace": namespace, "type": "kylin"}, role="worker")
    assert none.status_code == 204 and none.text == ""


def test_a_claim_sees_a_task_created_just_before_when_it_sends_the_position(api: Api, namespace: str) -> None:
    created = api.post("/tasks", {"namespace": namespace, "name": "fresh"}, role="operator")
    claimed = api.client.simulate_post(
        "/ledger/v1/claims", json={"worker": "w", "namespace": namespace},
        headers={**api.credentials["worker"], "Ledger-Min-Position": created.headers["Ledger-Position"]})
    assert claimed.status_code == 200 and claimed.json["task_id"] == created.json["id"]


def test_a_claim_right_after_a_create_finds_the_task_even_without_the_position(api: Api, namespace: str) -> None:
    created = api.post("/tasks", {"namespace": namespace, "name": "fresh"}, role="operator")
    claimed = api.client.simulate_post("/ledger/v1/claims", json={"worker": "w", "namespace": namespace},
                                       headers=api.credentials["worker"])
    assert claimed.status_code == 200 and claimed.json["task_id"] == created.json["id"]


def test_a_batch_of_heartbeats_answers_each_task_on_its_own(api: Api, namespace: str,
                                                            ledger_app: TaskLedger) -> None:
    alive, epoch = api.running(namespace, name="alive")
    paused, paused_epoch = api.running(namespace, name="paused")
    api.post(f"/tasks/{paused}/pause", role="operator")
    missing = str(uuid4())
    answer = api.post("/heartbeats", {"heartbeats": [
        {"task_id": alive, "lease_epoch": epoch, "progress": 50, "stats": {"rows": 10}},
        {"task_id": alive, "lease_epoch": epoch + 7},
        {"task_id": paused, "lease_epoch": paused_epoch},
        {"task_id": missing, "lease_epoch": 1},
    ]}, role="worker")
    assert answer.status_code == 200
    results = answer.json["results"]
    assert answer.headers["Ledger-Position"] == str(max(r["position"] for r in results if r["status"] == 200))
    assert [(r["task_id"], r["status"]) for r in results] == [
        (alive, 200), (alive, 409), (paused, 200), (missing, 404)]
    assert results[0]["directive"] == "continue" and results[2]["directive"] == "pause"
    assert results[1]["problem"]["type"].endswith("/stale-lease")
    assert results[3]["problem"]["status"] == 404 and "directive" not in results[3]
    task = api.get(f"/tasks/{alive}").json
    assert (task["progress"], task["stats"], task["version"]) == (50, {"rows": 10}, 3)


def test_a_malformed_item_refuses_the_whole_batch_before_anything_is_recorded(
        api: Api, namespace: str, ledger_app: TaskLedger) -> None:
    task_id, epoch = api.running(namespace)
    head = ledger_app.head_position()
    answer = api.post("/heartbeats", {"heartbeats": [{"task_id": task_id, "lease_epoch": epoch},
                                                     {"task_id": task_id, "lease_epoch": "one"},
                                                     {"task_id": task_id, "lease_epoch": epoch, "progress": 101}]},
                      role="worker")
    assert_problem(answer, 422, "invalid-request", "heartbeats.1.lease_epoch")
    assert_problem(answer, 422, "invalid-request", "heartbeats.2.progress")
    assert ledger_app.head_position() == head
