"""HugeGraph's wire format: task statuses, the task map (`HugeTask.asMap`) and the error body."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone
from typing import Any

import falcon

from api.facades.common import FacadeReply, Refusal, Wire
from ledger import errors as le
from ledger import state as st
from projections.queries import InvalidCursorError

FACADE = "hugegraph"
DEFAULT_GRAPHSPACE = "DEFAULT"
CONTENT_TYPE = "application/json"

# TaskStatus names in declaration order (1.5+), as the real "Status value must be in [...]" lists them.
STATUS_NAMES = ("UNKNOWN", "NEW", "SCHEDULING", "SCHEDULED", "QUEUED", "RESTORING", "RUNNING", "SUCCESS",
                "CANCELLING", "CANCELLED", "FAILED", "HANGING", "DELETING")

# DESIGN §3.1: how each ledger state shows as `task_status`.
STATUS_OF_STATE = {
    st.QUEUED: "queued", st.RUNNING: "running", st.PAUSED: "queued", st.CANCELLING: "cancelling",
    st.SUCCEEDED: "success", st.FAILED: "failed", st.CANCELLED: "cancelled", st.ABORTED: "cancelled",
}
COMPLETED = ("success", "cancelled", "failed")

# The Java class HugeGraph reports as `task_callable` for the job types it ships.
CALLABLES = {
    "gremlin": "org.apache.hugegraph.job.GremlinJob",
    "computer": "org.apache.hugegraph.job.ComputerJob",
    "algorithm": "org.apache.hugegraph.job.AlgorithmJob",
    "rebuild_index": "org.apache.hugegraph.job.schema.IndexLabelRebuildJob",
}
OTHER_CALLABLE = "org.apache.hugegraph.job.UserJob"

ILLEGAL_ARGUMENT = "java.lang.IllegalArgumentException"
HUGE_EXCEPTION = "org.apache.hugegraph.HugeException"
NOT_FOUND = "org.apache.hugegraph.exception.NotFoundException"
JAXRS_NOT_FOUND = "jakarta.ws.rs.NotFoundException"
BAD_REQUEST = "jakarta.ws.rs.BadRequestException"
NOT_AUTHORIZED = "jakarta.ws.rs.NotAuthorizedException"
FORBIDDEN = "jakarta.ws.rs.ForbiddenException"
NOT_ALLOWED = "jakarta.ws.rs.NotAllowedException"
NOT_SUPPORTED = "jakarta.ws.rs.NotSupportedException"
CONFLICT = "jakarta.ws.rs.ClientErrorException"
EXCEPTION_BY_STATUS = {400: ILLEGAL_ARGUMENT, 401: NOT_AUTHORIZED, 403: FORBIDDEN, 404: JAXRS_NOT_FOUND,
                       405: NOT_ALLOWED, 409: CONFLICT, 413: ILLEGAL_ARGUMENT, 415: NOT_SUPPORTED,
                       503: "jakarta.ws.rs.ServiceUnavailableException"}

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def namespace(graphspace: str, graph: str) -> str:
    return f"{FACADE}:{graphspace}/{graph}"


def status_of(doc: dict[str, Any]) -> str:
    return STATUS_OF_STATE[doc["state"]]


def states_for(status_name: str) -> tuple[str, ...]:
    """The ledger states shown as a TaskStatus name; () for statuses no ledger task can have."""
    return tuple(state for state, shown in STATUS_OF_STATE.items() if shown.upper() == status_name)


def task_number(doc: dict[str, Any]) -> int | None:
    """The task's HugeGraph id, or None for a task given a non-numeric external id natively."""
    number = doc.get("external_ids", {}).get(FACADE)
    return int(number) if isinstance(number, str) and number.isascii() and number.isdigit() else None


def task_map(doc: dict[str, Any], details: bool) -> dict[str, Any]:
    """`HugeTask.asMap(details)`: lists leave out the callable, input and result."""
    body: dict[str, Any] = {
        "id": task_number(doc), "task_type": doc["type"], "task_name": doc["name"],
        "task_status": status_of(doc), "task_progress": int(doc.get("progress") or 0),
        "task_create": millis(doc["created_at"]), "task_retries": int(doc.get("retries") or 0),
    }
    optional = {"task_description": (doc.get("labels") or {}).get("description"),
                "task_update": millis(doc["updated_at"]) if doc.get("updated_at") else None,
                "task_server": doc.get("worker")}
    body.update({key: value for key, value in optional.items() if value is not None})
    if details:
        body["task_callable"] = CALLABLES.get(doc["type"], OTHER_CALLABLE)
        outcome = doc.get("result") if doc.get("result") is not None else doc.get("error")
        for key, value in (("task_input", doc.get("input")), ("task_result", outcome)):
            if value is not None:
                body[key] = as_text(value)
    return body


def millis(iso: str) -> int:
    """An ISO-8601 instant as milliseconds since the epoch (HugeGraph serialises `Date` as a number)."""
    return (datetime.fromisoformat(iso) - _EPOCH) // timedelta(milliseconds=1)


def as_text(value: Any) -> str:
    """HugeGraph keeps task input and result as strings: text stays text, other JSON becomes JSON text.

    Keys are sorted so the text is the same whichever read model the value came from.
    """
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, sort_keys=True)


def error(status: int, exception: str, message: str, headers: dict[str, str] | None = None) -> Refusal:
    """A refusal answered in HugeGraph's `ExceptionFilter` format, naming the Java exception class."""
    return Refusal(status, message, headers, exception=exception)


def task_not_found(number: int) -> Refusal:
    return error(404, NOT_FOUND, f"Can't find task with id '{number}'")


def bad_argument(message: str) -> Refusal:
    return error(400, ILLEGAL_ARGUMENT, message)


class HugeGraphWire(Wire):
    """HugeGraph's `{"exception": "class …", "message", "cause"}` errors, JAX-RS statuses and texts."""

    name = FACADE
    paths = re.compile(r"/(graphspaces|graphs)(/|$)|/versions$")

    def render(self, req: falcon.Request, refusal: Refusal) -> FacadeReply:
        exception = refusal.detail.get("exception") or EXCEPTION_BY_STATUS.get(refusal.status, HUGE_EXCEPTION)
        body = {"exception": f"class {exception}", "message": refusal.message or "", "cause": ""}
        return FacadeReply(refusal.status, body, refusal.headers, CONTENT_TYPE)

    def unauthenticated(self, req: falcon.Request) -> str:
        return ("Authentication credentials are required" if req.get_header("Authorization") is None
                else "Authentication failed")

    def forbidden(self, role: str, roles: frozenset[str], action: str) -> str:
        return f"Permission denied: role '{role}' may not {action} (allowed roles: {', '.join(sorted(roles))})"

    def not_allowed(self, req: falcon.Request, allowed: tuple[str, ...]) -> str:
        return "HTTP 405 Method Not Allowed"

    def unknown_path(self, req: falcon.Request) -> Refusal:
        return error(404, JAXRS_NOT_FOUND, f"No resource found for '{req.path}'")

    def ledger_refusal(self, req: falcon.Request, failure: le.LedgerError) -> Refusal:
        if isinstance(failure, le.ConcurrentWriteError):
            return error(409, CONFLICT, str(failure))
        return bad_argument(str(failure))

    def http_refusal(self, req: falcon.Request, failure: falcon.HTTPError) -> Refusal:
        refusal = super().http_refusal(req, failure)
        refusal.message = refusal.message or "Bad request"
        return refusal

    def cursor_refusal(self, req: falcon.Request, failure: InvalidCursorError) -> Refusal:
        return error(400, HUGE_EXCEPTION, f"Invalid page: {failure}")


WIRE = HugeGraphWire()
