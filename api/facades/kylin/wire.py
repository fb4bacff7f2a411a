"""Kylin's wire conventions: the v2 envelope or bare v1 JSON, its error body, its callers and roles."""

from __future__ import annotations

import json
import logging
from typing import Any

import falcon

from api.auth import CHALLENGE, CONTROL, READ, Principal
from api.facades.common import FacadeDeps, FacadeReply, principal
from api.problems import Problem
from ledger import errors as le

log = logging.getLogger(__name__)

FACADE = "kylin"
V2_MEDIA = "application/vnd.apache.kylin-v2+json"
V1_MEDIA = "application/json"
SUCCESS = "000"
UNDEFINED = "999"

LEDGER_STATUS: dict[type[le.LedgerError], int] = {
    le.TaskNotFoundError: 404,
    le.TaskDroppedError: 404,
    le.IllegalTransitionError: 400,
    le.InvalidValueError: 400,
    le.ConcurrentWriteError: 409,
    le.DuplicateTaskError: 409,
}


class KylinError(ValueError):
    """A refusal the facade answers in Kylin's error body with this HTTP status (an expected outcome, not logged)."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


def is_v2(req: falcon.Request) -> bool:
    """Kylin routes a request to its v2 controllers when Accept names the v2 media type."""
    return V2_MEDIA in (req.get_header("Accept") or "").lower()


def media_type(req: falcon.Request) -> str:
    return f"{V2_MEDIA if is_v2(req) else V1_MEDIA};charset=UTF-8"


def answer(req: falcon.Request, resp: falcon.Response, data: Any) -> None:
    """200 with the data: inside the envelope for v2, bare for v1."""
    body = {"code": SUCCESS, "data": data, "msg": ""} if is_v2(req) else data
    resp.status = falcon.HTTP_200
    resp.content_type = media_type(req)
    resp.data = json.dumps(body).encode()


def error_reply(req: falcon.Request, status: int, message: str,
                headers: dict[str, str] | None = None) -> FacadeReply:
    """Kylin's ErrorResponse; `exception` is what kylinpy shows as the error's text."""
    body = {"code": UNDEFINED, "data": None, "msg": message, "stacktrace": "", "exception": message,
            "url": req.url}
    return FacadeReply(status, json.dumps(body), dict(headers or {}), content_type=media_type(req))


def to_reply(req: falcon.Request, error: Exception) -> FacadeReply:
    """Any error a responder raised, as Kylin's error body with the right status."""
    if isinstance(error, KylinError):
        return error_reply(req, error.status, error.message, error.headers)
    if isinstance(error, le.LedgerError):
        return error_reply(req, LEDGER_STATUS.get(type(error), 400), str(error))
    if isinstance(error, Problem):
        return error_reply(req, _kylin_status(error.status_code), str(error.description), dict(error.headers or {}))
    if isinstance(error, falcon.HTTPError):
        return error_reply(req, error.status_code, str(error.description or error.title), dict(error.headers or {}))
    request_id = getattr(req.context, "request_id", "-")
    return error_reply(req, 500, f"Internal error; the server log has the details (request id {request_id})")


def _kylin_status(status: int) -> int:
    """Kylin answers bad input with 400; size, media-type and lagging-projection answers keep their status."""
    return status if status in (413, 415, 429, 503) else 400


def caller_of(deps: FacadeDeps, req: falcon.Request, roles: frozenset[str] = READ) -> Principal:
    """The authenticated caller, refused with 401 (no or bad credentials) or 403 (role)."""
    who = principal(deps, req)
    if who is None:
        raise KylinError(401, "Unauthorized: this endpoint needs valid credentials (HTTP Basic or a bearer token)",
                         {"WWW-Authenticate": CHALLENGE})
    if who.role not in roles:
        allowed = ", ".join(sorted(roles))
        raise KylinError(403, f"Access is denied: role '{who.role}' may not do this; allowed roles: {allowed}")
    return who


def controller_of(deps: FacadeDeps, req: falcon.Request) -> Principal:
    """A caller allowed to control jobs (pause, resume, cancel, drop, build): admin or operator."""
    return caller_of(deps, req, CONTROL)
