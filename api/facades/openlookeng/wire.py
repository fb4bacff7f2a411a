"""Reading openLooKeng requests and answering its errors: plain text (this API has no JSON error body)."""

from __future__ import annotations

import re
from typing import Any

import falcon

from api.facades.common import FacadeReply, Refusal, Wire
from api.facades.openlookeng import formats as f
from api.facades.openlookeng.taskinfo import FACADE, STATES, TASK_STATES
from api.parsing import read_json_or_none, storable
from ledger import errors as le

WRITERS = frozenset({"admin", "operator", "worker"})
MAX_TASK_ID = 200
MAX_BODY = 8 * 1024 * 1024
MAX_LONG_POLL = 60.0
TEXT = "text/plain; charset=utf-8"
_TASK_PATH = re.compile(r"/v1/task/([^/]+)")
# A refused ledger action, as a coordinator would ask for it.
ACTIONS = {"complete": "be moved to FINISHED", "fail": "be moved to FAILED", "cancel": "be canceled",
           "abort": "be aborted", "update": "be updated", "close output": "have a buffer closed"}


def refuse(status: int, message: str | None, headers: dict[str, str] | None = None) -> Refusal:
    """An error as the real server writes one: a status and a short plain-text line (or nothing)."""
    return Refusal(status, message, headers)


class OpenLooKengWire(Wire):
    """Plain-text errors (this API has no JSON error body); tasks change by the roles that run them."""

    name = FACADE
    paths = re.compile(r"/v1/task(/|$)")
    controllers = WRITERS
    challenge = 'Basic realm="taskledger"'
    ledger_status = {
        le.TaskNotFoundError: 404, le.TaskDroppedError: 410, le.IllegalTransitionError: 409,
        le.LeaseMismatchError: 409, le.ConcurrentWriteError: 409, le.DuplicateTaskError: 409,
    }

    def render(self, req: falcon.Request, refusal: Refusal) -> FacadeReply:
        message = refusal.message
        return FacadeReply(refusal.status, message, refusal.headers, TEXT if message is not None else None)

    def ledger_refusal(self, req: falcon.Request, error: le.LedgerError) -> Refusal:
        """Said of the task the path names, in its wire states: never the ledger's ids and states."""
        refusal = super().ledger_refusal(req, error)
        match = _TASK_PATH.match(req.path)
        task = f"Task {match.group(1)}" if match else "The task"
        if isinstance(error, le.IllegalTransitionError):
            shown = STATES.get(error.state, error.state)
            refusal.message = f"{task} is {shown}; it cannot {ACTIONS.get(error.action, 'change that way')} now."
        elif isinstance(error, le.LeaseMismatchError):
            refusal.message = f"{task} has been taken over by another worker; this request is no longer current."
        elif isinstance(error, le.ConcurrentWriteError):
            refusal.message = f"{task} was changed by another request; retry."
        elif isinstance(error, le.DuplicateTaskError):
            refusal.message = f"{task} already exists."
        elif isinstance(error, le.TaskNotFoundError):
            refusal.message = f"{task} is not known."
        elif isinstance(error, le.TaskDroppedError):
            refusal.message = f"{task} was dropped; its history is still readable in the native API."
        return refusal

    def internal(self, req: falcon.Request) -> Refusal:
        return refuse(500, "The server could not answer; the error was logged.")


WIRE = OpenLooKengWire()


def check_task_id(raw: str) -> str:
    """1 to 200 printable characters without whitespace (the dotted `query.stage.partition` form is usual)."""
    if not 0 < len(raw) <= MAX_TASK_ID or not all(ch.isprintable() and not ch.isspace() for ch in raw) \
            or "/" in raw or not storable(raw):
        raise refuse(404, f"A task id is 1 to {MAX_TASK_ID} printable characters without spaces.")
    return raw


def base_url(req: falcon.Request) -> str:
    return req.prefix


def single_param(req: falcon.Request, name: str) -> str | None:
    value = req.params.get(name)
    if isinstance(value, list):
        raise refuse(400, f"Query parameter {name} must be given once.")
    return value


def long_poll(req: falcon.Request) -> tuple[str, float] | None:
    """(X-Presto-Current-State, X-Presto-Max-Wait in seconds, capped) when both are given; each is checked."""
    current = req.get_header("X-Presto-Current-State")
    raw_wait = req.get_header("X-Presto-Max-Wait")
    if current is not None and current.strip() not in TASK_STATES:
        raise refuse(400, f"X-Presto-Current-State must be one of {', '.join(TASK_STATES)}.")
    wait = header_duration(raw_wait, "X-Presto-Max-Wait")
    if current is None or wait is None:
        return None
    return current.strip(), min(wait, MAX_LONG_POLL)


def header_duration(raw: str | None, name: str) -> float | None:
    if raw is None:
        return None
    try:
        return f.parse_duration(raw)
    except ValueError:
        raise refuse(400, f"{name} must be a duration such as 1.00s or 500ms.") from None


def header_data_size(raw: str | None, name: str, default: int) -> int:
    if raw is None:
        return default
    try:
        return f.parse_data_size(raw)
    except ValueError:
        raise refuse(400, f"{name} must be a data size such as 16MB or 1.50kB.") from None


def read_update(req: falcon.Request) -> dict[str, Any]:
    """A TaskUpdateRequest as JSON (a body the coordinator sends without a media type is taken as JSON)."""
    body = read_json_or_none(req, max_bytes=MAX_BODY, media_default="application/json")
    if body is None:
        raise refuse(400, None)  # what the real server answers to an empty or null body
    return dict(body)
