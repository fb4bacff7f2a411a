"""openLooKeng `/v1/task`: TaskInfo in the documented shape, create/update, listing, states, ends."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from uuid import uuid4

import requests

from ledger.application import TaskLedger, external_task_id
from tests.facades.openlookeng_support import (
    DATA_SIZE,
    DURATION,
    TASK_INFO_KEYS,
    TIMESTAMP,
    UPDATE,
    Presto,
    new_task_id,
    no_event,
    presto,
)

__all__ = ["presto"]

DURATION_STATS = ("elapsedTime", "queuedTime", "totalScheduledTime", "totalCpuTime", "totalBlockedTime")
SIZE_STATS = ("memoryReservation", "rawInputDataSize", "processedInputDataSize", "outputDataSize")
COUNT_STATS = ("totalDrivers", "queuedDrivers", "runningDrivers", "completedDrivers", "rawInputPositions",
               "processedInputPositions", "outputPositions")


def assert_task_info(info: dict[str, Any]) -> None:
    """Every field of the documented TaskInfo with its type and format (1.x's fields alongside them:
    test_openlookeng_coordinator.py checks those)."""
    assert TASK_INFO_KEYS <= set(info)
    assert isinstance(info["taskId"], str) and isinstance(info["state"], str)
    assert isinstance(info["version"], int) and not isinstance(info["version"], bool)
    assert TIMESTAMP.match(info["lastHeartbeat"])
    assert {"state", "masterSequenceId", "pagesAdded", "buffers"} <= set(info["outputBuffers"])
    assert isinstance(info["noMoreSplits"], list) and isinstance(info["failures"], list) and info["outputs"] == {}
    stats = info["stats"]
    assert {"createTime", *DURATION_STATS, *SIZE_STATS, *COUNT_STATS, "pipelines"} <= set(stats)
    assert all(TIMESTAMP.match(stats[k]) for k in ("createTime", "startTime", "endTime") if k in stats)
    assert all(DURATION.match(stats[k]) for k in DURATION_STATS), stats
    assert all(DATA_SIZE.match(stats[k]) for k in SIZE_STATS), stats
    assert all(type(stats[k]) is int for k in COUNT_STATS) and stats["pipelines"] == []


def test_a_post_creates_the_task_and_answers_its_task_info_in_the_documented_shape(
        presto: Presto, server: str) -> None:
    tid = new_task_id()
    answer = presto.post(f"/v1/task/{tid}")
    assert answer.status_code == 200 and answer.headers["Content-Type"].startswith("application/json")
    info = answer.json()
    assert_task_info(info)
    assert (info["taskId"], info["state"], info["version"]) == (tid, "PLANNED", 1)
    assert info["self"] == f"{server}/v1/task/{tid}"
    buffers = info["outputBuffers"]
    assert (buffers["state"], buffers["masterSequenceId"], buffers["pagesAdded"]) == ("OPEN", 0, 0)
    assert [(b["bufferId"], b["finished"], b["bufferedPages"], b["pagesSent"]) for b in buffers["buffers"]] == [
        ("0", False, 0, 0)]  # declared in outputIds, listed before its first page
    assert "startTime" not in info["stats"] and "endTime" not in info["stats"]
    assert info["stats"]["elapsedTime"] == "0.00ns" and info["stats"]["outputDataSize"] == "0B"
    assert presto.get(f"/v1/task/{tid}", role="viewer").json()["taskId"] == tid


def test_a_task_created_through_the_facade_is_visible_natively_with_its_request_as_input(presto: Presto) -> None:
    tid = new_task_id()
    presto.create(tid)
    listed = presto.get("/ledger/v1/tasks", params={"namespace": "openlookeng:default", "name_prefix": tid}).json()
    assert listed["total"] == 1
    task = listed["items"][0]
    assert (task["name"], task["type"], task["facade"], task["state"]) == (tid, "openlookeng-task", "openlookeng",
                                                                          "QUEUED")
    assert task["external_ids"] == {"openlookeng": tid} and task["input"] == UPDATE
    events = presto.get(f"/ledger/v1/tasks/{task['id']}/events").json()["events"]
    assert [(e["facade"], e["actor"]) for e in events] == [("openlookeng", "fac-admin")]


def test_a_second_post_replaces_the_input_and_an_identical_one_records_nothing(
        presto: Presto, ledger_app: TaskLedger) -> None:
    tid = new_task_id()
    presto.create(tid)
    changed = {**UPDATE, "sources": [{"planNodeId": "8", "splits": [], "noMoreSplits": True}], "taskPriority": 3}
    updated = presto.post(f"/v1/task/{tid}", changed, role="worker").json()
    assert updated["version"] == 2 and updated["noMoreSplits"] == ["8"]
    with no_event(ledger_app):
        again = presto.post(f"/v1/task/{tid}", changed, role="operator").json()
    assert again["version"] == 2 and presto.get(f"/v1/task/{tid}").json()["version"] == 2


def test_a_post_to_a_finished_task_answers_it_unchanged_and_records_nothing(
        presto: Presto, ledger_app: TaskLedger) -> None:
    tid, uuid, epoch = presto.running()
    presto.native("POST", f"/tasks/{uuid}/complete", {"lease_epoch": epoch}, role="worker")
    with no_event(ledger_app):
        answer = presto.post(f"/v1/task/{tid}", {**UPDATE, "totalPartitions": 9})
    assert answer.status_code == 200 and answer.json()["state"] == "FINISHED" and answer.json()["version"] == 3


def test_every_task_of_the_openlookeng_namespaces_is_listed_and_others_are_not(presto: Presto) -> None:
    made_here = presto.create()["taskId"]
    native_tid = new_task_id()
    native = presto.native("POST", "/tasks", {"namespace": "openlookeng:default", "name": "native",
                                              "external_id": native_tid})
    other_node = presto.native("POST", "/tasks", {"namespace": f"openlookeng:node-{uuid4().hex[:6]}", "name": "n"})
    elsewhere = presto.native("POST", "/tasks", {"namespace": f"kylin:{uuid4().hex[:6]}", "name": "cube"})
    answer = presto.get("/v1/task", params={"summarize": ""}, role="viewer")
    assert answer.status_code == 200 and isinstance(answer.json(), list)
    listed = {info["taskId"]: info for info in answer.json()}
    assert {made_here, native_tid, other_node["id"]} <= set(listed) and elsewhere["id"] not in listed
    assert listed[native_tid]["version"] == native["version"]
    for info in listed.values():
        assert_task_info(info)
    assert presto.get(f"/v1/task/{other_node['id']}").json()["taskId"] == other_node["id"]
    assert presto.get(f"/v1/task/{elsewhere['id']}").status_code == 404


def test_ledger_states_map_onto_openlookeng_task_states(presto: Presto) -> None:
    tid, uuid, epoch = presto.running()
    assert presto.get(f"/v1/task/{tid}").json()["state"] == "RUNNING"
    presto.native("POST", f"/tasks/{uuid}/pause", {}, role="operator")
    assert presto.get(f"/v1/task/{tid}").json()["state"] == "SUSPENDED"
    presto.native("POST", f"/tasks/{uuid}/resume", {}, role="operator")
    assert presto.get(f"/v1/task/{tid}").json()["state"] == "PLANNED"
    epoch = presto.native("POST", f"/tasks/{uuid}/start", {"worker": "w2"}, role="worker")["lease_epoch"]
    presto.native("POST", f"/tasks/{uuid}/cancel", {}, role="operator")
    assert presto.get(f"/v1/task/{tid}").json()["state"] == "RUNNING"  # CANCELLING: the worker has not confirmed
    presto.native("POST", f"/tasks/{uuid}/abort", {}, role="operator")
    assert presto.get(f"/v1/task/{tid}").json()["state"] == "ABORTED"


def test_a_finished_task_shows_its_times_and_output_in_the_stats(presto: Presto) -> None:
    tid, uuid, epoch = presto.running()
    presto.append(uuid, epoch, "x" * 178_954, positions=154, last=True)
    presto.native("POST", f"/tasks/{uuid}/complete", {"lease_epoch": epoch}, role="worker")
    info = presto.get(f"/v1/task/{tid}").json()
    assert_task_info(info)
    stats = info["stats"]
    assert info["state"] == "FINISHED" and {"startTime", "endTime"} <= set(stats)
    assert stats["createTime"] <= stats["startTime"] <= stats["endTime"]
    assert stats["outputDataSize"] == "174.76kB" and stats["outputPositions"] == 154
    assert stats["elapsedTime"] != "0.00ns"
    buffers = info["outputBuffers"]
    assert (buffers["state"], buffers["masterSequenceId"], buffers["pagesAdded"]) == ("FINISHED", 0, 1)
    assert [{k: b[k] for k in ("bufferId", "finished", "bufferedPages", "pagesSent")} for b in buffers["buffers"]] \
        == [{"bufferId": "0", "finished": True, "bufferedPages": 1, "pagesSent": 0}]


def test_a_failed_task_lists_its_failure(presto: Presto) -> None:
    tid, uuid, epoch = presto.running()
    presto.native("POST", f"/tasks/{uuid}/fail", {"lease_epoch": epoch, "error": "disk full"}, role="worker")
    info = presto.get(f"/v1/task/{tid}").json()
    assert info["state"] == "FAILED" and info["outputBuffers"]["state"] == "FAILED"
    assert [(f["type"], f["message"]) for f in info["failures"]] == [("io.taskledger.TaskFailedException",
                                                                      "disk full")]


def test_steps_stand_for_drivers(presto: Presto) -> None:
    tid = new_task_id()
    task = presto.native("POST", "/tasks", {"namespace": "openlookeng:default", "name": tid, "external_id": tid,
                                            "steps": ["scan", "filter", "output"]})
    epoch = presto.native("POST", f"/tasks/{task['id']}/start", {"worker": "w"}, role="worker")["lease_epoch"]
    presto.native("POST", f"/tasks/{task['id']}/steps/0", {"lease_epoch": epoch, "status": "SUCCEEDED"}, role="worker")
    presto.native("POST", f"/tasks/{task['id']}/steps/1", {"lease_epoch": epoch, "status": "RUNNING"}, role="worker")
    stats = presto.get(f"/v1/task/{tid}").json()["stats"]
    assert [stats[k] for k in ("totalDrivers", "queuedDrivers", "runningDrivers", "completedDrivers")] == [3, 1, 1, 1]
    status = presto.get(f"/v1/task/{tid}/status").json()
    assert (status["queuedPartitionedDrivers"], status["runningPartitionedDrivers"]) == (1, 1)


def test_the_status_resource_answers_the_task_status(presto: Presto, server: str) -> None:
    tid = presto.create()["taskId"]
    answer = presto.get(f"/v1/task/{tid}/status", role="worker")
    assert answer.status_code == 200
    status = answer.json()
    assert {k: status[k] for k in ("taskId", "version", "state", "self", "nodeId", "failures",
                                   "queuedPartitionedDrivers", "runningPartitionedDrivers",
                                   "memoryReservation")} == {
        "taskId": tid, "version": 1, "state": "PLANNED", "self": f"{server}/v1/task/{tid}", "nodeId": "default",
        "failures": [], "queuedPartitionedDrivers": 0, "runningPartitionedDrivers": 0, "memoryReservation": "0B"}
    assert status["taskInstanceId"] == str(external_task_id("openlookeng:default", tid))


def test_an_unknown_task_is_404_with_a_plain_text_body(presto: Presto, ledger_app: TaskLedger) -> None:
    tid = new_task_id()
    with no_event(ledger_app):
        for answer in (presto.get(f"/v1/task/{tid}"), presto.get(f"/v1/task/{tid}/status"),
                       presto.delete(f"/v1/task/{tid}")):
            assert answer.status_code == 404 and answer.headers["Content-Type"].startswith("text/plain")
            assert tid in answer.text


def test_a_dropped_task_is_gone_from_the_list_and_410_for_reads_and_writes(
        presto: Presto, ledger_app: TaskLedger) -> None:
    tid = presto.create()["taskId"]
    assert presto.delete(f"/v1/task/{tid}").json()["state"] == "ABORTED"
    presto.request("DELETE", f"/ledger/v1/tasks/{external_task_id('openlookeng:default', tid)}", role="operator")
    presto.queries.wait_for(ledger_app.head_position(), 5)
    assert tid not in {info["taskId"] for info in presto.get("/v1/task").json()}
    with no_event(ledger_app):
        for answer in (presto.get(f"/v1/task/{tid}"), presto.post(f"/v1/task/{tid}"), presto.delete(f"/v1/task/{tid}")):
            assert answer.status_code == 410 and "dropped" in answer.text


def test_concurrent_first_updates_of_one_task_id_create_it_once(presto: Presto) -> None:
    tids = [new_task_id() for _ in range(3)]
    start = threading.Barrier(8)

    def post(tid: str) -> requests.Response:
        start.wait()
        return presto.post(f"/v1/task/{tid}")

    with ThreadPoolExecutor(8) as pool:
        answers = [answer for tid in tids for answer in pool.map(post, [tid] * 8)]
    assert [a.status_code for a in answers] == [200] * 24, {a.text for a in answers}
    assert {(a.json()["taskId"], a.json()["version"]) for a in answers} == {(tid, 1) for tid in tids}
    listed = presto.get("/v1/task").json()
    assert sum(info["taskId"] in tids for info in listed) == 3


def test_an_update_of_a_failed_task_is_ignored_as_for_any_done_task(presto: Presto, ledger_app: TaskLedger) -> None:
    tid, uuid, epoch = presto.running()
    presto.native("POST", f"/tasks/{uuid}/fail", {"lease_epoch": epoch, "error": "boom"}, role="worker")
    with no_event(ledger_app):
        answer = presto.post(f"/v1/task/{tid}", {**UPDATE, "totalPartitions": 4})
    assert answer.status_code == 200 and answer.json()["state"] == "FAILED"
