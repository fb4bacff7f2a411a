"""The Apache Kylin jobs facade (`/kylin/api/jobs`, v2 envelope and bare v1) over the ledger.

Kylin jobs are the tasks of the `kylin:<project>` namespaces; see docs/compatibility.md (Kylin).
"""

from __future__ import annotations

from api.facades.common import FacadeDeps
from api.facades.kylin.resources import (
    ACTIONS,
    CubeBuild,
    JobAction,
    JobDrop,
    JobItem,
    JobList,
    StepOutput,
)
from api.facades.kylin.wire import WIRE

BASE = "/kylin/api"
JOBS = BASE + "/jobs"

__all__ = ["WIRE", "routes"]


def routes(deps: FacadeDeps) -> list[tuple[str, object]]:
    """(URI template, resource) pairs this facade serves."""
    build = CubeBuild(deps)
    return [
        (JOBS, JobList(deps)),
        (JOBS + "/{job_id}", JobItem(deps)),
        (JOBS + "/{job_id}/steps/{step}/output", StepOutput(deps)),
        *((f"{JOBS}/{{job_id}}/{action.name}", JobAction(deps, action)) for action in ACTIONS),
        (JOBS + "/{job_id}/drop", JobDrop(deps)),
        (BASE + "/cubes/{cube}/rebuild", build),
        (BASE + "/cubes/{cube}/build", build),
    ]
