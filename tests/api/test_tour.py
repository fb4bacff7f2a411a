"""The README tour through the native API: a task's whole life, then reading it back."""

from __future__ import annotations

from tests.api.conftest import Api


def test_a_task_is_created_claimed_paused_resumed_reclaimed_completed_and_audited(api: Api, namespace: str) -> None:
    created = api.post("/tasks", {"namespace": namespace, "name": "nightly cube build", "type": "kylin.build",
                                  "input": {"cube": "sales"}, "labels": {"team": "bi"}, "steps": ["extract", "build"],
                                  "max_retries": 2, "heartbeat_timeout": 30}, role="operator")
    assert created.status_code == 201
    task = created.json
    assert created.headers["Location"] == f"/ledger/v1/tasks/{task['id']}"
    assert created.headers["ETag"] == '"1"'
    assert int(created.headers["Ledger-Position"]) > 0
    assert (task["state"], task["version"], task["submitter"]) == ("QUEUED", 1, "api-operator")

    claimed = api.claim(namespace, worker="cube-worker-7")
    assert (claimed["task_id"], claimed["lease_epoch"]) == (task["id"], 1)
    assert claimed["task"]["state"] == "RUNNING" and claimed["task"]["worker"] == "cube-worker-7"
    path = f"/tasks/{task['id']}"

    beat = api.post(f"{path}/heartbeat", {"lease_epoch": 1, "progress": 40, "message": "extracting"}, role="worker")
    assert beat.status_code == 200
    assert beat.json["directive"] == "continue" and beat.json["lease_epoch"] == 1

    assert api.post(f"{path}/pause", {"reason": "maintenance window"}, role="operator").status_code == 200
    told = api.post(f"{path}/heartbeat", {"lease_epoch": 1}, role="worker")
    assert told.json["directive"] == "pause"
    assert api.get(path).json["state"] == "PAUSED"

    assert api.post(f"{path}/resume", role="operator").status_code == 200
    again = api.claim(namespace, worker="cube-worker-8")
    assert (again["task_id"], again["lease_epoch"]) == (task["id"], 2)

    done = api.post(f"{path}/complete", {"lease_epoch": 2, "result": {"rows": 1234}}, role="worker")
    assert done.status_code == 200
    final = api.get(path)
    assert final.headers["ETag"] == f'"{done.json["version"]}"'
    assert (final.json["state"], final.json["result"], final.json["progress"]) == ("SUCCEEDED", {"rows": 1234}, 100)

    listed = api.get("/tasks", params={"namespace": namespace, "state": "SUCCEEDED"}).json
    assert [t["id"] for t in listed["items"]] == [task["id"]] and listed["total"] == 1

    timeline = api.get(f"{path}/events").json["events"]
    assert [e["type"] for e in timeline] == ["Created", "Started", "HeartbeatRecorded", "Paused", "Resumed",
                                             "Started", "Completed"]
    assert [e["actor"] for e in timeline][:2] == ["api-operator", "api-worker"]
    assert all(e["facade"] == "native" for e in timeline)
    assert [e["prev_hash"] for e in timeline[1:]] == [e["hash"] for e in timeline[:-1]]

    runs = api.get(f"{path}/runs").json["runs"]
    assert [(r["attempt"], r["worker"], r["outcome"]) for r in runs] == [
        (1, "cube-worker-7", "paused"), (2, "cube-worker-8", "succeeded")]

    at_v3 = api.get(path, params={"as_of": "3"})
    assert (at_v3.json["state"], at_v3.json["progress"], at_v3.headers["ETag"]) == ("RUNNING", 40, '"3"')
    paused_at = timeline[3]["time"]
    assert api.get(path, params={"as_of": paused_at}).json["state"] == "PAUSED"
    assert api.get(path, params={"as_of": timeline[2]["time"]}).json["version"] == 3


def test_the_global_feed_lists_every_event_after_a_position_in_log_order(api: Api, namespace: str) -> None:
    after = 0
    while True:  # to the log's head, however much the session wrote before
        start = api.get("/events", params={"after": after, "limit": 1000}).json
        if not start["events"]:
            break
        after = start["next_after"]
    first = api.create(namespace, name="a")
    second = api.create(namespace, name="b")
    feed = api.get("/events", params={"after": after}).json
    mine = [(e["task_id"], e["type"]) for e in feed["events"]]
    assert mine == [(first["id"], "Created"), (second["id"], "Created")]
    positions = [e["position"] for e in feed["events"]]
    assert positions == sorted(positions) and feed["next_after"] == positions[-1]
    assert api.get("/events", params={"after": feed["next_after"]}).json == {
        "events": [], "next_after": feed["next_after"]}


def test_a_task_timeline_pages_by_version(api: Api, namespace: str) -> None:
    task_id, epoch = api.running(namespace)
    for progress in (10, 20, 30):
        api.post(f"/tasks/{task_id}/progress", {"lease_epoch": epoch, "progress": progress}, role="worker")
    page = api.get(f"/tasks/{task_id}/events", params={"limit": 2}).json
    assert [e["version"] for e in page["events"]] == [1, 2] and page["next_after_version"] == 2
    rest = api.get(f"/tasks/{task_id}/events", params={"after_version": 2}).json
    assert [e["version"] for e in rest["events"]] == [3, 4, 5]
    assert [e["data"]["progress"] for e in rest["events"]] == [10, 20, 30]


def test_steps_and_output_pages_are_recorded_under_the_lease(api: Api, namespace: str) -> None:
    task_id, epoch = api.running(namespace, steps=["plan", "run"])
    step = api.post(f"/tasks/{task_id}/steps/1", {"lease_epoch": epoch, "status": "RUNNING", "output": "go"},
                    role="worker")
    assert step.status_code == 200 and step.json["lease_epoch"] == epoch
    pages = [api.post(f"/tasks/{task_id}/outputs/results", {"lease_epoch": epoch, "data": d, "positions": 2},
                      role="worker") for d in ("ab", "cd")]
    assert [p.json["sequence"] for p in pages] == [0, 1]
    task = api.get(f"/tasks/{task_id}").json
    assert task["steps"][1] == {"name": "run", "status": "RUNNING", "output": "go"}
    assert task["buffers"]["results"]["pages"] == 2 and task["buffers"]["results"]["positions"] == 4
    closed = api.delete(f"/tasks/{task_id}/outputs/results", role="operator")
    assert closed.status_code == 200
    assert api.get(f"/tasks/{task_id}").json["buffers"]["results"]["closed"] is True
