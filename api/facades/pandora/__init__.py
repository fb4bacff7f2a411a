"""The Qiniu Pandora 2.0 export-task facade (`/api/v1/export/…`) over the ledger's recurring tasks."""

from __future__ import annotations

from api.facades.common import FacadeDeps
from api.facades.pandora.errors import WIRE
from api.facades.pandora.resources import (
    ExportTask, ExportTaskHistory, ExportTaskList, ExportTasks, ExportTaskStatuses,
)

BASE = "/api/v1/export"

__all__ = ["WIRE", "routes"]


def routes(deps: FacadeDeps) -> list[tuple[str, object]]:
    """(URI template, resource) pairs this facade serves."""
    return [
        (f"{BASE}/task", ExportTasks(deps)),
        (f"{BASE}/task/list", ExportTaskList(deps)),
        (f"{BASE}/task/{{task_id}}", ExportTask(deps)),
        (f"{BASE}/task/{{task_id}}/history", ExportTaskHistory(deps)),
        (f"{BASE}/tasks/status", ExportTaskStatuses(deps)),
    ]
