"""Domain errors: every business rule the ledger refuses is one of these."""

from __future__ import annotations

from uuid import UUID


class LedgerError(Exception):
    """Base of every error the ledger raises on purpose."""

    code = "ledger-error"


class TaskNotFoundError(LedgerError):
    """No task has this id."""

    code = "task-not-found"

    def __init__(self, task_id: UUID | str) -> None:
        super().__init__(f"task {task_id} does not exist")
        self.task_id = task_id


class TaskDroppedError(LedgerError):
    """The task was dropped: it is gone from current views, its history remains."""

    code = "task-dropped"

    def __init__(self, task_id: UUID | str) -> None:
        super().__init__(f"task {task_id} was dropped; its history is still readable")
        self.task_id = task_id


class IllegalTransitionError(LedgerError):
    """The action is not allowed from the task's current state."""

    code = "illegal-transition"

    def __init__(self, task_id: UUID | str, state: str, action: str, allowed: tuple[str, ...] = ()) -> None:
        hint = f"; allowed from: {', '.join(allowed)}" if allowed else ""
        super().__init__(f"task {task_id} is {state}: cannot {action}{hint}")
        self.task_id = task_id
        self.state = state
        self.action = action
        self.allowed = allowed


class LeaseMismatchError(LedgerError):
    """A worker wrote with a lease that is no longer the task's current lease."""

    code = "stale-lease"

    def __init__(self, task_id: UUID | str, given: int | None, current: int, worker: str | None) -> None:
        super().__init__(
            f"task {task_id}: lease_epoch {given} is not the current lease {current}"
            f" (held by {worker or 'nobody'})"
        )
        self.task_id = task_id
        self.given = given
        self.current = current


class VersionMismatchError(LedgerError):
    """The caller's expected version (If-Match) is not the task's version."""

    code = "version-mismatch"

    def __init__(self, task_id: UUID | str, expected: int, actual: int) -> None:
        super().__init__(f"task {task_id} is at version {actual}, not {expected}")
        self.task_id = task_id
        self.expected = expected
        self.actual = actual


class ConcurrentWriteError(LedgerError):
    """Another writer changed the task between our read and our write; retry."""

    code = "concurrent-write"

    def __init__(self, task_id: UUID | str) -> None:
        super().__init__(f"task {task_id} was changed by another request; retry")
        self.task_id = task_id


class DuplicateTaskError(LedgerError):
    """A task with this external id already exists in this namespace."""

    code = "duplicate-task"

    def __init__(self, task_id: UUID | str, external_id: str) -> None:
        super().__init__(f"a task with external id {external_id!r} already exists ({task_id})")
        self.task_id = task_id
        self.external_id = external_id


class IdempotencyKeyReusedError(LedgerError):
    """The Idempotency-Key was already used with a different request body."""

    code = "idempotency-key-reused"

    def __init__(self, key: str) -> None:
        super().__init__(f"Idempotency-Key {key!r} was already used with a different request")
        self.key = key


class InvalidValueError(LedgerError):
    """A value breaks a domain rule (the field and the rule are named)."""

    code = "invalid-value"

    def __init__(self, field: str, rule: str) -> None:
        super().__init__(f"{field}: {rule}")
        self.field = field
        self.rule = rule


class NoTaskAvailableError(LedgerError):
    """No queued task matches the claim."""

    code = "no-task-available"


class NoRunDueError(IllegalTransitionError):
    """A recurring task is queued between runs: nothing to start until its schedule triggers a run."""

    code = "no-run-due"

    def __init__(self, task_id: UUID | str) -> None:
        super().__init__(task_id, "QUEUED", "start: no run of its schedule is waiting")
