"""Pandora's JSON: export tasks and run-history rows as the seed shows them; times are ms since the epoch."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
NEVER = -1  # the seed's lastRunTime for a task that never ran
WRITER_OPERATIONS = ("create", "edit", "list", "share", "delete")
READER_OPERATIONS = ("list",)
# The ledger states in which a recurring task keeps running on its schedule; every other state is stopped.
RUNNING_STATES = ("QUEUED", "RUNNING")
# Run-history statuses of the ledger, as Pandora words them (the seed shows "success").
RUN_STATUS = {"pending": "pending", "running": "running", "succeeded": "success", "failed": "failed",
              "skipped": "skipped", "missed": "missed"}


def millis(value: str | datetime | None) -> int | None:
    if value is None:
        return None
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return (moment - EPOCH) // timedelta(milliseconds=1)


def status_of(state: str) -> str:
    return "running" if state in RUNNING_STATES else "stopped"


def task_json(doc: dict[str, Any], operations: tuple[str, ...]) -> dict[str, Any]:
    """One export task; tasks made natively in the namespace show what they have (no spl → null)."""
    raw = doc.get("input")
    given: dict[str, Any] = raw if isinstance(raw, dict) else {}
    last_run = millis(doc.get("last_run_time"))
    return {
        "id": doc["id"],
        "name": doc["name"],
        "description": None,
        "operations": list(operations),
        "spl": given.get("spl"),
        "owner": doc["submitter"],
        "interval": given.get("interval") or _interval_of(doc.get("schedule")),
        "status": status_of(doc["state"]),
        "count": doc.get("run_count", 0),
        "updateTime": millis(doc.get("updated_at") or doc["created_at"]),
        "createTime": millis(doc["created_at"]),
        "lastRunTime": NEVER if last_run is None else last_run,
    }


def _interval_of(schedule: Any) -> dict[str, Any] | None:
    """A native task's schedule, shown as the crontab interval it amounts to."""
    if isinstance(schedule, dict) and isinstance(schedule.get("cron"), str):
        return {"type": "crontab", "crontab": schedule["cron"]}
    return None


def history_json(task_id: str, row: dict[str, Any]) -> dict[str, Any]:
    """One run of a task: its number, occurrence time, outcome, log message and duration."""
    return {
        "taskId": task_id,
        "count": row["run"],
        "time": millis(row["time"]),
        "status": RUN_STATUS.get(row["status"], row["status"]),
        "message": row.get("message") or row.get("reason"),
        "tookMillis": row.get("took_ms"),
    }


def page_json(total: int, number: int, size: int, key: str, items: list[dict[str, Any]]) -> dict[str, Any]:
    return {"total": total, "pageNo": number, "pageSize": size, key: items}
