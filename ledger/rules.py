"""Value rules of a task, checked before any event is recorded (replay never re-checks them)."""

from __future__ import annotations

import math
from typing import Any

from ledger.errors import InvalidValueError
from ledger.state import check_json

def check_progress(progress: float | None) -> None:
    if progress is not None and not 0 <= progress <= 100:
        raise InvalidValueError("progress", "must be between 0 and 100")


ABSENT: Any = object()


def check_limits(max_retries: Any, heartbeat_timeout: Any) -> None:
    """None is a value here, not "unchanged": an update that omits a limit passes ABSENT."""
    if max_retries is not ABSENT and (
            isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0):
        raise InvalidValueError("max_retries", "must be an integer, 0 or more")
    if heartbeat_timeout is not ABSENT and (
            isinstance(heartbeat_timeout, bool) or not isinstance(heartbeat_timeout, (int, float))
            or not math.isfinite(heartbeat_timeout) or heartbeat_timeout <= 0):
        raise InvalidValueError("heartbeat_timeout", "must be a finite number of seconds more than 0")


def check_new_task(max_retries: int, heartbeat_timeout: float, **json_fields: Any) -> None:
    """Validates the limits and the caller JSON of a task about to be created."""
    check_limits(max_retries, heartbeat_timeout)
    for field, value in json_fields.items():
        check_json(field, value)
