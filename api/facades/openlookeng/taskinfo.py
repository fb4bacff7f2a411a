"""TaskInfo and TaskStatus in the documented (2014) shape, built from a task's `TaskState` document."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import quote

from api.facades.openlookeng import formats as f
from ledger import state as st

FACADE = "openlookeng"
NAMESPACE = "openlookeng:default"
PREFIX = "openlookeng:"
TASK_TYPE = "openlookeng-task"

STATES = {st.QUEUED: "PLANNED", st.RUNNING: "RUNNING", st.PAUSED: "SUSPENDED", st.CANCELLING: "RUNNING",
          st.SUCCEEDED: "FINISHED", st.FAILED: "FAILED", st.CANCELLED: "CANCELED", st.ABORTED: "ABORTED"}
# Every TaskState name some openLooKeng release knows (1.10 enum), for X-Presto-Current-State.
TASK_STATES = ("PLANNED", "RUNNING", "SUSPENDED", "FLUSHING", "FINISHED", "CANCELED", "CANCELED_TO_RESUME",
               "ABORTED", "FAILED", "RESUMABLE_FAILURE")
DONE_STATES = ("FINISHED", "CANCELED", "CANCELED_TO_RESUME", "ABORTED", "FAILED", "RESUMABLE_FAILURE")
FINISHED_STEPS = ("SUCCEEDED", "FAILED", "SKIPPED", "CANCELLED")
FAILURE_TYPE = "io.taskledger.TaskFailedException"


def task_id(doc: dict[str, Any]) -> str:
    """The id the facade knows a task by: its openLooKeng task id here, its ledger id elsewhere."""
    external = doc.get("external_ids", {}).get("openlookeng")
    return external if external and doc["namespace"] == NAMESPACE else doc["id"]


def wire_state(doc: dict[str, Any]) -> str:
    return STATES[doc["state"]]


def task_info(doc: dict[str, Any], base_url: str, now: datetime) -> dict[str, Any]:
    """The whole TaskInfo of one task."""
    return {
        "taskId": task_id(doc),
        "version": doc["version"],
        "state": wire_state(doc),
        "self": self_url(doc, base_url),
        "lastHeartbeat": f.timestamp(doc.get("last_heartbeat") or doc.get("updated_at") or doc["created_at"]),
        "outputBuffers": output_buffers(doc),
        "noMoreSplits": no_more_splits(doc.get("input")),
        "stats": task_stats(doc, now),
        "failures": failures(doc),
        "outputs": {},
    }


def task_status(doc: dict[str, Any], base_url: str) -> dict[str, Any]:
    """The short TaskStatus a coordinator polls through `/status`."""
    drivers = _drivers(doc)
    return {
        "taskId": task_id(doc),
        "version": doc["version"],
        "state": wire_state(doc),
        "self": self_url(doc, base_url),
        "nodeId": doc["namespace"].removeprefix(PREFIX),
        "failures": failures(doc),
        "queuedPartitionedDrivers": drivers["queuedDrivers"],
        "runningPartitionedDrivers": drivers["runningDrivers"],
        "memoryReservation": "0B",
    }


def self_url(doc: dict[str, Any], base_url: str) -> str:
    return f"{base_url}/v1/task/{quote(task_id(doc), safe='')}"


def output_buffers(doc: dict[str, Any]) -> dict[str, Any]:
    buffers = doc.get("buffers") or {}
    return {
        "state": _buffers_state(doc["state"], buffers),
        "masterSequenceId": 0,
        "pagesAdded": sum(b["pages"] for b in buffers.values()),
        "buffers": [{"bufferId": name, "finished": b["finished"] or b["closed"],
                     "bufferedPages": 0 if b["closed"] else b["pages"], "pagesSent": 0}
                    for name, b in sorted(buffers.items())],
    }


def _buffers_state(state: str, buffers: dict[str, dict[str, Any]]) -> str:
    if state in st.TERMINAL:
        return "FINISHED"
    if state == st.FAILED:
        return "FAILED"
    if buffers and all(b["finished"] or b["closed"] for b in buffers.values()):
        return "NO_MORE_PAGES"
    return "OPEN"


def no_more_splits(update: Any) -> list[str]:
    """Plan nodes whose sources the coordinator closed (`sources[].noMoreSplits` of the last update)."""
    sources = update.get("sources") if isinstance(update, dict) else None
    if not isinstance(sources, list):
        return []
    return [str(s["planNodeId"]) for s in sources
            if isinstance(s, dict) and s.get("noMoreSplits") is True and isinstance(s.get("planNodeId"), (str, int))]


def failures(doc: dict[str, Any]) -> list[dict[str, Any]]:
    if doc["state"] != st.FAILED:
        return []
    return [{"type": FAILURE_TYPE, "message": doc.get("error"), "cause": None, "suppressed": [], "stack": []}]


def task_stats(doc: dict[str, Any], now: datetime) -> dict[str, Any]:
    buffers = (doc.get("buffers") or {}).values()
    output_bytes = sum(b["bytes"] for b in buffers)
    return {
        **_times(doc, now),
        **_drivers(doc),
        "memoryReservation": "0B",
        "totalScheduledTime": f.duration(0),
        "totalCpuTime": f.duration(0),
        "totalBlockedTime": f.duration(0),
        "rawInputDataSize": f.data_size(0),
        "rawInputPositions": 0,
        "processedInputDataSize": f.data_size(0),
        "processedInputPositions": 0,
        "outputDataSize": f.data_size(output_bytes),
        "outputPositions": sum(b["positions"] for b in buffers),
        "pipelines": [],
    }


def _times(doc: dict[str, Any], now: datetime) -> dict[str, Any]:
    """createTime/startTime/endTime (absent until they happen), elapsed (start → end) and queued time."""
    created, started, ended = doc["created_at"], doc.get("started_at"), doc.get("ended_at")
    times: dict[str, Any] = {"createTime": f.timestamp(created)}
    if started:
        times["startTime"] = f.timestamp(started)
    if ended:
        times["endTime"] = f.timestamp(ended)
    elapsed = f.nanos_between(started, ended or now) if started else 0
    times["elapsedTime"] = f.duration(elapsed)
    times["queuedTime"] = f.duration(f.nanos_between(created, started or ended or now))
    return times


def _drivers(doc: dict[str, Any]) -> dict[str, int]:
    """A task's steps stand for its drivers."""
    statuses = [step.get("status") for step in doc.get("steps") or []]
    return {"totalDrivers": len(statuses),
            "queuedDrivers": statuses.count("PENDING"),
            "runningDrivers": statuses.count("RUNNING"),
            "completedDrivers": sum(s in FINISHED_STEPS for s in statuses)}
