"""Apache HugeGraph async tasks facade: `…/tasks`, gremlin jobs and `/versions`, in both URL layouts.

HugeGraph 1.7+ serves `/graphspaces/{graphspace}/graphs/{graph}/…`; older servers (and 1.7's path
filter) serve `/graphs/{graph}/…`, which is graphspace `DEFAULT`. Tasks of a graph live in the ledger
namespace `hugegraph:<graphspace>/<graph>`, numbered 1, 2, 3… by the ledger.
"""

from __future__ import annotations

from api.facades.common import FacadeDeps
from api.facades.hugegraph.resources import GremlinJobs, TaskItem, TaskList, Versions
from api.facades.hugegraph.wire import WIRE

LAYOUTS = ("/graphspaces/{graphspace}/graphs/{graph}", "/graphs/{graph}")

__all__ = ["WIRE", "routes"]


def routes(deps: FacadeDeps) -> list[tuple[str, object]]:
    """(URI template, resource) pairs this facade serves."""
    tasks, task, jobs = TaskList(deps), TaskItem(deps), GremlinJobs(deps)
    served: list[tuple[str, object]] = [("/versions", Versions(deps))]
    for base in LAYOUTS:
        served += [(f"{base}/tasks", tasks), (f"{base}/tasks/{{task_id}}", task), (f"{base}/jobs/gremlin", jobs)]
    return served
