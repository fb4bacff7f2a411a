"""The openLooKeng Task Resource (`/v1/task`) over the ledger, in the documented TaskInfo shape."""

from __future__ import annotations

from api.facades.common import FacadeDeps
from api.facades.openlookeng.results import Acknowledge, Results, ResultsBuffer
from api.facades.openlookeng.store import OpenLooKengTasks
from api.facades.openlookeng.tasks import TaskItem, TaskList, TaskStatusItem
from api.facades.openlookeng.wire import WIRE

TASK = "/v1/task/{task_id}"
RESULTS = TASK + "/results/{buffer_id}"

__all__ = ["WIRE", "routes"]


def routes(deps: FacadeDeps) -> list[tuple[str, object]]:
    """(URI template, resource) pairs this facade serves."""
    tasks = OpenLooKengTasks(deps)
    resources: list[tuple[str, type]] = [
        ("/v1/task", TaskList), (TASK, TaskItem), (TASK + "/status", TaskStatusItem),
        (RESULTS, ResultsBuffer), (RESULTS + "/{token}", Results), (RESULTS + "/{token}/acknowledge", Acknowledge),
    ]
    return [(template, cls(deps, tasks)) for template, cls in resources]
