"""Pandora's error format, `{"error": "<message>"}` as Qiniu's APIs answer, and its refusals in Pandora's terms."""

from __future__ import annotations

import re

import falcon

from api.facades.common import FacadeReply, Refusal, Wire
from api.facades.pandora.wire import status_of
from api.problems import Problem
from ledger import errors as le

FACADE = "pandora"

# The ledger names the task's own fields; a Pandora client knows them by the body's names.
LEDGER_FIELDS = {"input": "interval", "name": "name"}
# A ledger action as a Pandora client asks for it.
ACTIONS = {"pause": "stop", "resume": "start", "update": "update", "drop": "delete"}


class BadField(Refusal):
    """A request field breaks a rule: answered 400 with the field's Pandora path and the rule."""

    def __init__(self, field: str, rule: str) -> None:
        super().__init__(400, f"{field}: {rule}")
        self.field = field
        self.rule = rule


def reply(status: int, message: str, headers: dict[str, str] | None = None) -> Refusal:
    return Refusal(status, message, headers)


def not_found(task_id: str) -> Refusal:
    return reply(404, f"export task {task_id[:100]!r} does not exist")


class PandoraWire(Wire):
    """Qiniu's `{"error": …}` body; ledger refusals named by the export task's fields and statuses."""

    name = FACADE
    paths = re.compile(r"/api/v1/export(/|$)")
    ledger_status = {
        le.TaskNotFoundError: 404, le.TaskDroppedError: 404, le.IllegalTransitionError: 409,
        le.ConcurrentWriteError: 409, le.InvalidValueError: 400,
    }

    def render(self, req: falcon.Request, refusal: Refusal) -> FacadeReply:
        return FacadeReply(refusal.status, {"error": refusal.message or ""}, refusal.headers)

    def unauthenticated(self, req: falcon.Request) -> str:
        return "unauthorized: send HTTP Basic credentials or a bearer token"

    def forbidden(self, role: str, roles: frozenset[str], action: str) -> str:
        return f"forbidden: role {role!r} may not do this; allowed roles: {', '.join(sorted(roles))}"

    def not_allowed(self, req: falcon.Request, allowed: tuple[str, ...]) -> str:
        return f"{req.method} is not allowed here; use {', '.join(allowed)}"

    def unknown_path(self, req: falcon.Request) -> Refusal:
        return reply(404, f"no such endpoint: {req.method} {req.path}")

    def ledger_refusal(self, req: falcon.Request, error: le.LedgerError) -> Refusal:
        if isinstance(error, (le.TaskNotFoundError, le.TaskDroppedError)):
            return not_found(str(error.task_id))
        refusal = super().ledger_refusal(req, error)
        if isinstance(error, le.InvalidValueError):
            refusal.message = f"{_pandora_field(req, error.field)}: {error.rule}"
        elif isinstance(error, le.IllegalTransitionError):
            action = ACTIONS.get(error.action, error.action)
            refusal.message = (f"export task {error.task_id} is {status_of(error.state)} "
                               f"({error.state.lower()}): cannot {action} it now")
        elif isinstance(error, le.ConcurrentWriteError):
            refusal.message = f"export task {error.task_id} was changed by another request; retry"
        return refusal

    def http_refusal(self, req: falcon.Request, error: falcon.HTTPError) -> Refusal:
        """Errors of the shared request reading (size, media type, JSON syntax): same status, Pandora's words."""
        refusal = super().http_refusal(req, error)
        problems = error.errors if isinstance(error, Problem) else None
        if problems:
            refusal.message = "; ".join(f"{p['field']}: {p['rule']}" for p in problems)
        return refusal

    def internal(self, req: falcon.Request) -> Refusal:
        return reply(500, "internal error; the error was logged, quote the X-Request-Id when you report it")


def _pandora_field(req: falcon.Request, field: str) -> str:
    if field.startswith("schedule"):
        # Set while reading the body: interval.crontab or interval.cronDate, whichever made the schedule.
        return str(getattr(req.context, "pandora_schedule_field", "interval"))
    return LEDGER_FIELDS.get(field, field)


WIRE = PandoraWire()
