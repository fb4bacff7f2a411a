"""Reading openLooKeng requests and answering its errors: plain text (this API has no JSON error body)."""

from __future__ import annotations

import json
import math
from typing import Any

import falcon

from api.auth import Principal
from api.facades.common import FacadeDeps, FacadeReply, principal
from api.facades.openlookeng import formats as f
from api.facades.openlookeng.taskinfo import TASK_STATES
from api.parsing import storable
from ledger import errors as le

CHALLENGE = 'Basic realm="taskledger"'
WRITERS = frozenset({"admin", "operator", "worker"})
MAX_TASK_ID = 200
MAX_BODY = 8 * 1024 * 1024
MAX_LONG_POLL = 60.0
TEXT = "text/plain; charset=utf-8"

_STATUS = ((le.TaskNotFoundError, 404), (le.TaskDroppedError, 410), (le.IllegalTransitionError, 409),
           (le.LeaseMismatchError, 409), (le.ConcurrentWriteError, 409), (le.DuplicateTaskError, 409))


def refuse(status: int, message: str | None, headers: dict[str, str] | None = None) -> FacadeReply:
    """An error as the real server writes one: a status and a short plain-text line (or nothing)."""
    return FacadeReply(status, message, headers or {}, TEXT if message is not None else None)


def error_reply(req: falcon.Request, error: Exception) -> FacadeReply:
    """Any error a responder raised, in this API's format."""
    if isinstance(error, falcon.HTTPError):
        return refuse(error.status_code, error.description or error.title, dict(error.headers or {}))
    if isinstance(error, le.LedgerError):
        status = next((code for cls, code in _STATUS if isinstance(error, cls)), 400)
        return refuse(status, str(error))
    return refuse(500, "The server could not answer; the error was logged.")


def authorize(deps: FacadeDeps, req: falcon.Request, write: bool = False) -> Principal:
    """The caller; reads are open to every role, writes to the roles that run tasks (admin, operator, worker)."""
    who = principal(deps, req)
    if who is None:
        raise refuse(401, "This endpoint needs credentials: HTTP Basic or a bearer token.",
                     {"WWW-Authenticate": CHALLENGE})
    if write and who.role not in WRITERS:
        raise refuse(403, f"Role {who.role!r} may not change tasks; allowed roles: admin, operator, worker.")
    return who


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
    """A TaskUpdateRequest: any JSON object (unknown fields are kept, as the real server ignores them)."""
    raw = req.bounded_stream.read(MAX_BODY + 1)
    if len(raw) > MAX_BODY:
        raise refuse(413, f"The request body must be at most {MAX_BODY} bytes.")
    media = (req.content_type or "application/json").partition(";")[0].strip().lower()
    if raw.strip() and media != "application/json" and not media.endswith("+json"):
        raise refuse(415, "The body must be JSON (application/json); Smile is not supported.")
    try:
        body = json.loads(raw.decode("utf-8"), parse_constant=_not_json, parse_float=_finite) if raw.strip() else None
    except (ValueError, RecursionError):
        raise refuse(400, "The body must be valid JSON (UTF-8).") from None
    if body is None:
        raise refuse(400, None)  # what the real server answers to an empty or null body
    if not isinstance(body, dict):
        raise refuse(400, "The body must be a JSON object (a TaskUpdateRequest).")
    if not _storable(body):
        raise refuse(400, "The body must not contain NUL characters or unpaired surrogates.")
    return body


def _not_json(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError("number out of range")
    return value


def _storable(value: Any) -> bool:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str) and not storable(item):
            return False
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return True


METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


def other_methods_refused(cls: type) -> type:
    """Class decorator: methods a resource does not serve get this API's plain 405, not problem+json."""
    allowed = [m for m in METHODS if hasattr(cls, f"on_{m.lower()}")]

    def not_allowed(self: Any, req: falcon.Request, resp: falcon.Response, **params: Any) -> None:
        raise refuse(405, f"{req.method} is not allowed here; allowed: {', '.join(allowed)}.",
                     {"Allow": ", ".join(allowed)})

    for method in METHODS:
        if method not in allowed:
            setattr(cls, f"on_{method.lower()}", not_allowed)
    return cls
