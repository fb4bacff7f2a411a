"""Pandora's error format, `{"error": "<message>"}` as Qiniu's APIs answer, and the mapping of every failure."""

from __future__ import annotations

import falcon

from api.facades.common import FacadeReply
from api.problems import Problem
from ledger import errors as le

CHALLENGE = 'Basic realm="taskledger", Bearer'

LEDGER_STATUS: dict[type[le.LedgerError], int] = {
    le.TaskNotFoundError: 404,
    le.TaskDroppedError: 404,
    le.IllegalTransitionError: 409,
    le.ConcurrentWriteError: 409,
    le.InvalidValueError: 400,
}

# The ledger names the task's own fields; a Pandora client knows them by the body's names.
LEDGER_FIELDS = {"input": "interval", "name": "name"}


class BadField(ValueError):
    """A request field breaks a rule: answered 400 with the field's Pandora path and the rule."""

    def __init__(self, field: str, rule: str) -> None:
        super().__init__(f"{field}: {rule}")
        self.field = field
        self.rule = rule


def reply(status: int, message: str, headers: dict[str, str] | None = None) -> FacadeReply:
    return FacadeReply(status, {"error": message}, headers or {})


def not_found(task_id: str) -> FacadeReply:
    return reply(404, f"export task {task_id[:100]!r} does not exist")


def pandora_error(req: falcon.Request, error: Exception) -> FacadeReply:
    """Any error a responder raised, in Pandora's format (the guarded decorator calls this)."""
    if isinstance(error, BadField):
        return reply(400, str(error))
    if isinstance(error, le.LedgerError):
        return _ledger_error(req, error)
    if isinstance(error, falcon.HTTPError):
        return _http_error(error)
    return reply(500, "internal error; the error was logged, quote the X-Request-Id when you report it")


def _ledger_error(req: falcon.Request, error: le.LedgerError) -> FacadeReply:
    status = next((s for cls, s in LEDGER_STATUS.items() if isinstance(error, cls)), 400)
    if isinstance(error, (le.TaskNotFoundError, le.TaskDroppedError)):
        return not_found(str(error.task_id))
    if isinstance(error, le.InvalidValueError):
        return reply(status, f"{_pandora_field(req, error.field)}: {error.rule}")
    return reply(status, str(error))


def _pandora_field(req: falcon.Request, field: str) -> str:
    if field.startswith("schedule"):
        # Set while reading the body: interval.crontab or interval.cronDate, whichever made the schedule.
        return str(getattr(req.context, "pandora_schedule_field", "interval"))
    return LEDGER_FIELDS.get(field, field)


def _http_error(error: falcon.HTTPError) -> FacadeReply:
    """Errors of the shared request reading (size, media type, JSON syntax): same status, Pandora's body."""
    status = 400 if error.status_code == 422 else error.status_code
    problems = getattr(error, "errors", None) if isinstance(error, Problem) else None
    if problems:
        message = "; ".join(f"{p['field']}: {p['rule']}" for p in problems)
    else:
        message = error.description or error.title or "bad request"
    return reply(status, message, {k: v for k, v in dict(error.headers or {}).items() if k != "Content-Type"})
