"""A ledger task as Kylin's JobInstance (and its steps as JobSteps): field names, types and units."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from ledger import state as st

PREFIX = "kylin:"
# Kylin's metadata version, as the seed's responses show it.
METADATA_VERSION = "3.0.0.1"
JOB_TYPES = ("BUILD", "MERGE", "REFRESH")
STEP_CMD_TYPE = "SHELL_CMD_HADOOP"

JOB_STATUS = {
    st.QUEUED: "PENDING", st.RUNNING: "RUNNING", st.PAUSED: "STOPPED", st.CANCELLING: "RUNNING",
    st.SUCCEEDED: "FINISHED", st.FAILED: "ERROR", st.CANCELLED: "DISCARDED", st.ABORTED: "DISCARDED",
}
STEP_STATUS = {
    "PENDING": "PENDING", "RUNNING": "RUNNING", "SUCCEEDED": "FINISHED", "FAILED": "ERROR",
    "SKIPPED": "DISCARDED", "CANCELLED": "DISCARDED",
}
# Kylin's JobStatusEnum codes, as the `status` filter takes them, and the ledger states each selects.
STATUS_CODES: dict[int, tuple[str, ...]] = {
    0: (st.QUEUED,), 1: (st.QUEUED,), 2: (st.RUNNING, st.CANCELLING), 4: (st.SUCCEEDED,),
    8: (st.FAILED,), 16: (st.CANCELLED, st.ABORTED), 32: (st.PAUSED,),
}
DROPPABLE = (st.SUCCEEDED, st.CANCELLED, st.ABORTED)
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
MILLISECOND = timedelta(milliseconds=1)


def is_kylin(doc: dict[str, Any]) -> bool:
    return str(doc.get("namespace", "")).startswith(PREFIX)


def project_of(doc: dict[str, Any]) -> str:
    return str(doc["namespace"])[len(PREFIX):]


def cube_of(doc: dict[str, Any]) -> str:
    return _attribute(doc, "cube")


def segment_of(doc: dict[str, Any]) -> str:
    return _attribute(doc, "segment")


def _attribute(doc: dict[str, Any], key: str) -> str:
    """A Kylin attribute of a task: from its input object, else its labels, else empty."""
    given = doc.get("input")
    if isinstance(given, dict) and isinstance(given.get(key), str):
        return str(given[key])
    return str((doc.get("labels") or {}).get(key, ""))


def job_type(doc: dict[str, Any]) -> str:
    """BUILD, MERGE or REFRESH; any other task type reads as BUILD (clients parse it as an enum)."""
    kind = str(doc.get("type", "")).upper()
    return kind if kind in JOB_TYPES else "BUILD"


def millis(stamp: str | None) -> int:
    """ISO-8601 instant → milliseconds since the epoch; 0 when unset, as Kylin reports it."""
    if not stamp:
        return 0
    return (datetime.fromisoformat(stamp) - EPOCH) // MILLISECOND


def duration_seconds(doc: dict[str, Any], now: datetime) -> int:
    started = doc.get("started_at")
    if not started:
        return 0
    ended = doc.get("ended_at")
    end = datetime.fromisoformat(ended) if ended else now
    return max(0, int((end - datetime.fromisoformat(started)).total_seconds()))


def step_id(job_id: str, index: int) -> str:
    return f"{job_id}-{index:02d}"


def job_instance(doc: dict[str, Any], now: datetime) -> dict[str, Any]:
    """Kylin's JobInstance JSON for one task (the view's document or a TaskState dict)."""
    cube = cube_of(doc)
    return {
        "uuid": doc["id"], "last_modified": millis(doc.get("updated_at")), "version": METADATA_VERSION,
        "name": doc["name"], "type": job_type(doc), "duration": duration_seconds(doc, now),
        "related_cube": cube, "display_cube_name": cube, "related_segment": segment_of(doc),
        "project_name": project_of(doc), "exec_start_time": millis(doc.get("started_at")),
        "exec_end_time": millis(doc.get("ended_at")), "exec_interrupt_time": 0, "mr_waiting": 0,
        "steps": [job_step(doc["id"], index, step) for index, step in enumerate(doc.get("steps") or [])],
        "submitter": doc.get("submitter", ""), "job_status": JOB_STATUS[doc["state"]],
        "progress": float(doc.get("progress") or 0.0), "is_broken": False,
    }


def job_step(job_id: str, index: int, step: dict[str, Any]) -> dict[str, Any]:
    """Kylin's JobStep; the ledger keeps no per-step times, so they read as unknown (0)."""
    return {
        "id": step_id(job_id, index), "name": step.get("name", ""), "sequence_id": index,
        "exec_cmd": None, "interrupt_cmd": None, "interruptCmd": None,
        "exec_start_time": 0, "exec_end_time": 0, "exec_wait_time": 0,
        "step_status": STEP_STATUS.get(str(step.get("status")), "PENDING"),
        "cmd_type": STEP_CMD_TYPE, "info": {}, "run_async": False,
    }
