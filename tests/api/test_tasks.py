"""Creating, reading, updating and dropping tasks through /ledger/v1/tasks."""

from __future__ import annotations

from uuid import uuid4

from ledger.application import TaskLedger
from ledger.state import MAX_JSON_DEPTH
from tests.api.conftest import Api, assert_problem


def test_a_created_task_gets_the_documented_defaults(api: Api, namespace: str) -> None:
    task = api.create(namespace)
    assert {k: task[k] for k in ("type", "input", "labels", "steps", "max_retries", "heartbeat_timeout",
                                 "schedule", "facade", "retries", "lease_epoch", "dropped")} == {
        "type": "generic", "input": None, "labels": {}, "steps": [], "max_retries": 0, "heartbeat_timeout": 60.0,
        "schedule": None, "facade": "native", "retries": 0, "lease_epoch": 0, "dropped": False}


def test_retrying_a_create_with_the_same_idempotency_key_returns_the_first_answer_and_records_nothing(
        api: Api, namespace: str, ledger_app: TaskLedger) -> None:
    body = {"namespace": namespace, "name": "export", "input": {"day": "2024-05-01"}}
    key = {"Idempotency-Key": f"export-{uuid4()}"}
    first = api.post("/tasks", body, role="operator", headers=key)
    api.claim(namespace)  # the task moves on; a replay still answers the task as first created
    head = ledger_app.head_position()
    replay = api.post("/tasks", body, role="operator", headers=key)
    assert replay.status_code == 201
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.json == first.json and replay.headers["Location"] == first.headers["Location"]
    assert replay.headers["ETag"] == '"1"'
    assert ledger_app.head_position() == head
    assert "Idempotent-Replayed" not in first.headers


def test_reusing_an_idempotency_key_with_another_body_is_refused(api: Api, namespace: str,
                                                                 ledger_app: TaskLedger) -> None:
    key = {"Idempotency-Key": f"k-{uuid4()}"}
    api.post("/tasks", {"namespace": namespace, "name": "one"}, role="operator", headers=key)
    head = ledger_app.head_position()
    other = api.post("/tasks", {"namespace": namespace, "name": "two"}, role="operator", headers=key)
    assert_problem(other, 422, "idempotency-key-reused")
    assert ledger_app.head_position() == head


def test_an_idempotency_key_belongs_to_the_user_who_sent_it(api: Api, namespace: str) -> None:
    key = {"Idempotency-Key": f"shared-{uuid4()}"}
    body = {"namespace": namespace, "name": "same"}
    mine = api.post("/tasks", body, role="operator", headers=key)
    theirs = api.post("/tasks", body, role="admin", headers=key)
    assert theirs.status_code == 201 and theirs.json["id"] != mine.json["id"]


def test_a_second_task_with_the_same_external_id_in_a_namespace_is_a_conflict(api: Api, namespace: str) -> None:
    api.create(namespace, external_id="job-42")
    assert_problem(api.post("/tasks", {"namespace": namespace, "name": "x", "external_id": "job-42"},
                            role="operator"), 409, "duplicate-task")
    assert api.post("/tasks", {"namespace": namespace + "-b", "name": "x", "external_id": "job-42"},
                    role="operator").status_code == 201


def test_an_update_with_the_current_etag_applies_and_a_stale_one_is_refused_with_412(
        api: Api, namespace: str, ledger_app: TaskLedger) -> None:
    task = api.create(namespace, labels={"tier": "gold"})
    path = f"/tasks/{task['id']}"
    etag = api.get(path).headers["ETag"]
    updated = api.put(path, {"labels": {"tier": "silver"}, "max_retries": 3}, role="operator",
                      headers={"If-Match": etag})
    assert updated.status_code == 200 and updated.headers["ETag"] == '"2"'
    assert (updated.json["labels"], updated.json["max_retries"], updated.json["name"]) == ({"tier": "silver"}, 3, "job")
    head = ledger_app.head_position()
    stale = api.put(path, {"name": "renamed"}, role="operator", headers={"If-Match": etag})
    assert_problem(stale, 412, "version-mismatch")
    assert ledger_app.head_position() == head
    assert api.get(path).json["name"] == "job"


def test_an_update_without_if_match_applies_to_the_current_version(api: Api, namespace: str) -> None:
    task = api.create(namespace)
    updated = api.put(f"/tasks/{task['id']}", {"input": [1, 2], "schedule": {"cron": "0 0 * * * ?"}},
                      role="operator")
    assert updated.status_code == 200
    assert (updated.json["input"], updated.json["schedule"]) == (
        [1, 2], {"cron": "0 0 * * * ?", "timezone": "UTC", "catch_up": "missed", "overlap": "skip"})


def test_a_dropped_task_is_gone_from_current_views_but_its_history_still_answers(
        api: Api, namespace: str) -> None:
    task_id, epoch = api.running(namespace)
    path = f"/tasks/{task_id}"
    assert_problem(api.delete(path, role="operator"), 409, "illegal-transition")
    dropped = api.delete(path, role="operator", params={"force": "true"})
    assert dropped.status_code == 204 and dropped.headers["ETag"] == '"3"'
    assert_problem(api.get(path), 410, "task-dropped")
    assert api.get("/tasks", params={"namespace": namespace}).json["total"] == 0
    assert api.get(f"{path}/events").json["events"][-1]["type"] == "Dropped"
    assert api.get(path, params={"as_of": "2"}).json["state"] == "RUNNING"
    assert api.get(path, params={"as_of": "3"}).json["dropped"] is True
    assert len(api.get(f"{path}/runs").json["runs"]) == 1
    assert_problem(api.delete(path, role="operator", params={"force": "true"}), 410, "task-dropped")
    assert_problem(api.post(f"{path}/complete", {"lease_epoch": epoch}, role="worker"), 410, "task-dropped")


def test_a_terminal_task_drops_without_force(api: Api, namespace: str) -> None:
    task = api.create(namespace)
    api.post(f"/tasks/{task['id']}/cancel", role="operator")
    assert api.delete(f"/tasks/{task['id']}", role="operator").status_code == 204


def test_unknown_tasks_and_versions_answer_404(api: Api, namespace: str) -> None:
    assert_problem(api.get(f"/tasks/{uuid4()}"), 404, "task-not-found")
    assert_problem(api.get(f"/tasks/{uuid4()}", params={"as_of": "1"}), 404, "task-not-found")
    assert_problem(api.get(f"/tasks/{uuid4()}/events"), 404, "task-not-found")
    assert_problem(api.get(f"/tasks/{uuid4()}/runs"), 404, "task-not-found")
    assert_problem(api.post(f"/tasks/{uuid4()}/pause", role="operator"), 404, "task-not-found")
    task = api.create(namespace)
    assert_problem(api.get(f"/tasks/{task['id']}", params={"as_of": "9"}), 404, "version-not-found")
    assert_problem(api.get(f"/tasks/{task['id']}", params={"as_of": "2000-01-01T00:00:00Z"}), 404,
                   "task-not-found")


def test_as_of_accepts_an_offset_whose_plus_sign_was_not_escaped(api: Api, namespace: str) -> None:
    task = api.create(namespace)
    created = task["created_at"].replace("+00:00", " 00:00")
    answer = api.client.simulate_get(f"/ledger/v1/tasks/{task['id']}", query_string=f"as_of={created}",
                                      headers=api.credentials["viewer"])
    assert answer.status_code == 200 and answer.json["version"] == 1


def test_an_illegal_action_names_the_task_the_state_and_the_action(api: Api, namespace: str) -> None:
    task = api.create(namespace)
    refused = api.post(f"/tasks/{task['id']}/resume", role="operator")
    assert_problem(refused, 409, "illegal-transition")
    assert task["id"] in refused.json["detail"] and "QUEUED" in refused.json["detail"]
    assert "resume" in refused.json["detail"]


def test_a_write_with_a_stale_lease_is_refused(api: Api, namespace: str, ledger_app: TaskLedger) -> None:
    task_id, epoch = api.running(namespace, max_retries=1)
    api.post(f"/tasks/{task_id}/fail", {"lease_epoch": epoch, "error": "disk full"}, role="worker")
    assert api.get(f"/tasks/{task_id}").json["state"] == "QUEUED"
    head = ledger_app.head_position()
    late = api.post(f"/tasks/{task_id}/complete", {"lease_epoch": epoch}, role="worker")
    assert_problem(late, 409, "illegal-transition")
    relet = api.claim(namespace)
    late = api.post(f"/tasks/{task_id}/progress", {"lease_epoch": epoch, "progress": 5}, role="worker")
    assert_problem(late, 409, "stale-lease")
    assert ledger_app.head_position() == relet["position"] > head


def test_fail_without_retry_ends_the_task_failed_and_resume_requeues_it(api: Api, namespace: str) -> None:
    task_id, epoch = api.running(namespace, max_retries=5)
    api.post(f"/tasks/{task_id}/fail", {"lease_epoch": epoch, "error": "bad input", "retry": False}, role="worker")
    task = api.get(f"/tasks/{task_id}").json
    assert (task["state"], task["error"], task["retries"]) == ("FAILED", "bad input", 0)
    api.post(f"/tasks/{task_id}/resume", role="operator")
    assert api.get(f"/tasks/{task_id}").json["state"] == "QUEUED"


def test_cancelling_a_running_task_tells_its_worker_to_stop_through_the_heartbeat(api: Api, namespace: str) -> None:
    task_id, epoch = api.running(namespace)
    api.post(f"/tasks/{task_id}/cancel", {"reason": "not needed"}, role="operator")
    assert api.post(f"/tasks/{task_id}/heartbeat", {"lease_epoch": epoch}, role="worker").json["directive"] == "cancel"
    api.post(f"/tasks/{task_id}/abort", role="operator")
    assert api.post(f"/tasks/{task_id}/heartbeat", {"lease_epoch": epoch}, role="worker").json["directive"] == "stop"
    assert api.get(f"/tasks/{task_id}").json["state"] == "ABORTED"


def test_input_nested_up_to_the_limit_round_trips_through_the_store_and_the_view(api: Api, namespace: str) -> None:
    deep: object = "bottom"
    for _ in range(MAX_JSON_DEPTH - 2):  # the object under "input", then arrays: MAX_JSON_DEPTH levels
        deep = [deep]
    task = api.create(namespace, input={"deep": deep})
    assert api.get(f"/tasks/{task['id']}").json["input"] == {"deep": deep}
    assert_problem(api.post("/tasks", {"namespace": namespace, "name": "n", "input": {"deep": [deep]}},
                            role="operator"), 422, "invalid-value", "input")
