"""Apache HugeGraph async tasks facade: `…/tasks`, gremlin jobs and `/versions`, in both URL layouts.

HugeGraph 1.7+ serves `/graphspaces/{graphspace}/graphs/{graph}/…`; older servers (and 1.7's path
filter) serve `/graphs/{graph}/…`, which is graphspace `DEFAULT`. Tasks of a graph live in the ledger
namespace `hugegraph:<graphspace>/<graph>`, numbered 1, 2, 3… by the ledger.
"""

from __future__ import annotations

import falcon

from api.facades.common import FacadeDeps
from api.facades.hugegraph.wire import JAXRS_NOT_FOUND, error
from api.facades.hugegraph.resources import GremlinJobs, TaskItem, TaskList, Versions

LAYOUTS = ("/graphspaces/{graphspace}/graphs/{graph}", "/graphs/{graph}")


def routes(deps: FacadeDeps) -> list[tuple[str, object]]:
    """(URI template, resource) pairs this facade serves."""
    tasks, task, jobs = TaskList(deps), TaskItem(deps), GremlinJobs(deps)
    served: list[tuple[str, object]] = [("/versions", Versions())]
    for base in LAYOUTS:
        served += [(f"{base}/tasks", tasks), (f"{base}/tasks/{{task_id}}", task), (f"{base}/jobs/gremlin", jobs)]
    return served


def sinks() -> list[tuple[str, object]]:
    """Unknown paths under the HugeGraph layouts: a 404 in HugeGraph's error format."""
    return [(r"^/(graphspaces|graphs)(/|$)", _unknown_path)]


def _unknown_path(req: falcon.Request, resp: falcon.Response, **_: str) -> None:
    raise error(404, JAXRS_NOT_FOUND, f"No resource found for '{req.path}'")
