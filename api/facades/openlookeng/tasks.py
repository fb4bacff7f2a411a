"""`/v1/task`, `/v1/task/{taskId}` and `/v1/task/{taskId}/status`: TaskInfo, updates, long polls, ends."""

from __future__ import annotations

from typing import Any

import falcon

from api.facades.common import FacadeDeps, FacadeResource
from api.facades.longpoll import client_gone
from api.facades.openlookeng import wire
from api.facades.openlookeng.store import OpenLooKengTasks
from api.facades.openlookeng.taskinfo import DONE_STATES, task_info, task_status
from api.facades.openlookeng.wire import WIRE, refuse
from api.representations import written_doc
from ledger.commands import Written
from ledger.state import TaskState

# Done states the ledger can reach on request; the snapshot states of 1.10 have no ledger counterpart.
TARGETS = ("CANCELED", "ABORTED", "FINISHED", "FAILED")
# Finishing or failing a task is a worker's act in the ledger (its lease); cancelling and aborting are not.
LEASE_TARGETS = {"FINISHED": frozenset({"admin", "worker"}), "FAILED": frozenset({"admin", "worker"})}


class OpenLooKengResource(FacadeResource):
    """Base of the task resources: they share the store (and its long-poll slots) of the facade."""

    wire = WIRE

    def __init__(self, deps: FacadeDeps, tasks: OpenLooKengTasks) -> None:
        super().__init__(deps)
        self.tasks = tasks

    def answered(self, resp: falcon.Response, outcome: Written | TaskState) -> dict[str, Any]:
        """The task after a write (once the projections show it, named in `Ledger-Position`), or as it was."""
        if isinstance(outcome, TaskState):
            return outcome.to_dict()
        self.written(resp, outcome)
        return written_doc(outcome)


class TaskList(OpenLooKengResource):
    """`GET /v1/task`: the TaskInfo of every current openLooKeng task (`?summarize` is accepted)."""

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        self.read(req)
        now = self.deps.clock()
        resp.media = [task_info(doc, wire.base_url(req), now) for doc in self.tasks.all()]


class TaskItem(OpenLooKengResource):
    """`/v1/task/{taskId}`: read (with long poll), create or update, and end one task."""

    def on_get(self, req: falcon.Request, resp: falcon.Response, task_id: str) -> None:
        who = self.read(req)
        doc = _read(self.tasks, req, wire.check_task_id(task_id), who.name)
        resp.media = task_info(doc, wire.base_url(req), self.deps.clock())

    def on_post(self, req: falcon.Request, resp: falcon.Response, task_id: str) -> None:
        who = self.control(req, "change tasks")
        tid = wire.check_task_id(task_id)
        doc = self.answered(resp, self.tasks.upsert(tid, wire.read_update(req), self.caller(req, who)))
        resp.media = task_info(doc, wire.base_url(req), self.deps.clock())

    def on_delete(self, req: falcon.Request, resp: falcon.Response, task_id: str) -> None:
        who = self.control(req, "change tasks")
        tid = wire.check_task_id(task_id)
        target = _target_state(req)
        if target in LEASE_TARGETS and who.role not in LEASE_TARGETS[target]:
            raise refuse(403, f"Role {who.role!r} may not move a task to {target}; allowed roles: admin, worker.")
        doc = self.answered(resp, self.tasks.end(tid, target, self.caller(req, who)))
        resp.media = task_info(doc, wire.base_url(req), self.deps.clock())


class TaskStatusItem(OpenLooKengResource):
    """`GET /v1/task/{taskId}/status`: the short TaskStatus, with the same long poll."""

    def on_get(self, req: falcon.Request, resp: falcon.Response, task_id: str) -> None:
        who = self.read(req)
        doc = _read(self.tasks, req, wire.check_task_id(task_id), who.name)
        resp.media = task_status(doc, wire.base_url(req))


def _read(tasks: OpenLooKengTasks, req: falcon.Request, tid: str, user: str) -> dict[str, Any]:
    """The task now, or — given X-Presto-Current-State and X-Presto-Max-Wait — once its state changed
    (at once when the user or the worker already has as many long polls waiting as allowed)."""
    poll = wire.long_poll(req)
    if poll is None:
        return tasks.require(tid)
    current, wait = poll
    with tasks.long_polls.slot(user) as granted:
        return tasks.wait_change(tid, current, wait if granted else 0.0, client_gone(req.env))


def _target_state(req: falcon.Request) -> str:
    """`?targetState=` (1.2+, default ABORTED) or the older `?abort=true|false`; only done states."""
    target, abort = wire.single_param(req, "targetState"), wire.single_param(req, "abort")
    if target is not None and abort is not None:
        raise refuse(400, "Give targetState or abort, not both.")
    if abort is not None:
        if abort.lower() not in ("true", "false"):
            raise refuse(400, "abort must be true or false.")
        return "ABORTED" if abort.lower() == "true" else "CANCELED"
    target = "ABORTED" if target is None else target
    if target not in TARGETS:
        kind = "a done state taskledger supports" if target in DONE_STATES else "a done state"
        raise refuse(400, f"targetState must be {kind}: one of {', '.join(TARGETS)}.")
    return target
