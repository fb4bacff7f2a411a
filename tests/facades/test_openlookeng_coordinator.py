"""A simulated hetu-core 1.x coordinator: incremental updates as HttpRemoteTask sends them, status long polls,
a native worker reading the merged input, results by token; every answer parses as 1.x's JSON creators bind it.

The required fields and their JSON types come from hetu-core's `@JsonCreator` constructors, read at
openlookeng/hetu-core presto-main/src/main/java/io/prestosql/: `execution/TaskStatus.java` (b675c5f4 and
15dcde20: peakMemoryReservation), `execution/TaskInfo.java`, `operator/TaskStats.java` (15dcde20; 1.10's
inputBlockedTime/outputBlockedTime from shared/reference/seed-server-behaviour.md §1.2),
`execution/ExecutionFailureInfo.java`, `execution/TaskState.java`; the buffer classes, absent from the stored
hetu-core tree, from the same io.prestosql lineage: `execution/buffer/OutputBufferInfo.java` and
`PageBufferInfo.java` (prestodb/presto@6c0ff741), `BufferInfo.java` (hfsugar/hetu-core@b981b2ca).
A field a creator guards with requireNonNull, or binds to a primitive, is required here.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ledger.application import TaskLedger, external_task_id
from tests.facades.openlookeng_support import (
    DATA_SIZE,
    DURATION,
    TASK_INFO_KEYS,
    TIMESTAMP,
    Presto,
    new_task_id,
    no_event,
    presto,
)

__all__ = ["presto"]

Check = Callable[[Any], bool]
TASK_STATES = ("PLANNED", "RUNNING", "SUSPENDED", "FLUSHING", "FINISHED", "CANCELED", "CANCELED_TO_RESUME",
               "ABORTED", "FAILED", "RESUMABLE_FAILURE")
BUFFER_STATES = ("OPEN", "NO_MORE_BUFFERS", "NO_MORE_PAGES", "FLUSHING", "FINISHED", "ABORTED", "FAILED")


def integer(v: Any) -> bool:
    return type(v) is int and v >= 0


def string(v: Any) -> bool:
    return isinstance(v, str)


def boolean(v: Any) -> bool:
    return type(v) is bool


def matches(pattern: re.Pattern[str]) -> Check:
    """An airlift value written as text: a DataSize, a Duration, a Joda DateTime."""
    return lambda v: isinstance(v, str) and pattern.match(v) is not None


size, duration, instant = matches(DATA_SIZE), matches(DURATION), matches(TIMESTAMP)


def one_of(*names: str) -> Check:
    return lambda v: v in names


def many(check: Check) -> Check:
    return lambda v: isinstance(v, list) and all(check(item) for item in v)


def mapping(v: Any) -> bool:
    return isinstance(v, dict)


def buffer_id(v: Any) -> bool:
    # OutputBufferId has an int creator; Jackson coerces a string of digits to it
    return integer(v) or (isinstance(v, str) and v.isascii() and v.isdigit())


FAILURE: dict[str, Check] = {"type": string, "suppressed": many(mapping), "stack": many(string)}
FAILURE_OPTIONAL: dict[str, Check] = {"message": string, "cause": mapping, "errorLocation": mapping,
                                      "errorCode": mapping, "semanticErrorCode": string, "remoteHost": string}
STATUS: dict[str, Check] = {
    "taskId": string, "taskInstanceId": string, "version": integer, "state": one_of(*TASK_STATES),
    "self": lambda v: isinstance(v, str) and v.startswith("http"), "nodeId": string,
    "completedDriverGroups": many(lambda v: v == "TaskWide" or str(v).startswith("Group")),
    "failures": many(lambda v: not problems(v, FAILURE, FAILURE_OPTIONAL, "failure")),
    "queuedPartitionedDrivers": integer, "runningPartitionedDrivers": integer, "outputBufferOverutilized": boolean,
    "physicalWrittenDataSize": size, "memoryReservation": size, "systemMemoryReservation": size,
    "revocableMemoryReservation": size, "fullGcCount": integer, "fullGcTime": duration,
    "peakMemoryReservation": size,
    "snapshotCaptureResult": mapping,  # not guarded, but ContinuousTaskStatusFetcher hands it on as a map
}
SNAPSHOT_RESTORE: dict[str, Check] = {"snapshotRestoreResult": mapping}  # Optional: null or absent is empty
PAGE_BUFFER: dict[str, Check] = dict.fromkeys(("partition", "bufferedPages", "bufferedBytes", "rowsAdded",
                                               "pagesAdded"), integer)
BUFFER: dict[str, Check] = {"bufferId": buffer_id, "finished": boolean, "bufferedPages": integer,
                            "pagesSent": integer,
                            "pageBufferInfo": lambda v: not problems(v, PAGE_BUFFER, {}, "pageBufferInfo")}
OUTPUT_BUFFERS: dict[str, Check] = {
    "type": string, "state": one_of(*BUFFER_STATES), "canAddBuffers": boolean, "canAddPages": boolean,
    **dict.fromkeys(("totalBufferedBytes", "totalBufferedPages", "totalRowsSent", "totalPagesSent"), integer),
    "buffers": many(lambda v: not problems(v, BUFFER, {}, "buffer")),
}
STATS: dict[str, Check] = {
    "createTime": instant, "elapsedTime": duration, "queuedTime": duration,
    **dict.fromkeys(("totalDrivers", "queuedDrivers", "queuedPartitionedDrivers", "runningDrivers",
                     "runningPartitionedDrivers", "blockedDrivers", "completedDrivers"), integer),
    "cumulativeUserMemory": lambda v: type(v) in (int, float),
    **dict.fromkeys(("userMemoryReservation", "revocableMemoryReservation", "systemMemoryReservation",
                     "peakUserMemoryReservation", "physicalInputDataSize", "internalNetworkInputDataSize",
                     "rawInputDataSize", "processedInputDataSize", "outputDataSize", "physicalWrittenDataSize"),
                    size),
    **dict.fromkeys(("totalScheduledTime", "totalCpuTime", "totalBlockedTime", "fullGcTime", "inputBlockedTime",
                     "outputBlockedTime"), duration),
    "fullyBlocked": boolean, "blockedReasons": many(string),
    **dict.fromkeys(("physicalInputPositions", "internalNetworkInputPositions", "rawInputPositions",
                     "processedInputPositions", "outputPositions", "fullGcCount"), integer),
    "pipelines": many(mapping),
}
STATS_OPTIONAL: dict[str, Check] = dict.fromkeys(("firstStartTime", "lastStartTime", "lastEndTime", "endTime"),
                                                 instant)
INFO: dict[str, Check] = {
    "taskStatus": lambda v: not problems(v, STATUS, SNAPSHOT_RESTORE, "taskStatus"), "lastHeartbeat": instant,
    "outputBuffers": lambda v: not problems(v, OUTPUT_BUFFERS, {}, "outputBuffers"),
    "noMoreSplits": many(string), "stats": lambda v: not problems(v, STATS, STATS_OPTIONAL, "stats"),
    "needsPlan": boolean, "snapshotCaptureResult": mapping,
}


def problems(value: Any, required: dict[str, Check], optional: dict[str, Check], where: str) -> list[str]:
    """What keeps a creator from binding `value`: a required field missing, or any field of the wrong type."""
    if not isinstance(value, dict):
        return [f"{where} is not an object"]
    found = [f"{where}.{k} missing" for k in required if k not in value]
    found += [f"{where}.{k}={value[k]!r}" for k, check in required.items() if k in value and not check(value[k])]
    return found + [f"{where}.{k}={value[k]!r}" for k, check in optional.items()
                    if value.get(k) is not None and not check(value[k])]


def assert_status(status: Any) -> None:
    assert problems(status, STATUS, SNAPSHOT_RESTORE, "TaskStatus") == [], status


def assert_info(info: Any) -> None:
    """Parses as 1.x's TaskInfo, and keeps the seed's top-level fields (the same task as its taskStatus)."""
    assert problems(info, INFO, SNAPSHOT_RESTORE, "TaskInfo") == [], info
    assert TASK_INFO_KEYS <= set(info)
    assert all(info[k] == info["taskStatus"][k] for k in ("taskId", "version", "state", "self"))
    assert {"masterSequenceId", "pagesAdded"} <= set(info["outputBuffers"])


# ------------------------------------------------------------------ what HttpRemoteTask sends
SESSION = {"queryId": "20260101_000000_00001_abcde", "transactionId": "7d4ad8f4-8a3c-4b9b-9ac4-33c3a5b1f6e0",
           "clientTransactionSupport": False, "user": "alice", "principal": None, "source": "hetu-cli",
           "catalog": "tpch", "schema": "tiny", "path": {}, "traceToken": None, "timeZoneKey": 2072,
           "locale": "en_US", "remoteUserAddress": "10.0.0.7", "userAgent": "StatementClientV1/1.10.0",
           "clientInfo": None, "clientTags": [], "clientCapabilities": [], "resourceEstimates": {},
           "startTime": 1767225600000, "systemProperties": {}, "catalogProperties": {},
           "unprocessedCatalogProperties": {}, "roles": {}, "preparedStatements": {}}
FRAGMENT = {"id": "1", "root": {"@type": "tablescan", "id": "0", "table": {"catalogName": "tpch"}},
            "symbols": {"orderkey": "bigint"}, "partitioning": {"connectorHandle": {"@type": "$remote"}},
            "partitionedSources": ["0"], "partitioningScheme": {"outputLayout": ["orderkey"]},
            "stageExecutionDescriptor": {"stageExecutionStrategy": "UNGROUPED_EXECUTION",
                                         "groupedExecutionScanNodes": []},
            "statsAndCosts": {"stats": {}, "costs": {}}, "jsonRepresentation": "{}"}


def split(sequence: int, node: str = "0") -> dict[str, Any]:
    """A ScheduledSplit (metadata/Split.java: catalogName, connectorSplit, lifespan)."""
    return {"sequenceId": sequence, "planNodeId": node, "split": {
        "catalogName": "tpch", "lifespan": "TaskWide",
        "connectorSplit": {"@type": "tpch", "partNumber": sequence, "totalParts": 3, "addresses": ["10.0.0.8:8080"]}}}


def update(sources: list[dict[str, Any]], *, fragment: Any = None, buffers: dict[str, int] | None = None,
           version: int = 1, no_more_buffers: bool = False) -> dict[str, Any]:
    return {"taskInstanceId": "c1d2e3f4-0000-4000-8000-000000000001", "session": SESSION, "extraCredentials": {},
            "fragment": fragment, "sources": sources, "totalPartitions": None, "consumerId": None,
            "outputIds": {"type": "PARTITIONED", "version": version, "noMoreBufferIds": no_more_buffers,
                          "buffers": {"0": 0} if buffers is None else buffers}}


def source(splits: list[dict[str, Any]], no_more: bool = False, node: str = "0") -> dict[str, Any]:
    return {"planNodeId": node, "splits": splits, "noMoreSplitsForLifespan": [], "noMoreSplits": no_more}


def post(presto: Presto, tid: str, body: dict[str, Any]) -> dict[str, Any]:
    answer = presto.post(f"/v1/task/{tid}", body, role="operator")
    assert answer.status_code == 200, answer.text
    info: dict[str, Any] = answer.json()
    assert_info(info)
    return info


def native_input(presto: Presto, tid: str) -> dict[str, Any]:
    """The task's input as a native worker reads it."""
    uuid = external_task_id("openlookeng:default", tid)
    task: dict[str, Any] = presto.get(f"/ledger/v1/tasks/{uuid}", role="worker").json()
    return dict(task["input"])


# ------------------------------------------------------------------ tests
def test_incremental_updates_accumulate_into_the_input_a_worker_reads(presto: Presto, ledger_app: TaskLedger) -> None:
    tid = new_task_id()
    first = post(presto, tid, update([source([split(0), split(1)])], fragment=FRAGMENT))
    assert first["needsPlan"] is False and first["noMoreSplits"] == []
    second = update([source([split(2)], no_more=True)], buffers={"0": 0, "1": 1}, version=2, no_more_buffers=True)
    assert post(presto, tid, second)["noMoreSplits"] == ["0"]
    last = post(presto, tid, update([], buffers={"0": 0, "1": 1}, version=2, no_more_buffers=True))
    stored = native_input(presto, tid)
    (merged,) = stored["sources"]
    assert [s["sequenceId"] for s in merged["splits"]] == [0, 1, 2] and merged["noMoreSplits"] is True
    assert merged["splits"][2] == split(2) and stored["fragment"] == FRAGMENT
    assert stored["outputIds"]["buffers"] == {"0": 0, "1": 1} and stored["session"] == SESSION
    assert last["noMoreSplits"] == ["0"] and last["needsPlan"] is False
    assert [b["bufferId"] for b in last["outputBuffers"]["buffers"]] == ["0", "1"]
    with no_event(ledger_app):  # each update sent again (a retried request) changes nothing
        for body in (second, update([source([split(0), split(1)])], fragment=FRAGMENT)):
            assert post(presto, tid, body)["version"] == last["version"]
    assert native_input(presto, tid) == stored


def test_a_source_closed_by_no_more_splits_takes_no_new_split(presto: Presto, ledger_app: TaskLedger) -> None:
    tid = new_task_id()
    post(presto, tid, update([source([split(0)], no_more=True)], fragment=FRAGMENT))
    with no_event(ledger_app):
        answer = presto.post(f"/v1/task/{tid}", update([source([split(5)])]), role="operator")
    assert answer.status_code == 409 and answer.headers["Content-Type"].startswith("text/plain")
    assert "noMoreSplits" in answer.text
    assert [s["sequenceId"] for s in native_input(presto, tid)["sources"][0]["splits"]] == [0]


def test_concurrent_updates_of_one_task_all_keep_their_splits(presto: Presto) -> None:
    tid = new_task_id()
    post(presto, tid, update([], fragment=FRAGMENT))
    start = threading.Barrier(6)

    def send(sequence: int) -> int:
        start.wait()
        body = update([source([split(sequence)], node=str(sequence % 2))])
        return presto.post(f"/v1/task/{tid}", body, role="operator").status_code

    with ThreadPoolExecutor(6) as pool:
        assert list(pool.map(send, range(6))) == [200] * 6
    sources = native_input(presto, tid)["sources"]
    nodes = {s["planNodeId"]: sorted(x["sequenceId"] for x in s["splits"]) for s in sources}
    assert nodes == {"0": [0, 2, 4], "1": [1, 3, 5]}


def test_outputs_declared_in_output_ids_are_listed_before_any_page(presto: Presto) -> None:
    tid = new_task_id()
    info = post(presto, tid, update([], fragment=FRAGMENT, buffers={"0": 0, "1": 1, "2": 2}))
    assert info["needsPlan"] is False and info["outputBuffers"]["type"] == "PARTITIONED"
    assert [(b["bufferId"], b["finished"], b["bufferedPages"], b["pageBufferInfo"]["partition"])
            for b in info["outputBuffers"]["buffers"]] == [("0", False, 0, 0), ("1", False, 0, 1), ("2", False, 0, 2)]
    assert post(presto, new_task_id(), update([]))["needsPlan"] is True  # no fragment yet: the coordinator resends


def test_the_status_long_poll_answers_a_parseable_status_once_the_worker_starts(presto: Presto) -> None:
    tid = new_task_id()
    post(presto, tid, update([source([split(0)])], fragment=FRAGMENT))
    uuid = external_task_id("openlookeng:default", tid)
    poll = {"X-Presto-Current-State": "PLANNED", "X-Presto-Max-Wait": "5.00s"}
    first = presto.get(f"/v1/task/{tid}/status", role="operator").json()
    assert_status(first)
    assert first["taskInstanceId"] == str(uuid) and first["state"] == "PLANNED"
    starter = threading.Timer(0.3, lambda: presto.native("POST", f"/tasks/{uuid}/start", {"worker": "w"},
                                                         role="worker"))
    starter.start()
    began = time.monotonic()
    answer = presto.get(f"/v1/task/{tid}/status", role="operator", headers=poll)
    starter.join()
    assert answer.status_code == 200 and time.monotonic() - began < 4
    status = answer.json()
    assert_status(status)
    assert (status["state"], status["taskInstanceId"]) == ("RUNNING", first["taskInstanceId"])
    assert status["version"] > first["version"]  # a coordinator accepts only a newer (or the same) version
    info = presto.get(f"/v1/task/{tid}", role="operator", headers={**poll, "X-Presto-Current-State": "RUNNING",
                                                                   "X-Presto-Max-Wait": "200ms"}).json()
    assert_info(info)
    assert info["state"] == "RUNNING" and "firstStartTime" in info["stats"]


def test_results_by_token_and_the_buffer_counts_a_coordinator_reads(presto: Presto) -> None:
    tid = new_task_id()
    post(presto, tid, update([source([split(0)], no_more=True)], fragment=FRAGMENT, buffers={"0": 0, "1": 1}))
    _, uuid, epoch = presto.running(tid)
    presto.append(uuid, epoch, "page-a", positions=3)
    presto.append(uuid, epoch, "page-b", positions=4, last=True)
    got = presto.get(f"/v1/task/{tid}/results/0/0", role="operator", headers={"X-Presto-Max-Size": "16MB"})
    assert got.status_code == 200 and got.content == b"page-apage-b"
    assert got.headers["X-Presto-Page-End-Sequence-Id"] == "2" and got.headers["X-Presto-Buffer-Complete"] == "true"
    assert presto.get(f"/v1/task/{tid}/results/0/2/acknowledge", role="operator").status_code == 204
    info = presto.get(f"/v1/task/{tid}", role="operator").json()
    assert_info(info)
    zero, one = info["outputBuffers"]["buffers"]
    assert (zero["finished"], zero["bufferedPages"], zero["pageBufferInfo"]["rowsAdded"]) == (True, 2, 7)
    assert (one["bufferId"], one["finished"], one["bufferedPages"]) == ("1", False, 0)
    assert info["outputBuffers"]["totalBufferedBytes"] == 12 and info["outputBuffers"]["state"] == "OPEN"


def test_every_end_a_coordinator_or_worker_asks_for_answers_a_parseable_task_info(presto: Presto) -> None:
    aborted = new_task_id()
    post(presto, aborted, update([], fragment=FRAGMENT))
    answer = presto.delete(f"/v1/task/{aborted}?targetState=ABORTED", role="operator")  # HttpRemoteTask's cleanup
    assert answer.status_code == 200 and answer.json()["state"] == "ABORTED"
    assert_info(answer.json())
    assert answer.json()["complete"] is True  # prestodb's TaskInfo creator requires it; hetu-core ignores it
    failed = new_task_id()
    assert post(presto, failed, update([], fragment=FRAGMENT))["complete"] is False
    _, uuid, epoch = presto.running(failed)
    presto.native("POST", f"/tasks/{uuid}/fail", {"lease_epoch": epoch, "error": "disk full"}, role="worker")
    status = presto.get(f"/v1/task/{failed}/status", role="operator").json()
    assert_status(status)
    assert [f["message"] for f in status["failures"]] == ["disk full"]
    info = presto.get(f"/v1/task/{failed}", role="operator").json()
    assert_info(info)
    assert (info["outputBuffers"]["state"], info["outputBuffers"]["canAddPages"]) == ("FAILED", False)


def test_a_body_the_request_creator_cannot_bind_creates_nothing(presto: Presto, ledger_app: TaskLedger) -> None:
    tid = new_task_id()
    refused = [({}, "session, sources, outputIds"), ({"session": SESSION, "sources": []}, "outputIds"),
               ({**update([]), "session": "alice"}, "session"), ({**update([]), "sources": {}}, "sources"),
               (update([{"splits": []}]), "planNodeId"), (update([{"planNodeId": "0"}]), "splits"),
               (update([source([{"planNodeId": "0", "split": {}}])]), "sequenceId"),
               ({**update([]), "outputIds": []}, "outputIds"),
               ({**update([]), "outputIds": {"type": "PARTITIONED", "buffers": {"0": "x"}}}, "outputIds.buffers")]
    with no_event(ledger_app):
        for body, named in refused:
            answer = presto.post(f"/v1/task/{tid}", body, role="operator")
            assert answer.status_code == 400 and answer.headers["Content-Type"].startswith("text/plain"), body
            assert named in answer.text and len(answer.text) < 200, answer.text
    assert presto.get(f"/v1/task/{tid}").status_code == 404
