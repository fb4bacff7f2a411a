"""Commands: what a caller asks the ledger to do, as small frozen values."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from uuid import UUID

if TYPE_CHECKING:
    from ledger.state import TaskState


@dataclass(frozen=True)
class Caller:
    """Who is asking, through which API, in which request."""

    actor: str
    request_id: str
    facade: str = "native"


@dataclass(frozen=True)
class CreateTask:
    namespace: str
    name: str
    type: str = "generic"
    input: Any = None
    submitter: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    steps: tuple[str, ...] = ()
    max_retries: int = 0
    heartbeat_timeout: float = 60.0
    schedule: dict[str, Any] | None = None
    external_id: str | None = None
    idempotency_key: str | None = None


@dataclass(frozen=True)
class UpdateTask:
    task_id: UUID
    changes: dict[str, Any]
    expected_version: int | None = None


@dataclass(frozen=True)
class StartTask:
    task_id: UUID
    worker: str


@dataclass(frozen=True)
class ClaimTask:
    worker: str
    candidates: tuple[UUID, ...]


@dataclass(frozen=True)
class RecordHeartbeat:
    task_id: UUID
    lease_epoch: int
    progress: float | None = None
    message: str | None = None
    stats: dict[str, Any] | None = None


@dataclass(frozen=True)
class ReportProgress:
    task_id: UUID
    lease_epoch: int
    progress: float
    message: str | None = None


@dataclass(frozen=True)
class UpdateStep:
    task_id: UUID
    lease_epoch: int
    step: int
    status: str | None = None
    output: str | None = None
    append: bool = True


@dataclass(frozen=True)
class AppendOutput:
    task_id: UUID
    lease_epoch: int
    buffer: str
    data: str
    positions: int = 0
    last: bool = False


@dataclass(frozen=True)
class CloseOutput:
    task_id: UUID
    buffer: str


@dataclass(frozen=True)
class PauseTask:
    task_id: UUID
    reason: str | None = None


@dataclass(frozen=True)
class ResumeTask:
    task_id: UUID


@dataclass(frozen=True)
class CancelTask:
    task_id: UUID
    reason: str | None = None


@dataclass(frozen=True)
class AbortTask:
    task_id: UUID
    reason: str | None = None


@dataclass(frozen=True)
class CompleteTask:
    """`idempotency_key`: a retry with the same key and body is answered the first receipt (`Written.replayed`)."""

    task_id: UUID
    lease_epoch: int
    result: Any = None
    idempotency_key: str | None = None


@dataclass(frozen=True)
class FailTask:
    """`idempotency_key`: a retry with the same key and body is answered the first receipt (`Written.replayed`)."""

    task_id: UUID
    lease_epoch: int
    error: str
    retry: bool = True
    idempotency_key: str | None = None
    # A task being cancelled ends CANCELLED (its worker confirms it stopped); False refuses that as before.
    confirm_cancel: bool = True


@dataclass(frozen=True)
class DropTask:
    task_id: UUID
    force: bool = False


BULK_ACTIONS = ("pause", "resume", "cancel", "abort", "drop")


@dataclass(frozen=True)
class BulkAction:
    """One operator action on many tasks: `reason` for pause, cancel and abort; `force` for drop."""

    action: str
    task_ids: tuple[UUID, ...]
    reason: str | None = None
    force: bool = False

    def __post_init__(self) -> None:
        if self.action not in BULK_ACTIONS:
            raise ValueError(f"action must be one of {', '.join(BULK_ACTIONS)}")


@dataclass(frozen=True)
class Written:
    """What a write produced: the task's new version and the event-log position of the write."""

    task_id: UUID
    version: int
    position: int
    lease_epoch: int | None = None
    directive: str | None = None
    sequence: int | None = None
    replayed: bool = False
    state: TaskState | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class RecordOccurrences:
    """The scheduler's tick for one task: record every occurrence due by `now`."""

    task_id: UUID
    now: datetime
    grace: timedelta


@dataclass(frozen=True)
class ExpireLease:
    """The watchdog's check of one task: expire its lease if no heartbeat came in time by `now`."""

    task_id: UUID
    now: datetime
