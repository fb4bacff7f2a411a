"""Errors as RFC 9457 problem details: one serializer, one handler per exception family."""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

import falcon
from marshmallow import ValidationError

from ledger import errors as le
from projections.queries import InvalidCursorError

log = logging.getLogger(__name__)

PROBLEM_BASE = "https://taskledger.dev/problems/"
PROBLEM_JSON = "application/problem+json"

LEDGER_STATUS: dict[type[le.LedgerError], int] = {
    le.TaskNotFoundError: 404,
    le.TaskDroppedError: 410,
    le.IllegalTransitionError: 409,
    le.LeaseMismatchError: 409,
    le.ConcurrentWriteError: 409,
    le.DuplicateTaskError: 409,
    le.VersionMismatchError: 412,
    le.IdempotencyKeyReusedError: 422,
    le.InvalidValueError: 422,
    le.NoTaskAvailableError: 404,
}

# Codes of errors falcon itself raises (routing, methods, media), by status.
STATUS_CODES = {
    400: "bad-request", 401: "unauthorized", 403: "forbidden", 404: "not-found", 405: "method-not-allowed",
    406: "not-acceptable", 409: "conflict", 411: "length-required", 413: "payload-too-large",
    415: "unsupported-media-type", 422: "invalid-request", 500: "internal-error", 503: "unavailable",
}


class Problem(falcon.HTTPError):
    """An HTTP error with a stable problem code and, for validation errors, the offending fields."""

    def __init__(self, status: int, code: str, detail: str, *, errors: list[dict[str, str]] | None = None,
                 headers: dict[str, str] | None = None, **members: Any) -> None:
        super().__init__(status, title=HTTPStatus(status).phrase, description=detail, headers=headers)
        self.slug = code
        self.errors = errors
        self.members = members


def field_errors(messages: Any, path: str = "") -> list[dict[str, str]]:
    """Flattens marshmallow's nested messages into `[{"field": "steps.2", "rule": "..."}]`."""
    if isinstance(messages, dict):
        found: list[dict[str, str]] = []
        for key, value in messages.items():
            # Schema-level messages belong to the object itself (the body, or a nested item).
            child = path if key == "_schema" else f"{path}.{key}" if path else str(key)
            found += field_errors(value, child)
        return found
    if isinstance(messages, list) and all(isinstance(m, str) for m in messages):
        return [{"field": path or "body", "rule": m} for m in messages]
    if isinstance(messages, list):
        return [e for m in messages for e in field_errors(m, path)]
    return [{"field": path or "body", "rule": str(messages)}]


def invalid_body(error: ValidationError) -> Problem:
    errors = field_errors(error.messages)
    return Problem(422, "invalid-request", _summary("The request body is not valid", errors), errors=errors)


def invalid_query(error: ValidationError) -> Problem:
    errors = field_errors(error.messages)
    return Problem(400, "invalid-query", _summary("The query string is not valid", errors), errors=errors)


def malformed(field: str, rule: str, status: int = 400, code: str = "malformed-request") -> Problem:
    errors = [{"field": field, "rule": rule}]
    return Problem(status, code, _summary("The request is malformed", errors), errors=errors)


def ledger_problem(error: le.LedgerError) -> Problem:
    status = next((s for cls, s in LEDGER_STATUS.items() if isinstance(error, cls)), 400)
    errors = [{"field": error.field, "rule": error.rule}] if isinstance(error, le.InvalidValueError) else None
    return Problem(status, error.code, str(error), errors=errors)


def _summary(lead: str, errors: list[dict[str, str]]) -> str:
    return f"{lead}: " + "; ".join(f"{e['field']} {e['rule']}" for e in errors)


def problem_body(error: falcon.HTTPError, instance: str) -> dict[str, Any]:
    status = error.status_code
    code = getattr(error, "slug", None) or STATUS_CODES.get(status, "error")
    body: dict[str, Any] = {
        "type": PROBLEM_BASE + code,
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": error.description or HTTPStatus(status).description,
        "instance": instance,
    }
    if isinstance(error, Problem):
        if error.errors:
            body["errors"] = error.errors
        body.update(error.members)
    return body


def serialize(req: falcon.Request, resp: falcon.Response, error: falcon.HTTPError) -> None:
    """Renders every HTTP error, ours or falcon's, as problem+json."""
    resp.media = problem_body(error, req.path)
    resp.content_type = PROBLEM_JSON


def handle_ledger_error(req: falcon.Request, resp: falcon.Response, ex: le.LedgerError, params: Any) -> None:
    raise ledger_problem(ex)


def handle_validation_error(req: falcon.Request, resp: falcon.Response, ex: ValidationError, params: Any) -> None:
    raise invalid_body(ex)


def handle_cursor_error(req: falcon.Request, resp: falcon.Response, ex: InvalidCursorError, params: Any) -> None:
    raise malformed("cursor", "is not valid for this query; start again without it", code="invalid-cursor")


def handle_unexpected(req: falcon.Request, resp: falcon.Response, ex: Exception, params: Any) -> None:
    log.exception("unexpected error answering %s %s (request %s)", req.method, req.path,
                  getattr(req.context, "request_id", "-"))
    raise Problem(500, "internal-error", "The server could not answer; the error was logged. "
                  "Quote the X-Request-Id when you report it.")


# One handler per exception family (falcon's own HTTPError handling uses `serialize`).
HANDLERS: dict[type[Exception], Any] = {
    Exception: handle_unexpected, le.LedgerError: handle_ledger_error, ValidationError: handle_validation_error,
    InvalidCursorError: handle_cursor_error,
}


def register(app: falcon.App) -> None:
    app.set_error_serializer(serialize)
    for family, handler in HANDLERS.items():
        app.add_error_handler(family, handler)
