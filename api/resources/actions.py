"""Task actions: lifecycle verbs, step updates and output pages, each answering a write receipt."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import falcon
from marshmallow import Schema

from api import schemas as s
from api.auth import CONTROL, WORK
from api.parsing import caller, idempotency_key
from api.problems import Problem
from api.representations import receipt, write_headers
from ledger import commands as c
from ledger.application import TaskLedger

BUFFER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")

Perform = Callable[[TaskLedger, UUID, dict[str, Any], c.Caller], c.Written]
IDEMPOTENT = ("Idempotency-Key",)


@dataclass(frozen=True)
class Action:
    """One lifecycle verb: its body, who may use it, the command it issues and the headers it reads.

    With `Idempotency-Key` among its headers, the command gets the key as `idempotency_key`."""

    name: str
    summary: str
    schema: type[Schema]
    roles: frozenset[str]
    perform: Perform
    headers: tuple[str, ...] = ()


ACTIONS = (
    Action("start", "Start a queued task", s.StartSchema, WORK,
           lambda led, tid, body, who: led.start_task(c.StartTask(tid, **body), who)),
    Action("heartbeat", "Record a heartbeat and learn the directive", s.HeartbeatSchema, WORK,
           lambda led, tid, body, who: led.record_heartbeat(c.RecordHeartbeat(tid, **body), who)),
    Action("progress", "Report progress", s.ProgressSchema, WORK,
           lambda led, tid, body, who: led.report_progress(c.ReportProgress(tid, **body), who)),
    Action("complete", "Complete a running task", s.CompleteSchema, WORK,
           lambda led, tid, body, who: led.complete_task(c.CompleteTask(tid, **body), who), IDEMPOTENT),
    Action("fail", "Fail a running task (requeued while retries are left); a cancelling task ends CANCELLED", s.FailSchema, WORK,
           lambda led, tid, body, who: led.fail_task(c.FailTask(tid, **body), who), IDEMPOTENT),
    Action("pause", "Pause a task", s.ReasonSchema, CONTROL,
           lambda led, tid, body, who: led.pause_task(c.PauseTask(tid, **body), who)),
    Action("resume", "Resume a paused or failed task", s.EmptySchema, CONTROL,
           lambda led, tid, body, who: led.resume_task(c.ResumeTask(tid), who)),
    Action("cancel", "Cancel a task", s.ReasonSchema, CONTROL,
           lambda led, tid, body, who: led.cancel_task(c.CancelTask(tid, **body), who)),
    Action("abort", "Abort a task", s.ReasonSchema, CONTROL,
           lambda led, tid, body, who: led.abort_task(c.AbortTask(tid, **body), who)),
)


def answer(resp: falcon.Response, written: c.Written, body: dict[str, Any]) -> None:
    """The write receipt; `lease_epoch` is the lease the write was made under, when it had one."""
    resp.media = receipt(written, lease_epoch=written.lease_epoch or body.get("lease_epoch"))
    write_headers(resp, written)
    if written.replayed:
        resp.set_header("Idempotent-Replayed", "true")


class TaskAction:
    """`/tasks/{id}/<verb>`."""

    def __init__(self, ledger: TaskLedger, action: Action) -> None:
        self.ledger, self.action = ledger, action

    def on_post(self, req: falcon.Request, resp: falcon.Response, task_id: UUID) -> None:
        body = req.context.body
        fields = {**body, "idempotency_key": idempotency_key(req)} if "Idempotency-Key" in self.action.headers else body
        answer(resp, self.action.perform(self.ledger, task_id, fields, caller(req)), body)


class TaskStep:
    """`/tasks/{id}/steps/{index}`: a worker updates one step's status or output."""

    def __init__(self, ledger: TaskLedger) -> None:
        self.ledger = ledger

    def on_post(self, req: falcon.Request, resp: falcon.Response, task_id: UUID, index: int) -> None:
        body = req.context.body
        answer(resp, self.ledger.update_step(c.UpdateStep(task_id, step=index, **body), caller(req)), body)


class TaskOutput:
    """`/tasks/{id}/outputs/{buffer}`: append a page of output, or close the buffer."""

    def __init__(self, ledger: TaskLedger) -> None:
        self.ledger = ledger

    def on_post(self, req: falcon.Request, resp: falcon.Response, task_id: UUID, buffer: str) -> None:
        body = req.context.body
        cmd = c.AppendOutput(task_id, buffer=_buffer(buffer), **body)
        answer(resp, self.ledger.append_output(cmd, caller(req)), body)

    def on_delete(self, req: falcon.Request, resp: falcon.Response, task_id: UUID, buffer: str) -> None:
        answer(resp, self.ledger.close_output(c.CloseOutput(task_id, _buffer(buffer)), caller(req)), {})


def _buffer(name: str) -> str:
    if not BUFFER_NAME.fullmatch(name):
        raise Problem(404, "not-found", "An output buffer name is 1 to 128 letters, digits, '.', '_' or '-'.")
    return name
