"""Who may call, and how any error a responder raises leaves in HugeGraph's error format."""

from __future__ import annotations

import falcon

from api.auth import CHALLENGE, Principal
from api.facades.common import FacadeDeps, FacadeReply, principal
from api.facades.hugegraph.wire import (
    CONFLICT,
    EXCEPTION_BY_STATUS,
    FORBIDDEN,
    HUGE_EXCEPTION,
    NOT_AUTHORIZED,
    bad_argument,
    error,
)
from ledger.errors import ConcurrentWriteError, LedgerError
from projections.queries import InvalidCursorError


def require(deps: FacadeDeps, req: falcon.Request, roles: frozenset[str], action: str) -> Principal:
    """The authenticated caller, if their role may do the action; else HugeGraph's 401 or 403."""
    who = principal(deps, req)
    if who is None:
        message = ("Authentication credentials are required" if req.get_header("Authorization") is None
                   else "Authentication failed")
        raise error(401, NOT_AUTHORIZED, message, {"WWW-Authenticate": CHALLENGE})
    if who.role not in roles:
        raise error(403, FORBIDDEN, f"Permission denied: role '{who.role}' may not {action} "
                    f"(allowed roles: {', '.join(sorted(roles))})")
    return who


def map_error(req: falcon.Request, failure: Exception) -> FacadeReply:
    """Errors no responder turned into a HugeGraph answer itself (`guarded` logs the unexpected ones)."""
    if isinstance(failure, ConcurrentWriteError):
        return error(409, CONFLICT, f"{failure}")
    if isinstance(failure, LedgerError):
        return bad_argument(str(failure))
    if isinstance(failure, InvalidCursorError):
        return error(400, HUGE_EXCEPTION, f"Invalid page: {failure}")
    if isinstance(failure, falcon.HTTPError):
        status = 400 if failure.status_code == 422 else failure.status_code
        exception = EXCEPTION_BY_STATUS.get(status, HUGE_EXCEPTION)
        headers = {k: v for k, v in dict(failure.headers or {}).items() if k in ("Retry-After", "Allow")}
        return error(status, exception, failure.description or failure.title or "Bad request", headers)
    request_id = getattr(req.context, "request_id", "-")
    return error(500, HUGE_EXCEPTION, f"Internal error; the server log has the details (request id {request_id})")


def not_allowed(allowed: tuple[str, ...]) -> FacadeReply:
    return error(405, EXCEPTION_BY_STATUS[405], "HTTP 405 Method Not Allowed", {"Allow": ", ".join(allowed)})
