"""TaskInfo and TaskStatus built from a task's `TaskState` document: the seed's documented (2014) fields, and
alongside them every field hetu-core 1.x's JSON creators require, so both kinds of reader parse one answer."""

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
ERROR_CODE = {"code": 0x0001_0000, "name": "GENERIC_INTERNAL_ERROR", "type": "INTERNAL_ERROR"}
DONE = (*st.TERMINAL, st.FAILED)
ZERO_SIZE, ZERO_TIME = f.data_size(0), f.duration(0)
# The snapshot results of 1.x's TaskStatus and TaskInfo: empty, as a worker without snapshots writes them.
NO_SNAPSHOTS: dict[str, Any] = {"snapshotCaptureResult": {}, "snapshotRestoreResult": None}
STATUS_SIZES = ("physicalWrittenDataSize", "memoryReservation", "systemMemoryReservation",
                "revocableMemoryReservation", "peakMemoryReservation")
# TaskStats values the ledger does not measure (the seed's memoryReservation among them).
UNMEASURED_SIZES = ("memoryReservation", "userMemoryReservation", "revocableMemoryReservation",
                    "systemMemoryReservation", "peakUserMemoryReservation", "physicalInputDataSize",
                    "internalNetworkInputDataSize", "rawInputDataSize", "processedInputDataSize",
                    "physicalWrittenDataSize")
# inputBlockedTime/outputBlockedTime are 1.10's (shared/reference/seed-server-behaviour.md §1.2).
UNMEASURED_TIMES = ("totalScheduledTime", "totalCpuTime", "totalBlockedTime", "fullGcTime", "inputBlockedTime",
                    "outputBlockedTime")
UNMEASURED_COUNTS = ("blockedDrivers", "physicalInputPositions", "internalNetworkInputPositions",
                     "rawInputPositions", "processedInputPositions", "fullGcCount")
EMPTY_BUFFER: dict[str, Any] = {"pages": 0, "bytes": 0, "positions": 0, "finished": False, "closed": False}


def task_id(doc: dict[str, Any]) -> str:
    """The id the facade knows a task by: its openLooKeng task id here, its ledger id elsewhere."""
    external = doc.get("external_ids", {}).get("openlookeng")
    return external if external and doc["namespace"] == NAMESPACE else doc["id"]


def wire_state(doc: dict[str, Any]) -> str:
    return STATES[doc["state"]]


def task_info(doc: dict[str, Any], base_url: str, now: datetime) -> dict[str, Any]:
    """The whole TaskInfo of one task: the seed's top-level fields, and alongside them every field hetu-core
    1.x's TaskInfo creator reads (`taskStatus`, `needsPlan`, the snapshot results)."""
    status = task_status(doc, base_url)
    update = doc.get("input")
    return {
        **{name: status[name] for name in ("taskId", "version", "state", "self")},
        "taskStatus": status,
        "lastHeartbeat": f.timestamp(doc.get("last_heartbeat") or doc.get("updated_at") or doc["created_at"]),
        "outputBuffers": output_buffers(doc),
        "noMoreSplits": no_more_splits(update),
        "stats": task_stats(doc, now),
        # hetu-core's coordinator sends the plan fragment until a worker says it no longer needs one
        "needsPlan": not isinstance(update, dict) or update.get("fragment") is None,
        # prestodb's TaskInfo requires it; hetu-core's ignores it
        "complete": doc["state"] in (*st.TERMINAL, st.FAILED),
        **NO_SNAPSHOTS,
        "failures": status["failures"],
        "outputs": {},
    }


def task_status(doc: dict[str, Any], base_url: str) -> dict[str, Any]:
    """The TaskStatus a coordinator polls through `/status`, with every field of hetu-core 1.x's creator."""
    drivers = _drivers(doc)
    return {
        "taskId": task_id(doc),
        # stable for the task's life: a coordinator fails a task whose instance id changes (REMOTE_TASK_MISMATCH)
        "taskInstanceId": doc["id"],
        "version": doc["version"],
        "state": wire_state(doc),
        "self": self_url(doc, base_url),
        "nodeId": doc["namespace"].removeprefix(PREFIX),
        "completedDriverGroups": [],
        "failures": failures(doc),
        "queuedPartitionedDrivers": drivers["queuedDrivers"],
        "runningPartitionedDrivers": drivers["runningDrivers"],
        "outputBufferOverutilized": False,
        **dict.fromkeys(STATUS_SIZES, ZERO_SIZE),
        "fullGcCount": 0,
        "fullGcTime": ZERO_TIME,
        **NO_SNAPSHOTS,
    }


def self_url(doc: dict[str, Any], base_url: str) -> str:
    return f"{base_url}/v1/task/{quote(task_id(doc), safe='')}"


def output_buffers(doc: dict[str, Any]) -> dict[str, Any]:
    """OutputBufferInfo as 1.x writes it, with the seed's `masterSequenceId` and `pagesAdded`: the buffers the
    worker wrote to and those `outputIds` declares (listed before their first page)."""
    output_ids = _output_ids(doc.get("input"))
    listed = output_ids.get("buffers")
    declared: dict[str, Any] = {str(k): v for k, v in listed.items()} if isinstance(listed, dict) else {}
    buffers = doc.get("buffers") or {}
    names = sorted({*declared, *buffers}, key=_buffer_order)
    infos = [_buffer_info(name, buffers.get(name), declared.get(name, 0), doc["state"] in DONE) for name in names]
    state = _buffers_state(doc["state"], infos)
    held = [b for b in buffers.values() if not b["closed"]]
    return {
        "type": output_ids["type"] if isinstance(output_ids.get("type"), str) else "UNINITIALIZED",
        "state": state,
        "canAddBuffers": state == "OPEN" and output_ids.get("noMoreBufferIds") is not True,
        "canAddPages": state == "OPEN",
        "totalBufferedBytes": sum(b["bytes"] for b in held),
        "totalBufferedPages": sum(b["pages"] for b in held),
        "totalRowsSent": 0,  # reads are not recorded: the ledger does not know what a reader received
        "totalPagesSent": 0,
        "masterSequenceId": 0,
        "pagesAdded": sum(b["pages"] for b in buffers.values()),
        "buffers": infos,
    }


def _output_ids(update: Any) -> dict[str, Any]:
    output_ids = update.get("outputIds") if isinstance(update, dict) else None
    return output_ids if isinstance(output_ids, dict) else {}


def _buffer_order(name: str) -> tuple[bool, int, str]:
    """1.x's integer buffer ids in numeric order, then any other ledger buffer name."""
    numeric = name.isascii() and name.isdigit()
    return not numeric, int(name) if numeric else 0, name


def _buffer_info(name: str, buf: dict[str, Any] | None, partition: Any, done: bool) -> dict[str, Any]:
    """BufferInfo: the seed's four fields and 1.x's `pageBufferInfo`; `bufferId` stays a string (the seed's
    type), which Jackson also reads into 1.x's integer OutputBufferId."""
    buf = buf or EMPTY_BUFFER
    partition = partition if isinstance(partition, int) and not isinstance(partition, bool) else 0
    pages, size = (0, 0) if buf["closed"] else (buf["pages"], buf["bytes"])
    return {"bufferId": name, "finished": bool(buf["finished"] or buf["closed"] or done),
            "bufferedPages": pages, "pagesSent": 0,
            "pageBufferInfo": {"partition": partition, "bufferedPages": pages, "bufferedBytes": size,
                               "rowsAdded": buf["positions"], "pagesAdded": buf["pages"]}}


def _buffers_state(state: str, infos: list[dict[str, Any]]) -> str:
    if state in st.TERMINAL:
        return "FINISHED"
    if state == st.FAILED:
        return "FAILED"
    if infos and all(info["finished"] for info in infos):
        return "NO_MORE_PAGES"
    return "OPEN"


def no_more_splits(update: Any) -> list[str]:
    """Plan nodes whose sources the coordinator closed (`sources[].noMoreSplits`, sticky over the updates)."""
    sources = update.get("sources") if isinstance(update, dict) else None
    if not isinstance(sources, list):
        return []
    return [str(s["planNodeId"]) for s in sources
            if isinstance(s, dict) and s.get("noMoreSplits") is True and isinstance(s.get("planNodeId"), (str, int))]


def failures(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """ExecutionFailureInfo of a FAILED task (its creator needs type, suppressed and stack)."""
    if doc["state"] != st.FAILED:
        return []
    return [{"type": FAILURE_TYPE, "message": doc.get("error"), "cause": None, "suppressed": [], "stack": [],
             "errorLocation": None, "errorCode": ERROR_CODE, "semanticErrorCode": None, "remoteHost": None}]


def task_stats(doc: dict[str, Any], now: datetime) -> dict[str, Any]:
    """The seed's TaskStats and every field of 1.x's creator; what the ledger does not measure is zero."""
    buffers = (doc.get("buffers") or {}).values()
    drivers = _drivers(doc)
    return {
        **_times(doc, now),
        **drivers,
        "queuedPartitionedDrivers": drivers["queuedDrivers"],
        "runningPartitionedDrivers": drivers["runningDrivers"],
        **dict.fromkeys(UNMEASURED_SIZES, ZERO_SIZE),
        **dict.fromkeys(UNMEASURED_TIMES, ZERO_TIME),
        **dict.fromkeys(UNMEASURED_COUNTS, 0),
        "cumulativeUserMemory": 0.0,
        "fullyBlocked": False,
        "blockedReasons": [],
        "outputDataSize": f.data_size(sum(b["bytes"] for b in buffers)),
        "outputPositions": sum(b["positions"] for b in buffers),
        "pipelines": [],
    }


def _times(doc: dict[str, Any], now: datetime) -> dict[str, Any]:
    """createTime, the start and end times (absent until they happen), elapsed (start → end) and queued time.

    The ledger keeps the first start only, so 1.x's lastStartTime is that one too."""
    created, started, ended = doc["created_at"], doc.get("started_at"), doc.get("ended_at")
    times: dict[str, Any] = {"createTime": f.timestamp(created)}
    if started:
        times.update(dict.fromkeys(("startTime", "firstStartTime", "lastStartTime"), f.timestamp(started)))
    if ended:
        times.update(dict.fromkeys(("endTime", "lastEndTime"), f.timestamp(ended)))
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
