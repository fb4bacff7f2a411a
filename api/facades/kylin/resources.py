"""The Kylin jobs facade's resources: list, read, step output, pause/resume/cancel, drop, cube build."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any
from uuid import UUID

import falcon

from api.facades.common import FacadeDeps, FacadeResource, Refusal
from api.facades.kylin import params as p
from api.facades.kylin.build import build_command
from api.facades.kylin.jobs import DROPPABLE, JOB_STATUS, is_kylin, job_instance, step_id
from api.facades.kylin.listing import search, v1_search, v2_search
from api.facades.kylin.wire import WIRE, answer, is_v2
from api.parsing import read_json
from api.representations import written_doc
from ledger import state as st
from ledger.application import TaskLedger
from ledger.commands import CancelTask, Caller, DropTask, PauseTask, ResumeTask, Written
from ledger.errors import IllegalTransitionError

_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_STEP = re.compile(r"(.+)-([0-9]{2,6})")


class KylinResource(FacadeResource):
    wire = WIRE

    def load_job(self, raw_id: str) -> dict[str, Any]:
        """The current document of a Kylin job, or 404 (unknown, dropped, or not in a kylin: namespace)."""
        if not _UUID.fullmatch(raw_id):
            raise Refusal(404, f"Cannot find job '{raw_id[:100]}'.")
        doc = self.deps.view.get(UUID(raw_id))
        if doc is None:
            # Created through another API a moment ago? Let the view catch up with the log once.
            self.caught_up()
            doc = self.deps.view.get(UUID(raw_id))
        if doc is None or doc.get("dropped") or not is_kylin(doc):
            raise Refusal(404, f"Cannot find job '{raw_id}'.")
        return doc


class JobList(KylinResource):
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        who = self.read(req)
        query, now = p.query_of(req), self.deps.clock()
        job_search = v2_search(query, now) if is_v2(req) else v1_search(query, now)
        docs, total = search(self.deps.view, replace(job_search, caller=who.name))
        jobs = [job_instance(doc, now) for doc in docs]
        answer(req, resp, {"jobs": jobs, "size": total} if is_v2(req) else jobs)


class JobItem(KylinResource):
    def on_get(self, req: falcon.Request, resp: falcon.Response, job_id: str) -> None:
        self.read(req)
        answer(req, resp, job_instance(self.load_job(job_id), self.deps.clock()))


class StepOutput(KylinResource):
    def on_get(self, req: falcon.Request, resp: falcon.Response, job_id: str, step: str) -> None:
        self.read(req)
        doc = self.load_job(job_id)
        index = _step_index(doc, step)
        answer(req, resp, {"jobId": doc["id"], "stepId": step_id(doc["id"], index),
                           "cmd_output": doc["steps"][index].get("output", "")})


def _step_index(doc: dict[str, Any], raw: str) -> int:
    match = _STEP.fullmatch(raw)
    if match is None or match.group(1).lower() != doc["id"] or int(match.group(2)) >= len(doc["steps"]):
        raise Refusal(404, f"Cannot find step '{raw[:150]}' of job '{doc['id']}'.")
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


class JobAction(KylinResource):
    """`PUT /jobs/{id}/pause|resume|cancel`: the domain command, then the job as it is now."""

    def __init__(self, deps: FacadeDeps, action: Action) -> None:
        super().__init__(deps)
        self.action = action

    def on_put(self, req: falcon.Request, resp: falcon.Response, job_id: str) -> None:
        who = self.control(req, f"{self.action.name} jobs")
        doc = self.load_job(job_id)
        try:
            written = self.action.run(self.deps.ledger, UUID(doc["id"]), self.caller(req, who))
        except IllegalTransitionError as error:
            if error.state not in self.action.already:
                raise Refusal(400, refusal(self.action, doc["id"], error)) from error
            # Kylin: setting the same state is a no-op; answer the job as the view shows it once caught up.
            self.caught_up()
            answer(req, resp, job_instance(self.load_job(job_id), self.deps.clock()))
            return
        self.written(resp, written)
        answer(req, resp, job_instance(written_doc(written), self.deps.clock()))


def refusal(action: Action, job_id: str, error: IllegalTransitionError) -> str:
    """Kylin's own wording for a refused transfer, with the reason in Kylin's terms."""
    status = JOB_STATUS.get(error.state, error.state)
    allowed = list(dict.fromkeys(JOB_STATUS[s] for s in error.allowed if s in JOB_STATUS))
    why = ("the job is being discarded" if error.state == st.CANCELLING
           else f"{action.name} is allowed only for {', '.join(allowed)} jobs")
    return f"there is no valid state transfer from:{status} to:{action.target}, job id: {job_id} ({why})"


class JobDrop(KylinResource):
    """`DELETE /jobs/{id}/drop`: only FINISHED or DISCARDED jobs; answers the job as it was."""

    def on_delete(self, req: falcon.Request, resp: falcon.Response, job_id: str) -> None:
        who = self.control(req, "drop jobs")
        doc = self.load_job(job_id)
        if doc["state"] not in DROPPABLE:
            # The view may not show a job that ended a moment ago: look again once it caught up.
            self.caught_up()
            doc = self.load_job(job_id)
        if doc["state"] not in DROPPABLE:
            raise Refusal(400, f"Cannot drop running job {doc['name']}, please discard it first.")
        written = self.deps.ledger.drop_task(DropTask(UUID(doc["id"])), self.caller(req, who))
        self.written(resp, written)
        answer(req, resp, job_instance(doc, self.deps.clock()))


class CubeBuild(KylinResource):
    """`PUT /cubes/{cube}/rebuild` (and `/build`): a new cubing job in `kylin:<project>`."""

    def on_put(self, req: falcon.Request, resp: falcon.Response, cube: str) -> None:
        who = self.control(req, "build cubes")
        project = p.text(p.query_of(req), "project")
        command = build_command(cube, read_json(req), project, self.deps.clock())
        written = self.deps.ledger.create_task(command, self.caller(req, who))
        self.written(resp, written)
        answer(req, resp, job_instance(written_doc(written), self.deps.clock()))
