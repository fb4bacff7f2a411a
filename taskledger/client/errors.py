"""What the client raises: the service's problem+json answers as typed exceptions, and the work directives.

Every refusal by the service is a `ProblemError` subclass chosen by the problem's code (the last part of its
`type` URI), so callers catch what they mean (`StaleLeaseError`, `IllegalTransitionError`, `InvalidRequestError`
with its `errors`) without parsing bodies. A service that cannot be reached is `ConnectionFailedError`.

Inside a work function the lease raises `Interrupted` subclasses: the operator asked to pause, cancel or
stop, or the lease is gone (`LeaseLostError`). They are not refusals of a request but orders to stop working.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

PROBLEM_BASE = "https://taskledger.dev/problems/"


class ClientError(Exception):
    """Base of everything the client raises."""


class ConnectionFailedError(ClientError):
    """The service could not be reached (or stopped answering) after the retries the request allows;
    `reason` says why in a few words (`Connection refused`, `timed out`)."""

    def __init__(self, message: str, reason: str = "") -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class FieldError:
    """One broken rule of a refused request: `field` names it (`heartbeat_timeout`, `labels.team.value`)."""

    field: str
    rule: str


class ProblemError(ClientError):
    """The service refused the request with an RFC 9457 problem."""

    def __init__(self, status: int, problem: dict[str, Any], *, method: str = "", url: str = "",
                 request_id: str | None = None, retry_after: float | None = None) -> None:
        self.status = status
        self.problem = problem
        self.type: str = str(problem.get("type") or "")
        self.code: str = self.type.rsplit("/", 1)[-1] if self.type else str(status)
        self.title: str = str(problem.get("title") or "")
        self.detail: str = str(problem.get("detail") or self.title or f"HTTP {status}")
        self.errors: list[FieldError] = [FieldError(str(e.get("field", "")), str(e.get("rule", "")))
                                         for e in problem.get("errors") or [] if isinstance(e, dict)]
        self.method, self.url, self.request_id, self.retry_after = method, url, request_id, retry_after
        super().__init__(self._message())

    def _message(self) -> str:
        fields = "; ".join(f"{e.field}: {e.rule}" for e in self.errors if e.rule not in self.detail)
        where = f" ({self.method} {self.url})" if self.method else ""
        return f"{self.status} {self.code}: {self.detail}" + (f" [{fields}]" if fields else "") + where


class BadRequestError(ProblemError):
    """400: the request could not be read (bad query parameter, header, cursor, body that is not JSON)."""


class InvalidRequestError(ProblemError):
    """422: a body field breaks a rule; `errors` names each field and rule."""


class IdempotencyKeyReusedError(InvalidRequestError):
    """422: the Idempotency-Key was used before with another body."""


class UnauthorizedError(ProblemError):
    """401: no credentials, or wrong ones."""


class ForbiddenError(ProblemError):
    """403: the account's role may not do this."""


class NotFoundError(ProblemError):
    """404: no such task (or version, token, route)."""


class TaskDroppedError(ProblemError):
    """410: the task was dropped; its history still answers."""


class ConflictError(ProblemError):
    """409: the task's state refuses the action."""


class StaleLeaseError(ConflictError):
    """409 `stale-lease`: the lease epoch is not the task's current one (it expired, or another worker has it)."""


class IllegalTransitionError(ConflictError):
    """409 `illegal-transition`: the task's state does not accept the action."""


class ConcurrentWriteError(ConflictError):
    """409 `concurrent-write`: another writer changed the task meanwhile."""


class VersionMismatchError(ProblemError):
    """412: `If-Match` named another version than the task's current one."""


class TooManyRequestsError(ProblemError):
    """429: too many failed logins; `retry_after` says when to try again."""


class UnavailableError(ProblemError):
    """503: the database is away, a projection lags, or the service is not ready; `retry_after` seconds."""


class ServerError(ProblemError):
    """5xx other than 503: a fault in the service (logged there under `request_id`)."""


_BY_CODE: dict[str, type[ProblemError]] = {
    "stale-lease": StaleLeaseError,
    "illegal-transition": IllegalTransitionError,
    "concurrent-write": ConcurrentWriteError,
    "idempotency-key-reused": IdempotencyKeyReusedError,
}
_BY_STATUS: dict[int, type[ProblemError]] = {
    400: BadRequestError, 401: UnauthorizedError, 403: ForbiddenError, 404: NotFoundError, 409: ConflictError,
    410: TaskDroppedError, 412: VersionMismatchError, 422: InvalidRequestError, 429: TooManyRequestsError,
    503: UnavailableError,
}


def problem_error(status: int, problem: dict[str, Any], **context: Any) -> ProblemError:
    """The exception for a refused request: by problem code first, then by status."""
    code = str(problem.get("type") or "").rsplit("/", 1)[-1]
    cls = _BY_CODE.get(code) or _BY_STATUS.get(status) or (ServerError if status >= 500 else ProblemError)
    return cls(status, problem, **context)


class Interrupted(Exception):  # noqa: N818 - an order to stop working, not an error of the caller
    """The work on a lease must stop now; raised inside the work function by the lease's calls.

    `directive` is what the service said: `pause`, `cancel` or `stop` (or `lost` for a lease that is gone).
    """

    directive = "stop"

    def __init__(self, task_id: str, detail: str = "") -> None:
        self.task_id = task_id
        super().__init__(detail or f"task {task_id}: {self.directive}")


class PauseRequested(Interrupted):
    """An operator paused the task: it is PAUSED already and goes back to the queue on resume."""

    directive = "pause"


class CancelRequested(Interrupted):
    """An operator cancelled the task: stop, and leave the lease (the Worker confirms the cancel for you)."""

    directive = "cancel"


class StopRequested(Interrupted):
    """The lease ended for another reason (the task was aborted, dropped or ended elsewhere): stop."""

    directive = "stop"


class LeaseLostError(Interrupted):
    """The lease is gone (409 stale-lease: it expired, or another worker holds the task now).

    Nothing written under it is accepted any more, so nothing is retried; the work must stop at once."""

    directive = "lost"
