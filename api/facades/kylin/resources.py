"""The Kylin jobs facade's resources: list, read, step output, pause/resume/cancel, drop, cube build."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import falcon

from api.facades.common import FacadeDeps, caller, guarded, wait_own_write
from api.facades.kylin import params as p
from api.facades.kylin.build import build_command
from api.facades.kylin.jobs import DROPPABLE, JOB_STATUS, is_kylin, job_instance, step_id
from api.facades.kylin.listing import search, v1_search, v2_search
from api.facades.kylin.wire import FACADE, KylinError, answer, caller_of, controller_of, error_reply, is_v2, to_reply
from api.parsing import read_json, wait_for_position
from api.representations import written_doc
from ledger import state as st
from ledger.application import TaskLedger
from ledger.commands import CancelTask, Caller, DropTask, PauseTask, ResumeTask, Written
from ledger.errors import IllegalTransitionError

_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_STEP = re.compile(r"(.+)-([0-9]{2,6})")


class KylinResource:
    """Methods a resource does not serve answer 405 in Kylin's error body, not problem+json."""

    METHODS = ("get", "put", "post", "delete", "patch")

    def __init__(self, deps: FacadeDeps) -> None:
        self.deps = deps
        self.allowed = [m.upper() for m in self.METHODS if hasattr(self, f"on_{m}")]
        for method in self.METHODS:
            if not hasattr(self, f"on_{method}"):
                setattr(self, f"on_{method}", self._not_allowed)

    def _not_allowed(self, req: falcon.Request, resp: falcon.Response, **params: Any) -> None:
        raise error_reply(req, 405, f"Request method '{req.method}' not supported",
                          {"Allow": ", ".join(self.allowed)})

    def on_options(self, req: falcon.Request, resp: falcon.Response, **params: Any) -> None:
        resp.set_header("Allow", ", ".join(self.allowed))


def reader_of(deps: FacadeDeps, req: falcon.Request) -> None:
    """Any role reads; a `Ledger-Min-Position` from a native write is honoured as in the native API."""
    caller_of(deps, req)
    wait_for_position(req, deps.view, deps.min_position_wait)


def load_job(deps: FacadeDeps, raw_id: str) -> dict[str, Any]:
    """The current document of a Kylin job, or 404 (unknown, dropped, or not in a kylin: namespace)."""
    if not _UUID.fullmatch(raw_id):
        raise KylinError(404, f"Cannot find job '{raw_id[:100]}'.")
    doc = deps.view.get(UUID(raw_id))
    if doc is None:
        # Created through another API a moment ago? Let the view catch up with the log once.
        wait_own_write(deps, deps.ledger.head_position())
        doc = deps.view.get(UUID(raw_id))
    if doc is None or doc.get("dropped") or not is_kylin(doc):
        raise KylinError(404, f"Cannot find job '{raw_id}'.")
    return doc


@guarded(to_reply)
class JobList(KylinResource):
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        reader_of(self.deps, req)
        query, now = p.query_of(req), self.deps.clock()
        docs, total = search(self.deps.view, v2_search(query, now) if is_v2(req) else v1_search(query, now))
        jobs = [job_instance(doc, now) for doc in docs]
        answer(req, resp, {"jobs": jobs, "size": total} if is_v2(req) else jobs)


@guarded(to_reply)
class JobItem(KylinResource):
    def on_get(self, req: falcon.Request, resp: falcon.Response, job_id: str) -> None:
        reader_of(self.deps, req)
        answer(req, resp, job_instance(load_job(self.deps, job_id), self.deps.clock()))


@guarded(to_reply)
class StepOutput(KylinResource):
    def on_get(self, req: falcon.Request, resp: falcon.Response, job_id: str, step: str) -> None:
        reader_of(self.deps, req)
        doc = load_job(self.deps, job_id)
        index = _step_index(doc, step)
        answer(req, resp, {"jobId": doc["id"], "stepId": step_id(doc["id"], index),
                           "cmd_output": doc["steps"][index].get("output", "")})


def _step_index(doc: dict[str, Any], raw: str) -> int:
    match = _STEP.fullmatch(raw)
    if match is None or match.group(1).lower() != doc["id"] or int(match.group(2)) >= len(doc["steps"]):
        raise KylinError(404, f"Cannot find step '{raw[:150]}' of job '{doc['id']}'.")
    return int(match.group(2))


@dataclass(frozen=True)
class Action:
    """A control action: the Kylin status it moves to, the states where Kylin finds nothing to do."""

    name: str
    target: str
    already: tuple[str, ...]
    run: Callable[[TaskLedger, UUID, Caller], Written]


ACTIONS = (
    Action("pause", "STOPPED", (st.PAUSED,), lambda ledger, i, who: ledger.pause_task(PauseTask(i), who)),
    Action("resume", "PENDING", (st.QUEUED,), lambda ledger, i, who: ledger.resume_task(ResumeTask(i), who)),
    Action("cancel", "DISCARDED", (st.CANCELLED, st.ABORTED),
           lambda ledger, i, who: ledger.cancel_task(CancelTask(i), who)),
)


@guarded(to_reply)
class JobAction(KylinResource):
    """`PUT /jobs/{id}/pause|resume|cancel`: the domain command, then the job as it is now."""

    def __init__(self, deps: FacadeDeps, action: Action) -> None:
        super().__init__(deps)
        self.action = action

    def on_put(self, req: falcon.Request, resp: falcon.Response, job_id: str) -> None:
        who = controller_of(self.deps, req)
        doc = load_job(self.deps, job_id)
        try:
            written = self.action.run(self.deps.ledger, UUID(doc["id"]), caller(req, who, FACADE))
        except IllegalTransitionError as error:
            if error.state not in self.action.already:
                raise KylinError(400, refusal(self.action, doc["id"], error)) from error
            # Kylin: setting the same state is a no-op; answer the job as the view shows it once caught up.
            wait_own_write(self.deps, self.deps.ledger.head_position())
            answer(req, resp, job_instance(load_job(self.deps, job_id), self.deps.clock()))
            return
        wait_own_write(self.deps, written.position)
        answer(req, resp, job_instance(written_doc(written), self.deps.clock()))


def refusal(action: Action, job_id: str, error: IllegalTransitionError) -> str:
    """Kylin's own wording for a refused transfer, with the reason in Kylin's terms."""
    status = JOB_STATUS.get(error.state, error.state)
    allowed = list(dict.fromkeys(JOB_STATUS[s] for s in error.allowed if s in JOB_STATUS))
    why = ("the job is being discarded" if error.state == st.CANCELLING
           else f"{action.name} is allowed only for {', '.join(allowed)} jobs")
    return f"there is no valid state transfer from:{status} to:{action.target}, job id: {job_id} ({why})"


@guarded(to_reply)
class JobDrop(KylinResource):
    """`DELETE /jobs/{id}/drop`: only FINISHED or DISCARDED jobs; answers the job as it was."""

    def on_delete(self, req: falcon.Request, resp: falcon.Response, job_id: str) -> None:
        who = controller_of(self.deps, req)
        doc = load_job(self.deps, job_id)
        if doc["state"] not in DROPPABLE:
            # The view may not show a job that ended a moment ago: look again once it caught up.
            wait_own_write(self.deps, self.deps.ledger.head_position())
            doc = load_job(self.deps, job_id)
        if doc["state"] not in DROPPABLE:
            raise KylinError(400, f"Cannot drop running job {doc['name']}, please discard it first.")
        written = self.deps.ledger.drop_task(DropTask(UUID(doc["id"])), caller(req, who, FACADE))
        wait_own_write(self.deps, written.position)
        answer(req, resp, job_instance(doc, self.deps.clock()))


@guarded(to_reply)
class CubeBuild(KylinResource):
    """`PUT /cubes/{cube}/rebuild` (and `/build`): a new cubing job in `kylin:<project>`."""

    def on_put(self, req: falcon.Request, resp: falcon.Response, cube: str) -> None:
        who = controller_of(self.deps, req)
        project = p.text(p.query_of(req), "project")
        command = build_command(cube, read_json(req), project, self.deps.clock())
        written = self.deps.ledger.create_task(command, caller(req, who, FACADE))
        wait_own_write(self.deps, written.position)
        answer(req, resp, job_instance(written_doc(written), self.deps.clock()))


@guarded(to_reply)
class Unknown(KylinResource):
    """Any other path under /kylin/api: 404 in Kylin's error body, so kylinpy can show the reason."""

    def _unknown(self, req: falcon.Request, resp: falcon.Response, **params: Any) -> None:
        raise KylinError(404, f"No handler found for {req.method} {req.path}")

    on_get = on_put = on_post = on_delete = on_patch = _unknown
