"""Worker endpoints that span tasks: claiming the next task, and heartbeats in bulk."""

from __future__ import annotations

import time
from typing import Any

import falcon

from api.metrics import CLAIM_LATENCY
from api.parsing import caller
from api.problems import ledger_problem, problem_body
from api.representations import receipt, task_doc, write_headers, written_doc
from ledger.application import TaskLedger
from ledger.commands import Caller, ClaimTask, RecordHeartbeat, Written
from ledger.errors import LedgerError, NoTaskAvailableError
from projections.queries import TaskView

CANDIDATES = 20
CLAIM_ROUNDS = 3
CATCH_UP_WAIT = 1.0


class Claims:
    """`/claims`: hands the oldest matching queued task to a worker; 204 when there is none."""

    def __init__(self, ledger: TaskLedger, view: TaskView, wait: float) -> None:
        self.ledger, self.view, self.wait = ledger, view, min(wait, CATCH_UP_WAIT)

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        started = time.perf_counter()
        try:
            written = self._claim(req.context.body, caller(req))
        except NoTaskAvailableError:
            CLAIM_LATENCY.labels("none").observe(time.perf_counter() - started)
            resp.status = falcon.HTTP_204
            return
        CLAIM_LATENCY.labels("claimed").observe(time.perf_counter() - started)
        resp.media = {**receipt(written), "task": task_doc(written_doc(written))}
        write_headers(resp, written)

    def _claim(self, body: dict[str, Any], who: Caller) -> Written:
        for _ in range(CLAIM_ROUNDS):
            # Read the log head before the candidates: if the view had reached it, an empty
            # answer is the truth as of that head, not a lagging view.
            head = self.ledger.head_position()
            view_was_current = self.view.wait_for(head, 0)
            candidates = self.view.claim_candidates(body.get("namespace"), body.get("type"), CANDIDATES)
            try:
                return self.ledger.claim_task(ClaimTask(body["worker"], tuple(candidates)), who)
            except NoTaskAvailableError:
                if view_was_current and len(candidates) < CANDIDATES:
                    raise
                self.view.wait_for(self.ledger.head_position(), self.wait)
        raise NoTaskAvailableError("the task view kept lagging behind the claims")


class Heartbeats:
    """`/heartbeats`: many heartbeats in one transaction; each item answers its own status."""

    def __init__(self, ledger: TaskLedger) -> None:
        self.ledger = ledger

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        items = [dict(item) for item in req.context.body["heartbeats"]]
        commands = [RecordHeartbeat(item.pop("task_id"), **item) for item in items]
        done = self.ledger.record_heartbeats(commands, caller(req))
        results = [_result(cmd, outcome, req.path) for cmd, outcome in zip(commands, done)]
        resp.media = {"results": results}
        positions = [r["position"] for r in results if "position" in r]
        if positions:
            resp.set_header("Ledger-Position", str(max(positions)))


def _result(cmd: RecordHeartbeat, outcome: Written | LedgerError, path: str) -> dict[str, Any]:
    if isinstance(outcome, LedgerError):
        problem = ledger_problem(outcome)
        return {"task_id": str(cmd.task_id), "status": problem.status_code, "problem": problem_body(problem, path)}
    return {"task_id": str(cmd.task_id), "status": 200, "directive": outcome.directive,
            "version": outcome.version, "position": outcome.position}
