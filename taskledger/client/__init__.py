"""The Python client of taskledger: `Ledger` for every endpoint, `Worker` and `Lease` to work on tasks.

Importing it needs only `requests` and `tenacity` (no server package is imported). docs/client.md is the
guide: a worker in five minutes, directives and fencing, the retry rules.
"""

from taskledger.client.errors import (
    BadRequestError,
    CancelRequested,
    ClientError,
    ConflictError,
    ConnectionFailedError,
    FieldError,
    ForbiddenError,
    IdempotencyKeyReusedError,
    IllegalTransitionError,
    Interrupted,
    InvalidRequestError,
    LeaseLostError,
    NotFoundError,
    PauseRequested,
    ProblemError,
    StaleLeaseError,
    StopRequested,
    TaskDroppedError,
    UnauthorizedError,
    UnavailableError,
    VersionMismatchError,
)
from taskledger.client.ledger import Claimed, Heartbeat, HeartbeatResult, Ledger, Page, Receipt, Task
from taskledger.client.worker import Lease, Worker

__all__ = [
    "BadRequestError", "CancelRequested", "Claimed", "ClientError", "ConflictError", "ConnectionFailedError",
    "FieldError", "ForbiddenError", "Heartbeat", "HeartbeatResult", "IdempotencyKeyReusedError",
    "IllegalTransitionError", "Interrupted", "InvalidRequestError", "Lease", "LeaseLostError", "Ledger",
    "NotFoundError", "Page", "PauseRequested", "ProblemError", "Receipt", "StaleLeaseError", "StopRequested",
    "Task", "TaskDroppedError", "UnauthorizedError", "UnavailableError", "VersionMismatchError", "Worker",
]
