"""`taskledger replay TASK --at TIME | --version N`: the task as it was, in the native API's shape."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from api.representations import task_doc
from ledger.application import TaskLedger
from ledger.errors import TaskNotFoundError
from taskledger.tools.store import ToolError, open_ledger, where


def replay(url: str, task_id: UUID, *, version: int | None = None, at: datetime | None = None) -> dict[str, Any]:
    """The task at a version or an instant, exactly as `GET /ledger/v1/tasks/{id}?as_of=` answers it."""
    if (version is None) == (at is None):
        raise ToolError("give exactly one of --version N or --at TIME")
    app = open_ledger(url)
    try:
        if at is not None:
            return task_doc(_at_time(app, url, task_id, at))
        return task_doc(_at_version(app, url, task_id, version or 0))
    finally:
        app.close()


def _at_version(app: TaskLedger, url: str, task_id: UUID, version: int) -> dict[str, Any]:
    try:
        state = app.task_as_of(task_id, version=version)
    except TaskNotFoundError:
        raise ToolError(f"no task {task_id} in {where(url)}") from None
    if state.version < version:
        raise ToolError(f"task {task_id} has {state.version} versions, not {version}")
    return state.to_dict()


def _at_time(app: TaskLedger, url: str, task_id: UUID, at: datetime) -> dict[str, Any]:
    try:
        return app.task_as_of(task_id, at=at).to_dict()
    except TaskNotFoundError:
        first = next(iter(app.events.get(task_id, limit=1)), None)
        if first is None:
            raise ToolError(f"no task {task_id} in {where(url)}") from None
        created: Any = first
        raise ToolError(f"task {task_id} did not exist yet at {at.isoformat()} "
                        f"(it was created at {created.timestamp.isoformat()})") from None
