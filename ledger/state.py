"""The current state of one task, as plain data.

The aggregate evolves a `TaskState` from its events, and the task-view projection evolves the
very same class from the very same events, so a view row always equals a replay by construction.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

QUEUED = "QUEUED"
RUNNING = "RUNNING"
PAUSED = "PAUSED"
CANCELLING = "CANCELLING"
SUCCEEDED = "SUCCEEDED"
FAILED = "FAILED"
CANCELLED = "CANCELLED"
ABORTED = "ABORTED"

STATES = (QUEUED, RUNNING, PAUSED, CANCELLING, SUCCEEDED, FAILED, CANCELLED, ABORTED)
TERMINAL = (SUCCEEDED, CANCELLED, ABORTED)
LEASED = (RUNNING, CANCELLING)

# The states an operator's action accepts (a forced drop accepts any); a bulk action's dry run counts by them.
ACCEPTS: dict[str, tuple[str, ...]] = {
    "pause": (QUEUED, RUNNING),
    "resume": (PAUSED, FAILED),
    "cancel": (QUEUED, PAUSED, RUNNING, CANCELLING),
    "abort": (QUEUED, RUNNING, PAUSED, CANCELLING),
    "drop": (*TERMINAL, FAILED),
}

# A bulk cancel leaves a task already CANCELLING alone (its worker is winding it down; cancelling it again
# would end it at once): a part of a bulk run sent again then changes nothing it already changed.
BULK_ACCEPTS: dict[str, tuple[str, ...]] = {**ACCEPTS, "cancel": (QUEUED, PAUSED, RUNNING)}

STEP_STATUSES = ("PENDING", "RUNNING", "SUCCEEDED", "FAILED", "SKIPPED", "CANCELLED")

# Directives a worker reads from a heartbeat answer.
CONTINUE = "continue"
PAUSE = "pause"
CANCEL = "cancel"
STOP = "stop"


def dump_json(value: Any) -> str:
    """Canonical JSON text for user-supplied values carried inside events."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def ecosystem(namespace: str, facade: str) -> str:
    """Which API family a namespace belongs to: its prefix (`hugegraph:DEFAULT/g`), else the facade."""
    prefix, colon, _ = namespace.partition(":")
    return prefix if colon else facade


MAX_JSON_DEPTH = 32


def check_json(field: str, value: Any) -> None:
    """Caller JSON must stay shallow enough to decode anywhere (deep nesting exhausts recursion)."""
    from ledger.errors import InvalidValueError

    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            raise InvalidValueError(field, f"must not nest deeper than {MAX_JSON_DEPTH} levels")
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, (list, tuple)):
            stack.extend((v, depth + 1) for v in item)


_CONTAINERS = (dict, list)


def _copy(value: Any) -> Any:
    kind = type(value)
    if kind is dict:
        return {k: _copy(v) for k, v in value.items()}
    if kind is list:
        return [_copy(v) for v in value]
    return value


def load_json(text: str | None) -> Any:
    return None if text is None else json.loads(text)


@dataclass
class TaskState:
    """Everything the native API and the facades show about one task."""

    id: str
    namespace: str
    facade: str
    name: str
    type: str
    submitter: str
    created_at: str
    version: int = 0
    external_ids: dict[str, str] = field(default_factory=dict)
    input: Any = None
    labels: dict[str, str] = field(default_factory=dict)
    state: str = QUEUED
    progress: float = 0.0
    message: str | None = None
    stats: dict[str, Any] = field(default_factory=dict)
    steps: list[dict[str, Any]] = field(default_factory=list)
    buffers: dict[str, dict[str, Any]] = field(default_factory=dict)
    retries: int = 0
    max_retries: int = 0
    heartbeat_timeout: float = 60.0
    worker: str | None = None
    lease_epoch: int = 0
    last_heartbeat: str | None = None
    result: Any = None
    error: str | None = None
    updated_at: str | None = None
    started_at: str | None = None
    ended_at: str | None = None
    schedule: dict[str, Any] | None = None
    run_count: int = 0
    last_run_time: str | None = None
    schedule_cursor: str | None = None
    occurrence_count: int = 0
    pending_runs: list[dict[str, Any]] = field(default_factory=list)
    current_run: dict[str, Any] | None = None
    dropped: bool = False
    chain_hash: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {key: _copy(value) if type(value) in _CONTAINERS else value for key, value in self.__dict__.items()}

    def copy(self) -> TaskState:
        """An independent copy (the state holds only JSON values, so copying them is enough)."""
        copied = object.__new__(TaskState)
        copied.__dict__.update(self.to_dict())
        return copied

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TaskState:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})
