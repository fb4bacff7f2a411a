"""The Qiniu Pandora 2.0 export-task facade (`/api/v1/export/…`) over the ledger's recurring tasks."""

from __future__ import annotations

import falcon

from api.facades.common import FacadeDeps
from api.facades.pandora.errors import reply
from api.facades.pandora.resources import (
    ExportTask, ExportTaskHistory, ExportTaskList, ExportTasks, ExportTaskStatuses,
)

BASE = "/api/v1/export"


def routes(deps: FacadeDeps) -> list[tuple[str, object]]:
    """(URI template, resource) pairs this facade serves."""
    return [
        (f"{BASE}/task", ExportTasks(deps)),
        (f"{BASE}/task/list", ExportTaskList(deps)),
        (f"{BASE}/task/{{task_id}}", ExportTask(deps)),
        (f"{BASE}/task/{{task_id}}/history", ExportTaskHistory(deps)),
        (f"{BASE}/tasks/status", ExportTaskStatuses(deps)),
    ]


def sinks() -> list[tuple[str, object]]:
    """Unknown paths under the export API: a 404 in Pandora's error format."""
    return [(r"^/api/v1/export(/|$)", _unknown_path)]


def _unknown_path(req: falcon.Request, resp: falcon.Response, **_: str) -> None:
    raise reply(404, f"no such endpoint: {req.method} {req.path}")
